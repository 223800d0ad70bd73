// rawflow batch's inputs (pipeline/batch_inputs.h): expansion of files, directories and globs in
// a stable order, manifests, the shard a process is (flags, then Slurm's and Kubernetes'
// variables), which entries a shard takes, and stable result ids.
#define BOOST_TEST_MODULE test_batch_inputs
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "pipeline/batch_inputs.h"
#include "tests/test_models.h"

using namespace rawflow::pipeline;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path d = rawflow::test::work_dir("test_batch_inputs/" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void touch(const fs::path& p) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << "x";
}

template <class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

BOOST_AUTO_TEST_CASE(directories_recurse_sorted_and_take_media_files_only) {
  const fs::path d = fresh_dir("tree");
  for (const char* f : {"b/2.mp4", "b/1.MKV", "a.wav", "notes.txt", "c/d/e.ts", "c/readme"})
    touch(d / f);
  const auto got = expand_inputs({d.string()});
  const std::vector<std::string> want = {(d / "a.wav").string(), (d / "b/1.MKV").string(),
                                         (d / "b/2.mp4").string(), (d / "c/d/e.ts").string()};
  BOOST_TEST(got == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(files_globs_and_urls_in_argument_order_without_duplicates) {
  const fs::path d = fresh_dir("mixed");
  for (const char* f : {"x1.mp4", "x2.mp4", "y.mp3", "odd name.txt"}) touch(d / f);
  const auto got = expand_inputs({(d / "y.mp3").string(), (d / "x*.mp4").string(), "rtsp://cam/1",
                                  (d / "x1.mp4").string(), (d / "odd name.txt").string()});
  const std::vector<std::string> want = {(d / "y.mp3").string(), (d / "x1.mp4").string(),
                                         (d / "x2.mp4").string(), "rtsp://cam/1",
                                         (d / "odd name.txt").string()};
  BOOST_TEST(got == want, boost::test_tools::per_element());
  // A named file is taken whatever its extension (the run then reports it if it is not media).
  BOOST_TEST(error_of([&] { expand_inputs({(d / "missing.mp4").string()}); }) ==
             (d / "missing.mp4").string() + ": no such file or directory");
  BOOST_TEST(error_of([&] { expand_inputs({(d / "z*.mp4").string()}); }) ==
             (d / "z*.mp4").string() + ": the pattern matches no file");
}

BOOST_AUTO_TEST_CASE(manifest_lines_resolve_against_its_directory) {
  const fs::path d = fresh_dir("manifest");
  std::ofstream(d / "list.txt") << "# archive, week 7\n\n  a.mp4  \n/abs/b.mkv\nsub/c.wav\n"
                                   "https://media.example.org/d.mp4\n";
  const auto got = read_manifest((d / "list.txt").string());
  const std::vector<std::string> want = {(d / "a.mp4").string(), "/abs/b.mkv",
                                         (d / "sub/c.wav").string(),
                                         "https://media.example.org/d.mp4"};
  BOOST_TEST(got == want, boost::test_tools::per_element());
  BOOST_TEST(error_of([&] { read_manifest((d / "nope.txt").string()); }) ==
             (d / "nope.txt").string() + ": cannot read the manifest");
}

BOOST_AUTO_TEST_CASE(shard_from_flags_then_slurm_then_kubernetes) {
  std::map<std::string, std::string> env;
  const auto getenv = [&env](const char* k) -> const char* {
    auto it = env.find(k);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  BOOST_TEST(resolve_shard(std::nullopt, std::nullopt, getenv).index == 0);
  BOOST_TEST(resolve_shard(std::nullopt, std::nullopt, getenv).count == 1);
  env["JOB_COMPLETION_INDEX"] = "1";
  BOOST_TEST(resolve_shard(std::nullopt, 3, getenv).index == 1);
  env["SLURM_ARRAY_TASK_ID"] = "2";
  BOOST_TEST(resolve_shard(std::nullopt, 3, getenv).index == 2);  // Slurm before Kubernetes
  BOOST_TEST(resolve_shard(0, 3, getenv).index == 0);             // the flag before both
  // The count never comes from the environment: without --shard-count, index 2 is out of range.
  BOOST_TEST(error_of([&] { resolve_shard(std::nullopt, std::nullopt, getenv); }) ==
             "SLURM_ARRAY_TASK_ID = 2 is outside 0..0 (--shard-count = 1)");
  env["SLURM_ARRAY_TASK_ID"] = "two";
  BOOST_TEST(error_of([&] { resolve_shard(std::nullopt, 3, getenv); }) ==
             "SLURM_ARRAY_TASK_ID = `two` is not a whole number");
  BOOST_TEST(error_of([&] { resolve_shard(3, 3, getenv); }) ==
             "--shard-index = 3 is outside 0..2 (--shard-count = 3)");
  BOOST_TEST(error_of([&] { resolve_shard(0, 0, getenv); }) ==
             "--shard-count = 0: must be at least 1");
}

BOOST_AUTO_TEST_CASE(shards_cover_every_entry_exactly_once) {
  for (size_t n : {0u, 1u, 7u, 10u})
    for (int64_t count : {1, 3, 4}) {
      std::multiset<size_t> all;
      for (int64_t i = 0; i < count; ++i)
        for (size_t k : shard_positions(n, {i, count})) {
          BOOST_TEST(static_cast<int64_t>(k % count) == i);
          all.insert(k);
        }
      BOOST_TEST(all.size() == n);
      BOOST_TEST(std::set<size_t>(all.begin(), all.end()).size() == n);
    }
}

BOOST_AUTO_TEST_CASE(ids_are_stable_safe_and_distinct) {
  BOOST_TEST(fnv1a64_hex("") == "cbf29ce484222325");   // the FNV-1a 64 offset basis
  BOOST_TEST(fnv1a64_hex("a") == "af63dc4c8601ec8c");  // published test vector
  const std::string a = input_id("/data/x/talk 1.mp4", "cfg1");
  BOOST_TEST(a == input_id("/data/x/talk 1.mp4", "cfg1"));
  BOOST_TEST(a.rfind("talk_1_mp4-", 0) == 0u);
  BOOST_TEST(a.size() == std::string("talk_1_mp4-").size() + 12);
  BOOST_TEST(a != input_id("/data/y/talk 1.mp4", "cfg1"));
  BOOST_TEST(a != input_id("/data/x/talk 1.mp4", "cfg2"));
  BOOST_TEST(input_id("https://h/p?q=1", "c").rfind("p_q_1-", 0) == 0u);
}
