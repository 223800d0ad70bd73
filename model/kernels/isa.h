#pragma once
// Which kernel family this build compiles (chosen at compile time from the target flags; runtime
// dispatch is not implemented). AVX-512 needs VNNI and BF16 for the integer and bf16 dot products;
// anything less uses the AVX2 + FMA + F16C kernels. The summation orders of each family follow
// what llama.cpp's CPU backend does on the same ISA (docs/model.md).
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512DQ__) && defined(__AVX512VNNI__) && defined(__AVX512BF16__)
#define RAWFLOW_AVX512 1
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define RAWFLOW_AVX512 0
#else
#error "rawflow's kernels need AVX2, FMA and F16C (or AVX-512 with VNNI and BF16)"
#endif

namespace rawflow {
// Lanes of llama.cpp's float accumulators on this ISA (tinyBLAS's KN, ggml's GGML_F32_EPR).
inline constexpr int kSimdFloats = RAWFLOW_AVX512 ? 16 : 8;
}  // namespace rawflow
