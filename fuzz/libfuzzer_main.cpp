// libFuzzer's entry for one target, chosen at compile time (fuzz/CMakeLists.txt builds this file
// once per target with RAWFLOW_FUZZ_TARGET set to its function).
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rawflow::fuzz::RAWFLOW_FUZZ_TARGET(data, size);
  return 0;
}
