#pragma once
// What `rawflow batch` works on: its inputs in a stable order, the share of them one shard takes,
// and the stable id each input's results are filed under.
//
// Inputs are files, directories (searched recursively for media files, by extension) and glob
// patterns, or a manifest with one path or URL per line. Directories and globs expand in sorted
// order, so every shard of an array job sees the same list; shard I of N takes the entries k
// with k mod N = I. One task per shard, never one per file: array sizes are capped and every task
// costs the scheduler seconds.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace rawflow::pipeline {

// Extensions (lower case, without the dot) a directory search takes as media.
const std::vector<std::string>& media_extensions();

// `args` in order, each expanded: a directory to its media files (recursive, sorted), a pattern
// with *, ? or [ to its matches (sorted), anything else (a file, a URL) as given. Duplicates after
// the first are dropped. Throws std::runtime_error naming the argument for a path that does not
// exist or a pattern that matches nothing.
std::vector<std::string> expand_inputs(const std::vector<std::string>& args);

// A manifest's entries: one per line, blank lines and lines starting with # skipped, surrounding
// whitespace trimmed; a relative path resolves against the manifest's directory, a URL
// (scheme://) stays as written. Throws std::runtime_error with file:line for an unreadable file.
std::vector<std::string> read_manifest(const std::string& path);

struct Shard {
  int64_t index = 0;
  int64_t count = 1;
};

// The shard this process is: --shard-index if given, else SLURM_ARRAY_TASK_ID, else
// JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs), else 0; the count is always --shard-count (1 when
// absent: re-running only some tasks of an array changes SLURM_ARRAY_TASK_COUNT, so it is never
// taken from there). `getenv` is injectable for tests. Throws std::runtime_error for an index
// outside [0, count) or a variable that is not a number.
Shard resolve_shard(std::optional<int64_t> index, std::optional<int64_t> count,
                    const std::function<const char*(const char*)>& getenv);

// Positions k of `n` entries with k mod count = index, in order.
std::vector<size_t> shard_positions(size_t n, const Shard& s);

// The id an input's results are filed under, also its stream name in the run: its file name with
// every character but letters, digits, '-' and '_' made '_' (at most 80 characters) and 12 hex
// digits of FNV-1a 64 over the input as given and `config_digest` (what in the configuration
// changes results), so two inputs with one name, or one input under two configurations, never share
// results.
std::string input_id(const std::string& input, const std::string& config_digest);

// How an input is filed and opened: a URL (scheme://) as given, a path made absolute.
std::string absolute_input(const std::string& input);

// FNV-1a 64 of `bytes`, as 16 hex digits (stable across platforms and builds).
std::string fnv1a64_hex(const std::string& bytes);

}  // namespace rawflow::pipeline
