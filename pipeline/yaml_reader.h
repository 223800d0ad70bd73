#pragma once
// Reading a YAML configuration with diagnostics a user can act on: every problem is located
// (`file:line:column`, or the `--set key=value` that put the value there), the earliest one is
// reported, unknown keys list the allowed ones and suggest the nearest. Knows nothing of rawflow's
// keys: pipeline/field_table.h declares keys on top of MapReader, pipeline/config_keys.cpp holds
// rawflow's.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rawflow::yaml_config {

// Where a value came from.
struct Location {
  size_t rank = 0;  // overrides in command-line order come first, then the file
  int line = 0;
  int column = 0;
  std::string text;  // "demo.yaml:12:5" or "--set engine.threads=x"
};

// Problems are collected and the one earliest in the input is reported, so a user fixing errors
// top to bottom sees them in that order whatever order the checks run in.
class Diagnostics {
 public:
  void add(Location at, std::string message);
  size_t count() const { return entries_.size(); }
  // Throws ConfigError with the earliest problem, if any.
  void throw_if_any() const;

 private:
  struct Entry {
    Location at;
    std::string message;
  };
  std::vector<Entry> entries_;
};

// The YAML tree after overrides, and which of its nodes an override put there.
class Document {
 public:
  Document(std::string name, std::vector<std::string> overrides)
      : name_(std::move(name)), overrides_(std::move(overrides)) {}

  YAML::Node root;

  const std::vector<std::string>& overrides() const { return overrides_; }
  Location where(const YAML::Node& n) const;
  // A key created by an override has no mark of its own: it is where its value is.
  Location where_key(const YAML::Node& key, const YAML::Node& value) const;
  // Marks `n` and everything below it as written by override number `override_index`.
  void attribute(const YAML::Node& n, size_t override_index);

 private:
  std::string name_;
  std::vector<std::string> overrides_;
  std::vector<std::pair<YAML::Node, size_t>> overridden_;
};

// Applies the document's `--set key=value` overrides, in order, to its tree (load_config's
// contract in pipeline/config.h). Throws ConfigError for a malformed override.
void apply_overrides(Document& doc);

struct Context {
  Document doc;
  Diagnostics errors;
  std::map<std::string, Location> locations;  // key path ("tasks[0].window_s") → its value

  void fail(const std::string& path, std::string message);
  // Where a path's value was written, else the nearest enclosing map that was (a value inherited
  // from stream_defaults or a default is located at the stream that uses it).
  Location at(std::string path) const;
  // The key at exactly this path was written (in the file or by an override).
  bool given(const std::string& path) const { return locations.count(path) > 0; }
};

// ---------------------------------------------------------------------------------------------
// Small text helpers, shared by the readers' messages and rawflow's own checks.

std::string format_number(double v);
std::string format_number(float v);
std::string join(const std::vector<std::string>& items, std::string_view sep = ", ");
// "; did you mean 'x'?" for a close match (at most 2 edits, and fewer than half the word).
std::string suggestion(std::string_view given, const std::vector<std::string>& allowed);
// How a node that is not what was expected looks, for messages.
std::string shown(const YAML::Node& n);
// [A-Za-z0-9_-]{1,64}
bool is_name(std::string_view s);

// ---------------------------------------------------------------------------------------------
// Reading one YAML map: every key the parser asks for is allowed; the others are reported by
// finish() with the allowed list. Values are type- and range-checked as they are read.

struct Range {
  double lo, hi;
  bool lo_open = false, hi_open = false;
  const char* note = nullptr;  // why the bound is there, appended to the message

  bool contains(double v) const {
    return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  }
  std::string text() const;
};

enum class TextRule { Any, NonEmpty, Name };

template <class E>
using Choices = std::initializer_list<std::pair<std::string_view, E>>;

class MapReader {
 public:
  MapReader(Context& cx, const YAML::Node& node, std::string path);

  bool present() const { return present_; }
  // No problem was found in this map (or in maps read through it) since it was opened.
  bool ok() const { return cx_.errors.count() == errors_at_start_; }
  // The same, unknown keys aside: every value asked for is valid. A rule relating values can
  // check them while an unknown key is also reported; the earlier of the two is shown.
  bool values_ok() const {
    return (finished_ ? errors_before_finish_ : cx_.errors.count()) == errors_at_start_;
  }
  const std::string& path() const { return path_; }
  std::string path_of(std::string_view key) const;
  // The key is given with a value (not null).
  bool has(std::string_view key) const;
  // The keys given with a value, in the order written.
  std::vector<std::string> given_keys() const;
  // Reports a problem of the key's value (or of the map, for an empty key), located where it was
  // written; for rules that relate several keys.
  void fail(std::string_view key, std::string message);

  void declare(std::string_view key);
  // Reported by finish(), unless an unknown key there looks like a misspelling of it.
  void require(std::string_view key);

  bool number(std::string_view key, double& out, const Range& range);
  bool integer(std::string_view key, int64_t& out, int64_t lo, int64_t hi);
  bool unsigned64(std::string_view key, uint64_t& out);
  bool integer_in(std::string_view key, int& out, const std::vector<int>& allowed);
  bool boolean(std::string_view key, bool& out);
  // A null value (`mmproj:`) or an empty override (`--set engine.mmproj=`) means "not given".
  bool text(std::string_view key, std::string& out, TextRule rule = TextRule::Any);
  // The scalar must be one of `names`; `index` is its position there.
  bool choice(std::string_view key, size_t& index, const std::vector<std::string>& names);
  // A list of names; each item's location is recorded as path[i].
  bool names(std::string_view key, std::vector<std::string>& out);
  // A nested map, read by its own reader.
  MapReader map(std::string_view key);
  // A nested list (undefined node when absent); the caller reads its items.
  YAML::Node list(std::string_view key, const std::string& what);

  // Reports every key that was never asked for. Keys in `elsewhere` are known but do not apply
  // here; `why` says so ("to a transcribe task").
  void finish(const std::vector<std::string>& elsewhere = {}, std::string_view why = {});

  Context& context() { return cx_; }

 private:
  struct Entry {
    std::string key;
    YAML::Node key_node;
    YAML::Node value;
  };

  void add_entry(const YAML::Node& key, const YAML::Node& value);
  const Entry* find(std::string_view key) const;
  // The entry of a key whose value must be a scalar; nullptr when absent or on a type error.
  const Entry* scalar(std::string_view key, const std::string& expected);
  bool type_error(const Entry& e, const std::string& expected);
  bool value_error(const Entry& e, const std::string& message);
  std::string where_text() const;

  Context& cx_;
  std::string path_;
  size_t errors_at_start_;
  size_t errors_before_finish_ = 0;
  bool finished_ = false;
  bool present_ = false;
  bool is_map_ = false;
  std::vector<Entry> entries_;
  std::vector<std::string> missing_;
  std::vector<std::string> declared_;
};

}  // namespace rawflow::yaml_config
