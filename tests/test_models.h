#pragma once
// Fixtures shared by the tests that run the decoder: a work folder and the synthesized `tiny`
// model (random F32 weights, made at test time). Header only: tests/CMakeLists.txt builds every
// tests/test_*.cpp as its own test, and this file is not one.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "model/model_loader.h"
#include "model/synth/synth.h"

namespace rawflow::test {

// $RAWFLOW_TEST_WORK/<folder> (or /tmp/<folder> outside CTest), created if missing.
inline std::string work_dir(const std::string& folder) {
  const char* w = std::getenv("RAWFLOW_TEST_WORK");
  std::string dir = std::string(w ? w : "/tmp") + "/" + folder;
  std::filesystem::create_directories(dir);
  return dir;
}

// The `tiny` F32 model synthesized with `seed` into work_dir(folder), written and loaded once per
// process for each (seed, folder): the tests of one file share it.
inline const LoadedModel& tiny_model(uint64_t seed, const std::string& folder) {
  static std::map<std::pair<uint64_t, std::string>, std::unique_ptr<LoadedModel>> cache;
  std::unique_ptr<LoadedModel>& m = cache[{seed, folder}];
  if (!m) {
    SynthOptions o;
    o.preset = "tiny";
    o.dtype = DType::F32;
    o.seed = seed;
    o.out = work_dir(folder) + "/tiny-f32.gguf";
    synth_model(o);
    m = std::make_unique<LoadedModel>(load_model(o.out));
  }
  return *m;
}

// The `tiny` F32 model with its embedders (a `clip` mmproj GGUF next to it), synthesized with
// `seed` into work_dir(folder) once per process; returns {model path, mmproj path}.
inline std::pair<std::string, std::string> tiny_model_files_with_mmproj(uint64_t seed,
                                                                        const std::string& folder) {
  static std::map<std::pair<uint64_t, std::string>, std::pair<std::string, std::string>> cache;
  auto it = cache.find({seed, folder});
  if (it != cache.end()) return it->second;
  SynthOptions o;
  o.preset = "tiny";
  o.dtype = DType::F32;
  o.seed = seed;
  o.out = work_dir(folder) + "/tiny-f32.gguf";
  o.mmproj = true;
  o.mmproj_out = work_dir(folder) + "/tiny-f32-mmproj.gguf";
  synth_model(o);
  return cache[{seed, folder}] = {o.out, o.mmproj_out};
}

}  // namespace rawflow::test
