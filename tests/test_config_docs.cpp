#define BOOST_TEST_MODULE test_config_docs
#include <yaml-cpp/yaml.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "pipeline/config_keys.h"
#include "pipeline/field_table.h"

using namespace rawflow;
using namespace rawflow::yaml_config;
namespace fs = std::filesystem;

namespace {

// A row of docs/config.md's reference tables (those whose header starts `| key | type |`).
struct DocRow {
  // Full path: a row `reconnect.max_attempts` under "## `streams[]`" is
  // "streams[].reconnect.max_attempts"; rows under "## Top level" have no prefix.
  std::string key;
  std::string default_cell;  // as written, trimmed: "`30`", "**required**", "auto"
};

std::string trimmed(const std::string& s) {
  const size_t b = s.find_first_not_of(' '), e = s.find_last_not_of(' ');
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::vector<std::string> cells(const std::string& row) {
  std::vector<std::string> out;
  std::istringstream in(row.substr(1));
  for (std::string cell; std::getline(in, cell, '|');) out.push_back(trimmed(cell));
  return out;
}

std::vector<DocRow> documented_rows(const std::string& markdown) {
  std::vector<DocRow> rows;
  std::string prefix;
  bool in_key_table = false;
  std::istringstream lines(markdown);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("## ", 0) == 0) {
      const std::string heading = line.substr(3);
      const bool code = heading.size() > 2 && heading.front() == '`' && heading.back() == '`';
      prefix = code ? heading.substr(1, heading.size() - 2) + "." : "";
      in_key_table = false;
      continue;
    }
    if (line.rfind("|", 0) != 0) {
      in_key_table = false;
      continue;
    }
    if (line.rfind("| key | type |", 0) == 0) {
      in_key_table = true;
      continue;
    }
    if (!in_key_table || line.rfind("|---", 0) == 0) continue;
    const std::vector<std::string> c = cells(line);
    BOOST_TEST_REQUIRE(c.size() >= 4u, "a key row with fewer than 4 cells: " << line);
    BOOST_TEST_REQUIRE((c[0].size() > 2 && c[0].front() == '`' && c[0].back() == '`'),
                       "a key row whose first cell is not `key`: " << line);
    rows.push_back({prefix + c[0].substr(1, c[0].size() - 2), c[2]});
  }
  return rows;
}

// The documented keys, repeats kept.
std::vector<std::string> documented_keys(const std::string& markdown) {
  std::vector<std::string> keys;
  for (const DocRow& row : documented_rows(markdown)) keys.push_back(row.key);
  return keys;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  BOOST_TEST_REQUIRE(static_cast<bool>(in), p << " is missing");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string docs_config_md() {
  const char* src = std::getenv("RAWFLOW_SOURCE_DIR");
  BOOST_TEST_REQUIRE(src, "RAWFLOW_SOURCE_DIR is not set (run through ctest)");
  return read_text(fs::path(src) / "docs/config.md");
}

// What `documented` lacks of `declared`, and what it has beyond it; both empty when they agree.
std::pair<std::vector<std::string>, std::vector<std::string>> disagreement(
    const std::vector<std::string>& declared, const std::vector<std::string>& documented) {
  const std::set<std::string> in_tables(declared.begin(), declared.end());
  const std::set<std::string> in_docs(documented.begin(), documented.end());
  std::vector<std::string> undocumented, unknown;
  for (const std::string& k : in_tables) {
    if (!in_docs.count(k)) undocumented.push_back(k);
  }
  for (const std::string& k : in_docs) {
    if (!in_tables.count(k)) unknown.push_back(k);
  }
  return {undocumented, unknown};
}

BOOST_AUTO_TEST_CASE(docs_list_exactly_the_keys_the_tables_hold) {
  const std::vector<std::string> declared = config_key_paths();
  const std::vector<std::string> documented = documented_keys(docs_config_md());
  BOOST_TEST(declared.size() > 70u);  // every section's keys are there, not just the top level
  const auto [undocumented, unknown] = disagreement(declared, documented);
  for (const std::string& k : undocumented) BOOST_ERROR("docs/config.md lacks `" << k << "`");
  for (const std::string& k : unknown) {
    BOOST_ERROR("docs/config.md documents `" << k << "`, which no table declares");
  }
  const std::set<std::string> once(documented.begin(), documented.end());
  BOOST_TEST(once.size() == documented.size(), "docs/config.md documents a key twice");
}

// The value `path` has in a dumped configuration ("" when the dump does not show it); a list's
// items ("tasks[].window_s") are searched in order for the first that has the key.
std::string dumped_value(const YAML::Node& node, const std::string& path) {
  const size_t dot = path.find('.');
  const std::string head = path.substr(0, dot),
                    rest = dot == std::string::npos ? "" : path.substr(dot + 1);
  const bool list = head.size() > 2 && head.compare(head.size() - 2, 2, "[]") == 0;
  const YAML::Node child = node[list ? head.substr(0, head.size() - 2) : head];
  if (!child.IsDefined()) return "";
  if (list) {
    for (const YAML::Node& item : child) {
      if (std::string v = dumped_value(item, rest); !v.empty()) return v;
    }
    return "";
  }
  if (rest.empty()) return child.IsScalar() ? child.Scalar() : "";
  return child.IsMap() ? dumped_value(child, rest) : "";
}

bool same_value(const std::string& a, const std::string& b) {
  if (a == b) return true;
  char* end_a = nullptr;
  char* end_b = nullptr;
  const double x = std::strtod(a.c_str(), &end_a), y = std::strtod(b.c_str(), &end_b);
  return !a.empty() && !b.empty() && *end_a == 0 && *end_b == 0 && x == y;
}

// A default the docs state as one value (`30`, `tcp`, `{stream}/{task}`) is the loader's: the
// dump of a configuration made of the required keys only (every section on) shows it.
BOOST_AUTO_TEST_CASE(documented_defaults_are_the_loaders) {
  const PipelineConfig minimal = load_config_string(
      "streams:\n"
      "  - {name: cam, url: clip.mkv}\n"
      "tasks:\n"
      "  - kind: transcribe\n"
      "  - kind: describe\n"
      "  - {kind: prompt, prompt: p, sampling: {greedy: false}}\n"
      "engine: {model: m.gguf, mmproj: p.gguf}\n"
      "outputs:\n"
      "  zmq: {endpoint: 'tcp://127.0.0.1:1'}\n"
      "  jsonl: {path: r.jsonl}\n"
      "  stdout:\n"
      "metrics:\n"
      "  http:\n",
      "t.yaml");
  const YAML::Node dump = YAML::Load(dump_config(minimal));
  const std::vector<DocRow> rows = documented_rows(docs_config_md());
  std::set<std::string> names;  // "window_s" of "tasks[].window_s"
  for (const DocRow& row : rows) names.insert(row.key.substr(row.key.find_last_of(".") + 1));
  size_t compared = 0;
  for (const DocRow& row : rows) {
    const std::string& cell = row.default_cell;
    const bool one_value = cell.size() > 2 && cell.front() == '`' && cell.back() == '`' &&
                           cell.find_first_of(" (`", 1) == cell.size() - 1;
    if (!one_value) continue;  // **required**, auto, "from the URL", `max(512, …)`, …
    const std::string documented = cell.substr(1, cell.size() - 2);
    const std::string loaded = dumped_value(dump, row.key);
    // Not dumped (`enabled` of a section that is on, overlap_s), or another key's value (hop_s).
    if (loaded.empty() || names.count(documented)) continue;
    ++compared;
    BOOST_TEST(same_value(documented, loaded), "docs/config.md says `"
                                                   << row.key << "` defaults to " << documented
                                                   << "; the loader gives " << loaded);
  }
  BOOST_TEST(compared >= 35u);  // 40 when written
}

// Keys are read under their own names and nested where the document has them.
BOOST_AUTO_TEST_CASE(key_paths_name_nested_keys_as_the_docs_do) {
  const std::vector<std::string> keys = config_key_paths();
  const std::set<std::string> set(keys.begin(), keys.end());
  for (const char* k : {"version", "stream_defaults", "streams[].reconnect.max_attempts",
                        "tasks[].overlap_s", "tasks[].sampling.seed", "engine.prefill_chunk",
                        "outputs.zmq.endpoint", "metrics.http.listen", "metrics.interval_s"}) {
    BOOST_TEST(set.count(k) == 1u, k);
  }
  // stream_defaults takes the stream keys; they are documented once, under streams[].
  BOOST_TEST(set.count("stream_defaults.kind") == 0u);
}

// ---------------------------------------------------------------------------------------------
// Adding a key takes one table row (plus the struct member it fills) and one line in
// docs/config.md. Shown on a table like engine's: the row below is all the reading, checking,
// messages and dump need.

struct Engine {
  int threads = 0;
  double warmup_s = 1.5;  // the new key's member; its initializer is the default
};

const FieldTable<Engine> kWithoutWarmup = {{
    integer("threads", &Engine::threads, 0, 4096),
}};

FieldTable<Engine> with_warmup() {
  FieldTable<Engine> t = kWithoutWarmup;
  t.fields.push_back(number("warmup_s", &Engine::warmup_s, {0, 60}));  // the one row
  return t;
}

std::string error_of(const std::string& yaml, const FieldTable<Engine>& table) {
  try {
    read_map(yaml, "e.yaml", table);
  } catch (const ConfigError& e) {
    return e.what();
  }
  BOOST_ERROR("no ConfigError for: " << yaml);
  return "";
}

BOOST_AUTO_TEST_CASE(a_new_key_is_one_table_row) {
  BOOST_TEST(error_of("threads: 2\nwarmup_s: 3\n", kWithoutWarmup) ==
             "e.yaml:2:1: unknown key 'warmup_s' at the top level; allowed: threads");

  const FieldTable<Engine> table = with_warmup();
  const Engine read = read_map("threads: 2\nwarmup_s: 3\n", "e.yaml", table);
  BOOST_TEST(read.threads == 2);
  BOOST_TEST(read.warmup_s == 3.0);
  BOOST_TEST(read_map("threads: 2\n", "e.yaml", table).warmup_s == 1.5);  // the default
  BOOST_TEST(error_of("warmup_s: 99\n", table) ==
             "e.yaml:1:11: warmup_s: 99 is out of range [0, 60]");
  BOOST_TEST(error_of("warmup_s: soon\n", table) ==
             "e.yaml:1:11: warmup_s: expected a number, got 'soon'");
  BOOST_TEST(error_of("warmup: 3\n", table) ==
             "e.yaml:1:1: unknown key 'warmup' at the top level; allowed: threads, warmup_s; did "
             "you mean 'warmup_s'?");
  BOOST_TEST(dump_map(table, read) == "threads: 2\nwarmup_s: 3");
  // Dumped and read back, the values are the same.
  const Engine again = read_map(dump_map(table, read), "dump.yaml", table);
  BOOST_TEST(again.warmup_s == read.warmup_s);
}

BOOST_AUTO_TEST_CASE(a_new_key_needs_its_doc_line) {
  const std::string docs_before =
      "## `engine`\n\n"
      "| key | type | default | allowed | meaning |\n"
      "|---|---|---|---|---|\n"
      "| `threads` | integer | `0` | [0, 4096] | Engine threads. |\n";
  const std::string docs_after =
      docs_before + "| `warmup_s` | number | `1.5` | [0, 60] | Seconds of warm-up. |\n";
  std::vector<std::string> declared;
  for (const std::string& k : key_paths(with_warmup())) declared.push_back("engine." + k);

  const auto [undocumented, unknown] = disagreement(declared, documented_keys(docs_before));
  BOOST_TEST(undocumented == std::vector<std::string>{"engine.warmup_s"},
             boost::test_tools::per_element());
  BOOST_TEST(unknown.empty());
  const auto [still_undocumented, still_unknown] =
      disagreement(declared, documented_keys(docs_after));
  BOOST_TEST(still_undocumented.empty());
  BOOST_TEST(still_unknown.empty());
}

}  // namespace
