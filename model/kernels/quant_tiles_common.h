#pragma once
// What the quantized-matmul tiles of every ISA share: the activation layouts the drivers in
// quant_matmul.cpp prepare, and small helpers. Internal to model/kernels.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "model/formats/dtype.h"
#include "model/formats/quant.h"

namespace rawflow::qtiles {

constexpr int64_t kQK8_0 = 32;
constexpr int64_t kQK_K = 256;

// Kernel-side layout of one quantized activation row: qs contiguous so a 64-byte load covers a
// pair of blocks; nsum4[i] = -(sum of qs[4i..4i+3]) so the weights' level offset (8 for Q4_0,
// 128 for Q8_0 made unsigned) is folded into the int32 accumulator's start value; d as float;
// nsum32 the same per block.
// Padded with zero blocks to an even block count.
struct ActQ8_0 {
  const int8_t* qs;
  const int32_t* nsum4;
  const float* d;
  const int32_t* nsum32;  // -(sum of the block's 32 qs), per block
};

// ggml's hsum_float_8 (arch/x86/quants.c; tinyBLAS's hsum(__m256) is the same tree).
inline float hsum_float_8(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

inline uint16_t block_scale_bits(const uint8_t* row, int64_t b, size_t block_bytes) {
  uint16_t h;
  std::memcpy(&h, row + b * block_bytes, 2);
  return h;
}

// --- activations for K-quant weights (ggml block_q8_K) -------------------------------------------

constexpr size_t kQ8KQsOffset = 4;
constexpr size_t kQ8KBsumsOffset = 4 + 256;

struct ActQ8_K {
  const uint8_t* blocks;  // ggml block_q8_K, kQ8_KBlockBytes each
};

// Six-bit scales and mins of Q4_K/Q5_K as bytes sc[0..7], mn[0..7] (ggml's utmp unpacking).
inline void unpack_scales_k4(const uint8_t* packed, uint8_t* sc, uint8_t* mn) {
  uint32_t utmp[4];
  std::memcpy(utmp, packed, 12);
  constexpr uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
  utmp[3] = ((utmp[2] >> 4) & kmask2) | (((utmp[1] >> 6) & kmask3) << 4);
  const uint32_t uaux = utmp[1] & kmask1;
  utmp[1] = (utmp[2] & kmask2) | (((utmp[0] >> 6) & kmask3) << 4);
  utmp[2] = uaux;
  utmp[0] &= kmask1;
  std::memcpy(sc, &utmp[0], 8);
  std::memcpy(mn, &utmp[2], 8);
}

// fp16 -> f32 with the F16C instruction (the out-of-line fp16_to_f32 showed up in decode profiles).
inline float half_to_float(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// --- F32 / F16 / BF16 weights ------------------------------------------------------------------

// Activations pre-rounded to the weight's dot type, zero-padded to a multiple of 32 elements:
// floats for F32/F16 (fp16-rounded for F16); for BF16 bf16 bits where the tile multiplies bf16
// pairs (AVX-512 BF16), else bf16-rounded floats, which the AVX2 tile loads without converting.
struct ActPlain {
  const void* x;
};

}  // namespace rawflow::qtiles
