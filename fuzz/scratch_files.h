#pragma once
// Where a fuzz input becomes a file: the loaders take paths and map files, so the input is written
// to a file they open exactly as a user's (no in-memory shortcut that would skip the mapping).
#include <cstddef>
#include <cstdint>
#include <string>

namespace rawflow::fuzz {

// A directory of this process's own (made once, removed at exit), so that parallel fuzzers and
// tests never share files.
const std::string& scratch_dir();

// Writes `size` bytes to `scratch_dir()/name` (replacing it; `name` may hold directories, made as
// needed) and returns the path.
std::string write_scratch(const std::string& name, const uint8_t* data, size_t size);

}  // namespace rawflow::fuzz
