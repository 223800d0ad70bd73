#define BOOST_TEST_MODULE test_config_docs
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

// The keys of docs/config.md's reference tables (those whose header starts `| key | type |`), as
// full paths: a row `reconnect.max_attempts` under `## \`streams[]\`` is
// "streams[].reconnect.max_attempts"; rows under "## Top level" have no prefix. Repeats are kept.
std::vector<std::string> documented_keys(const std::string& markdown) {
  std::vector<std::string> keys;
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
    const size_t open = line.find('`'), close = line.find('`', open + 1), bar = line.find('|', 1);
    BOOST_TEST_REQUIRE(open < bar, "a key row whose first cell is not `key`: " << line);
    keys.push_back(prefix + line.substr(open + 1, close - open - 1));
  }
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
