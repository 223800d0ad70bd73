#define BOOST_TEST_MODULE test_fuzz_regressions
// Every input a fuzzer found a defect with (fuzz/regressions/<target>/) runs through its target
// again, with this build's compiler and sanitizers: a defect that comes back aborts the test.
// docs/reliability.md lists the findings.
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/fuzz_targets.h"

namespace fs = std::filesystem;
using namespace rawflow::fuzz;

namespace {

fs::path source_dir() {
  const char* s = std::getenv("RAWFLOW_SOURCE_DIR");
  BOOST_REQUIRE_MESSAGE(s, "RAWFLOW_SOURCE_DIR is not set (ctest sets it)");
  return s;
}

std::vector<uint8_t> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_finding_is_fixed) {
  const fs::path root = source_dir() / "fuzz" / "regressions";
  BOOST_REQUIRE(fs::is_directory(root));
  size_t replayed = 0;
  for (const auto& target : kTargets) {
    const fs::path dir = root / std::string(target.name);
    if (!fs::is_directory(dir)) continue;
    for (const auto& f : fs::directory_iterator(dir)) {
      BOOST_TEST_MESSAGE(std::string(target.name) + ": " + f.path().filename().string());
      const auto bytes = read_file(f.path());
      target.run(bytes.data(), bytes.size());
      ++replayed;
    }
  }
  // Every directory under regressions/ is a target's: a misspelt one would be silently skipped.
  for (const auto& d : fs::directory_iterator(root)) {
    bool known = false;
    for (const auto& target : kTargets) known = known || d.path().filename() == target.name;
    BOOST_TEST(known, d.path().filename() << " is not a fuzz target");
  }
  BOOST_TEST_MESSAGE(replayed << " findings replayed");
}
