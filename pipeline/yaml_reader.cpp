#include "pipeline/yaml_reader.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <tuple>

#include "pipeline/config.h"

namespace rawflow::yaml_config {
namespace {

bool earlier(const Location& a, const Location& b) {
  return std::tie(a.rank, a.line, a.column) < std::tie(b.rank, b.line, b.column);
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Diagnostics, Document, Context

void Diagnostics::add(Location at, std::string message) {
  entries_.push_back({std::move(at), std::move(message)});
}

void Diagnostics::throw_if_any() const {
  if (entries_.empty()) return;
  const Entry* first = &entries_.front();
  for (const Entry& e : entries_) {
    if (earlier(e.at, first->at)) first = &e;
  }
  throw ConfigError(first->at.text + ": " + first->message);
}

Location Document::where(const YAML::Node& n) const {
  for (const auto& [node, index] : overridden_) {
    if (node.is(n)) return {index, 0, 0, "--set " + overrides_[index]};
  }
  const YAML::Mark m = n.Mark();
  const int line = m.is_null() ? 1 : m.line + 1;
  const int column = m.is_null() ? 1 : m.column + 1;
  return {overrides_.size(), line, column,
          name_ + ":" + std::to_string(line) + ":" + std::to_string(column)};
}

Location Document::where_key(const YAML::Node& key, const YAML::Node& value) const {
  for (const auto& entry : overridden_) {
    if (entry.first.is(key)) return where(key);
  }
  return key.Mark().is_null() ? where(value) : where(key);
}

void Document::attribute(const YAML::Node& n, size_t override_index) {
  overridden_.emplace_back(n, override_index);
  if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it) {
      attribute(it->first, override_index);
      attribute(it->second, override_index);
    }
  } else if (n.IsSequence()) {
    for (auto it = n.begin(); it != n.end(); ++it) attribute(*it, override_index);
  }
}

void Context::fail(const std::string& path, std::string message) {
  errors.add(at(path), path.empty() ? std::move(message) : path + ": " + message);
}

Location Context::at(std::string path) const {
  while (!path.empty()) {
    if (auto it = locations.find(path); it != locations.end()) return it->second;
    const size_t cut = path.find_last_of(".[");
    path.resize(cut == std::string::npos ? 0 : cut);
  }
  if (auto it = locations.find(""); it != locations.end()) return it->second;
  return doc.where(YAML::Node());
}

// ---------------------------------------------------------------------------------------------
// Text helpers

std::string format_number(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

// Floats print at their own precision (0.95f as "0.95", not 0.949999988079071).
std::string format_number(float v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += items[i];
  }
  return out;
}

std::string suggestion(std::string_view given, const std::vector<std::string>& allowed) {
  const std::string* best = nullptr;
  size_t best_d = 3;
  for (const std::string& a : allowed) {
    const size_t d = edit_distance(given, a);
    if (d < best_d && 2 * d < std::max(given.size(), a.size())) {
      best = &a;
      best_d = d;
    }
  }
  return best ? "; did you mean '" + *best + "'?" : "";
}

std::string shown(const YAML::Node& n) {
  if (n.IsNull()) return "nothing";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a map";
  std::string s = n.Scalar();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return "'" + s + "'";
}

bool is_name(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

std::string Range::text() const {
  return std::string(lo_open ? "(" : "[") + format_number(lo) + ", " + format_number(hi) +
         (hi_open ? ")" : "]");
}

// ---------------------------------------------------------------------------------------------
// MapReader

MapReader::MapReader(Context& cx, const YAML::Node& node, std::string path)
    : cx_(cx), path_(std::move(path)), errors_at_start_(cx.errors.count()) {
  if (!node.IsDefined()) return;
  present_ = true;
  cx_.locations[path_] = cx_.doc.where(node);
  if (!node.IsNull() && !node.IsMap()) {
    cx_.fail(path_, "expected a map of keys, got " + shown(node));
    return;
  }
  is_map_ = true;  // a null value (`stdout:` with nothing below) is an empty map
  if (node.IsNull()) return;
  for (auto it = node.begin(); it != node.end(); ++it) add_entry(it->first, it->second);
}

std::string MapReader::path_of(std::string_view key) const {
  if (key.empty()) return path_;
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

bool MapReader::has(std::string_view key) const {
  const Entry* e = find(key);
  return e && !e->value.IsNull();
}

std::vector<std::string> MapReader::given_keys() const {
  std::vector<std::string> keys;
  for (const Entry& e : entries_) {
    if (!e.value.IsNull()) keys.push_back(e.key);
  }
  return keys;
}

void MapReader::fail(std::string_view key, std::string message) {
  cx_.fail(path_of(key), std::move(message));
}

void MapReader::declare(std::string_view key) {
  if (std::find(declared_.begin(), declared_.end(), key) == declared_.end()) {
    declared_.emplace_back(key);
  }
}

void MapReader::require(std::string_view key) {
  declare(key);
  if (!is_map_) return;  // absent, or not a map: already reported by the caller or the reader
  const Entry* e = find(key);
  if (!e) {
    missing_.emplace_back(key);
  } else if (e->value.IsNull()) {
    value_error(*e, "needs a value");
  }
}

bool MapReader::number(std::string_view key, double& out, const Range& range) {
  const Entry* e = scalar(key, "a number");
  if (!e) return false;
  double v = 0;
  if (!YAML::convert<double>::decode(e->value, v) || !std::isfinite(v)) {
    return type_error(*e, "a number");
  }
  if (!range.contains(v)) {
    return value_error(*e, e->value.Scalar() + " is out of range " + range.text() +
                               (range.note ? std::string(" (") + range.note + ")" : ""));
  }
  out = v;
  return true;
}

bool MapReader::integer(std::string_view key, int64_t& out, int64_t lo, int64_t hi) {
  const Entry* e = scalar(key, "an integer");
  if (!e) return false;
  int64_t v = 0;
  if (!YAML::convert<int64_t>::decode(e->value, v)) return type_error(*e, "an integer");
  if (v < lo || v > hi) {
    return value_error(*e, e->value.Scalar() + " is out of range [" + std::to_string(lo) + ", " +
                               std::to_string(hi) + "]");
  }
  out = v;
  return true;
}

bool MapReader::unsigned64(std::string_view key, uint64_t& out) {
  const Entry* e = scalar(key, "a non-negative integer");
  if (!e) return false;
  if (!YAML::convert<uint64_t>::decode(e->value, out)) {
    return type_error(*e, "a non-negative integer");
  }
  return true;
}

bool MapReader::integer_in(std::string_view key, int& out, const std::vector<int>& allowed) {
  int64_t v = 0;
  if (!integer(key, v, std::numeric_limits<int>::min(), std::numeric_limits<int>::max())) {
    return false;
  }
  if (std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
    std::vector<std::string> names;
    for (int a : allowed) names.push_back(std::to_string(a));
    return value_error(*find(key), std::to_string(v) + " is not one of " + join(names));
  }
  out = static_cast<int>(v);
  return true;
}

bool MapReader::boolean(std::string_view key, bool& out) {
  const Entry* e = scalar(key, "true or false");
  if (!e) return false;
  if (!YAML::convert<bool>::decode(e->value, out)) return type_error(*e, "true or false");
  return true;
}

namespace {

// `${NAME}` replaced by the environment variable NAME (so passwords stay out of config files);
// `$$` is a literal `$`; any other `$` is kept. Returns false with `missing` set to the first
// variable that is not set.
bool expand_env(const std::string& in, std::string& out, std::string& missing) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '$' || i + 1 >= in.size()) {
      out += in[i];
    } else if (in[i + 1] == '$') {
      out += '$';
      ++i;
    } else if (in[i + 1] == '{') {
      const size_t close = in.find('}', i + 2);
      const std::string name = close == std::string::npos ? "" : in.substr(i + 2, close - i - 2);
      const bool valid = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                         std::all_of(name.begin(), name.end(), [](char c) {
                           return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                         });
      if (!valid) {
        out += in[i];
        continue;
      }
      const char* v = std::getenv(name.c_str());
      if (!v) {
        missing = name;
        return false;
      }
      out += v;
      i = close;
    } else {
      out += in[i];
    }
  }
  return true;
}

}  // namespace

bool MapReader::text(std::string_view key, std::string& out, TextRule rule) {
  declare(key);
  const Entry* e = find(key);
  if (!e || e->value.IsNull()) return false;
  if (!e->value.IsScalar()) return type_error(*e, "a string");
  std::string s, missing;
  if (!expand_env(e->value.Scalar(), s, missing))
    return value_error(
        *e, "the environment variable " + missing + " (in ${" + missing + "}) is not set");
  if (rule == TextRule::NonEmpty && s.empty()) return value_error(*e, "must not be empty");
  if (rule == TextRule::Name && !is_name(s)) {
    return value_error(*e, "'" + s + "' is not a valid name (1 to 64 of A-Z a-z 0-9 _ -)");
  }
  out = s;
  return true;
}

bool MapReader::choice(std::string_view key, size_t& index, const std::vector<std::string>& names) {
  const Entry* e = scalar(key, "one of " + join(names));
  if (!e) return false;
  const auto it = std::find(names.begin(), names.end(), e->value.Scalar());
  if (it != names.end()) {
    index = static_cast<size_t>(it - names.begin());
    return true;
  }
  return value_error(*e, "'" + e->value.Scalar() + "' is not one of " + join(names) +
                             suggestion(e->value.Scalar(), names));
}

bool MapReader::names(std::string_view key, std::vector<std::string>& out) {
  declare(key);
  const Entry* e = find(key);
  if (!e) return false;
  if (!e->value.IsSequence()) return type_error(*e, "a list of names");
  std::vector<std::string> items;
  bool good = true;
  for (size_t i = 0; i < e->value.size(); ++i) {
    const YAML::Node item = e->value[i];
    const std::string item_path = path_of(key) + "[" + std::to_string(i) + "]";
    cx_.locations[item_path] = cx_.doc.where(item);
    if (!item.IsScalar()) {
      cx_.fail(item_path, "expected a name, got " + shown(item));
      good = false;
    } else {
      items.push_back(item.Scalar());
    }
  }
  if (good) out = std::move(items);
  return good;
}

MapReader MapReader::map(std::string_view key) {
  declare(key);
  const Entry* e = find(key);
  return MapReader(cx_, e ? e->value : YAML::Node(YAML::NodeType::Undefined), path_of(key));
}

YAML::Node MapReader::list(std::string_view key, const std::string& what) {
  declare(key);
  const Entry* e = find(key);
  if (!e) return YAML::Node(YAML::NodeType::Undefined);
  if (!e->value.IsSequence()) {
    type_error(*e, what);
    return YAML::Node(YAML::NodeType::Undefined);
  }
  return e->value;
}

void MapReader::finish(const std::vector<std::string>& elsewhere, std::string_view why) {
  errors_before_finish_ = cx_.errors.count();
  finished_ = true;
  const std::string allowed = "; allowed: " + join(declared_);
  std::vector<std::string> missing = missing_;
  for (const Entry& e : entries_) {
    if (std::find(declared_.begin(), declared_.end(), e.key) != declared_.end()) continue;
    const Location at = cx_.doc.where_key(e.key_node, e.value);
    if (e.key == "<<") {
      cx_.errors.add(at, "YAML merge keys ('<<') are not supported by yaml-cpp 0.7 " +
                             where_text() +
                             "; repeat the keys, or use stream_defaults for streams");
    } else if (std::find(elsewhere.begin(), elsewhere.end(), e.key) != elsewhere.end()) {
      cx_.errors.add(at, "key '" + e.key + "' " + where_text() + " does not apply " +
                             std::string(why) + allowed);
    } else {
      const std::string hint = suggestion(e.key, declared_);
      cx_.errors.add(at, "unknown key '" + e.key + "' " + where_text() + allowed + hint);
      // `engin:` is reported as a misspelling of engine, not also as engine missing.
      std::erase_if(missing, [&](const std::string& m) {
        return !hint.empty() && hint == suggestion(e.key, {m});
      });
    }
  }
  for (const std::string& key : missing) {
    cx_.fail(path_, "missing required key '" + key + "'");
  }
}

std::string MapReader::where_text() const {
  return path_.empty() ? "at the top level" : "in " + path_;
}

void MapReader::add_entry(const YAML::Node& key, const YAML::Node& value) {
  if (!key.IsScalar()) {
    cx_.errors.add(cx_.doc.where(key),
                   "a key " + where_text() + " is " + shown(key) + "; keys are plain names");
    return;
  }
  if (const Entry* first = find(key.Scalar())) {
    cx_.errors.add(cx_.doc.where_key(key, value),
                   "duplicate key '" + key.Scalar() + "' " + where_text() + " (first at " +
                       cx_.doc.where_key(first->key_node, first->value).text + ")");
    return;
  }
  entries_.push_back({key.Scalar(), key, value});
  cx_.locations[path_of(key.Scalar())] = cx_.doc.where(value);
}

const MapReader::Entry* MapReader::find(std::string_view key) const {
  for (const Entry& e : entries_) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

const MapReader::Entry* MapReader::scalar(std::string_view key, const std::string& expected) {
  declare(key);
  const Entry* e = find(key);
  if (!e) return nullptr;
  if (!e->value.IsScalar()) {
    type_error(*e, expected);
    return nullptr;
  }
  return e;
}

bool MapReader::type_error(const Entry& e, const std::string& expected) {
  return value_error(e, "expected " + expected + ", got " + shown(e.value));
}

bool MapReader::value_error(const Entry& e, const std::string& message) {
  cx_.errors.add(cx_.doc.where(e.value), path_of(e.key) + ": " + message);
  return false;
}

// ---------------------------------------------------------------------------------------------
// --set key=value: edits the YAML tree before it is read.

namespace {

bool is_index(std::string_view s) {
  return !s.empty() && s.size() < 9 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Plain text stays text (prompts may hold ': ' or '#'); a value starting with [ { " or ' is YAML,
// so lists, maps and quoted strings can be given too.
YAML::Node override_value(const std::string& value, const std::string& text) {
  if (value.empty() || std::string_view("[{\"'").find(value.front()) == std::string_view::npos) {
    return YAML::Node(value);
  }
  try {
    return YAML::Load(value);
  } catch (const YAML::Exception& e) {
    throw ConfigError("--set " + text + ": the value is not valid YAML: " + e.msg);
  }
}

class OverrideApplier {
 public:
  OverrideApplier(Document& doc, size_t index)
      : doc_(doc), index_(index), text_(doc.overrides()[index]) {}

  void apply() {
    const size_t eq = text_.find('=');
    if (eq == std::string::npos || eq == 0) fail("expected key=value (e.g. engine.threads=4)");
    std::vector<std::string> keys;
    std::stringstream ss(text_.substr(0, eq));
    for (std::string k; std::getline(ss, k, '.');) keys.push_back(k);
    if (text_[eq - 1] == '.') keys.push_back("");
    for (const std::string& k : keys) {
      if (k.empty()) fail("empty key in '" + text_.substr(0, eq) + "'");
    }
    YAML::Node value = override_value(text_.substr(eq + 1), text_);
    if (!doc_.root.IsDefined() || doc_.root.IsNull()) doc_.root.reset(fresh_map());
    if (!doc_.root.IsMap()) fail("the configuration is not a map of keys");
    YAML::Node cur;
    cur.reset(doc_.root);
    std::string walked;
    for (size_t i = 0; i + 1 < keys.size(); ++i) {
      YAML::Node next = child(cur, keys[i], is_index(keys[i + 1]), walked);
      cur.reset(next);
      walked += (walked.empty() ? "" : ".") + keys[i];
    }
    assign(cur, keys.back(), value, walked);
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw ConfigError("--set " + text_ + ": " + why);
  }

  YAML::Node fresh_map() {
    YAML::Node m(YAML::NodeType::Map);
    doc_.attribute(m, index_);
    return m;
  }

  std::string describe(const YAML::Node& n, const std::string& walked) const {
    return "'" + walked + "' is " + shown(n) + ", not a map or list";
  }

  size_t list_index(const YAML::Node& list, const std::string& key,
                    const std::string& walked) const {
    if (!is_index(key)) fail("'" + walked + "' is a list; '" + key + "' is not an index");
    const size_t i = std::stoul(key);
    if (i > list.size()) {
      fail("'" + walked + "' has " + std::to_string(list.size()) + " entries; index " + key +
           " is past the end (use " + std::to_string(list.size()) + " to add one)");
    }
    return i;
  }

  // The child `key` of `cur`, created (as a list when the next key is an index) if absent.
  YAML::Node child(YAML::Node& cur, const std::string& key, bool next_is_index,
                   const std::string& walked) {
    if (cur.IsNull()) cur = fresh_map();  // `stdout:` with nothing below becomes a map
    if (cur.IsMap()) {
      const YAML::Node& const_cur = cur;
      if (!const_cur[key].IsDefined()) {
        YAML::Node created(next_is_index ? YAML::NodeType::Sequence : YAML::NodeType::Map);
        doc_.attribute(created, index_);
        cur[key] = created;
      }
      return cur[key];
    }
    if (cur.IsSequence()) {
      const size_t i = list_index(cur, key, walked);
      if (i == cur.size()) cur.push_back(fresh_map());
      return cur[i];
    }
    fail(describe(cur, walked));
  }

  void assign(YAML::Node& cur, const std::string& key, const YAML::Node& value,
              const std::string& walked) {
    doc_.attribute(value, index_);
    if (cur.IsNull()) cur = fresh_map();
    if (cur.IsMap()) {
      cur[key] = value;
    } else if (cur.IsSequence()) {
      const size_t i = list_index(cur, key, walked);
      if (i == cur.size()) {
        cur.push_back(value);
      } else {
        cur[i] = value;
      }
    } else {
      fail(describe(cur, walked));
    }
  }

  Document& doc_;
  size_t index_;
  std::string text_;
};

}  // namespace

void apply_overrides(Document& doc) {
  for (size_t i = 0; i < doc.overrides().size(); ++i) OverrideApplier(doc, i).apply();
}

}  // namespace rawflow::yaml_config
