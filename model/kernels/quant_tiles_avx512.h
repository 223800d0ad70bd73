#pragma once
// Quantized-matmul tiles for AVX-512 with VNNI and BF16 (Sapphire Rapids, Ice Lake, Zen 4...).
// The AVX2 twin is quant_tiles_avx2.h; quant_matmul.cpp includes the one the build targets.
// Block layouts and the integer formulation of the dot products follow ggml (ggml-org/llama.cpp,
// MIT licence: ggml-cpu/quants.c, arch/x86/repack.cpp, llamafile/sgemm.cpp).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "model/kernels/quant_tiles_common.h"

// GCC 12's AVX-512 headers build some results from _mm512_undefined_*(), which trips these
// warnings once inlined (a known false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace rawflow::qtiles {

// Weight rows per tile. Every W byte is read from memory once per tile and reused for all
// activation rows of the tile while it sits in L1/L2.
constexpr int kNR = 4;
// Activation rows per tile (32 zmm registers hold 4x4 accumulators).
constexpr int kMaxMR = 4;
// Outputs of one tile_chain_q4_0 call (one zmm).
constexpr int kChainOutputs = 16;

// One Q8_0 block as ggml's x86 quantize_row_q8_0 computes it. Returns d as fp16 bits.
uint16_t quantize_block_q8_0(const float* x, int8_t* q) {
  const __m512 v0 = _mm512_loadu_ps(x);
  const __m512 v1 = _mm512_loadu_ps(x + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
  const float d = amax / 127.f;
  const float id = amax != 0.0f ? 127.f / amax : 0.0f;
  const __m512 mul = _mm512_set1_ps(id);
  // cvtps rounds half to even under the default MXCSR, as ggml's _mm256_round_ps(NEAREST).
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q),
                   _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v0, mul))));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16),
                   _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v1, mul))));
  return f32_to_fp16(d);
}

// Broadcasts f[0] to lanes 0-7 and f[1] to lanes 8-15: the scales of a pair of 32-blocks whose
// int32 partial sums occupy those lanes.
inline __m512 pair_scale(__m128 two) {
  const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(two));
}

// NR weight rows x MR activation rows of Q4_0 or Q8_0 weights.
template <bool kIsQ8, int MR>
void tile_q8_0_family(const uint8_t* const* rows, int64_t nb, const ActQ8_0* act,
                      float (*out)[MR]) {
  constexpr size_t kBlockBytes = kIsQ8 ? 34 : 18;
  constexpr int kOffsetShift = kIsQ8 ? 7 : 3;  // level offset 128 or 8
  // Q4_0 byte j holds element j (low nibble) and 16+j (high nibble): with the 16 bytes of each
  // block in two 128-bit lanes, shift the second lane's words right by 4.
  const __m512i nibble_shift = _mm512_set_epi64(0x0004000400040004, 0x0004000400040004, 0, 0,
                                                0x0004000400040004, 0x0004000400040004, 0, 0);
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i sign_flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[kNR][MR];
  for (auto& a : acc)
    for (auto& v : a) v = _mm512_setzero_ps();
  const int64_t npairs = (nb + 1) / 2;
  for (int64_t p = 0; p < npairs; ++p) {
    const int64_t b0 = 2 * p;
    // An odd last block pairs with itself; the activation's padding block is zero, so the
    // duplicate contributes exactly 0.
    const int64_t b1 = std::min(b0 + 1, nb - 1);
    __m512i wq[kNR];
    __m512 dw[kNR];
    for (int r = 0; r < kNR; ++r) {
      const uint8_t* blk0 = rows[r] + b0 * kBlockBytes;
      const uint8_t* blk1 = rows[r] + b1 * kBlockBytes;
      uint16_t h0, h1;
      std::memcpy(&h0, blk0, 2);
      std::memcpy(&h1, blk1, 2);
      dw[r] = pair_scale(_mm_cvtph_ps(_mm_cvtsi32_si128(h0 | (static_cast<int>(h1) << 16))));
      if constexpr (kIsQ8) {
        const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk0 + 2));
        const __m256i q1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk1 + 2));
        wq[r] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1), sign_flip);
      } else {
        const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk0 + 2));
        const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk1 + 2));
        const __m512i both = _mm512_castsi256_si512(_mm256_set_m128i(q1, q0));
        const __m512i dup = _mm512_shuffle_i64x2(both, both, _MM_SHUFFLE(1, 1, 0, 0));
        wq[r] = _mm512_and_si512(_mm512_srlv_epi16(dup, nibble_shift), low4);
      }
    }
    for (int m = 0; m < MR; ++m) {
      const __m512i a = _mm512_loadu_si512(act[m].qs + 64 * p);
      const __m512i bias =
          _mm512_slli_epi32(_mm512_loadu_si512(act[m].nsum4 + 16 * p), kOffsetShift);
      const __m512 dx = pair_scale(
          _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(act[m].d + b0))));
      for (int r = 0; r < kNR; ++r) {
        const __m512i isum = _mm512_dpbusd_epi32(bias, wq[r], a);
        acc[r][m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw[r], dx), acc[r][m]);
      }
    }
  }
  for (int r = 0; r < kNR; ++r)
    for (int m = 0; m < MR; ++m) out[r][m] = _mm512_reduce_add_ps(acc[r][m]);
}

// Block b of two weight rows as unsigned levels: row r0 in the low 256 bits, r1 in the high.
// The offset (128 for Q8_0 made unsigned, 8 for Q4_0) is removed through the activations' nsum4,
// so the int32 lanes equal ggml's signed 4-element dot products exactly.
template <bool kIsQ8>
inline __m512i load_block_row_pair(const uint8_t* r0, const uint8_t* r1, int64_t b) {
  constexpr size_t kBlockBytes = kIsQ8 ? 34 : 18;
  const uint8_t* blk0 = r0 + b * kBlockBytes + 2;
  const uint8_t* blk1 = r1 + b * kBlockBytes + 2;
  if constexpr (kIsQ8) {
    const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk0));
    const __m256i q1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk1));
    return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1),
                            _mm512_set1_epi8(static_cast<char>(0x80)));
  } else {
    // 128-bit lanes [r0, r0, r1, r1]; the odd lanes shifted by 4 give elements 16..31.
    const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk0));
    const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk1));
    const __m512i both = _mm512_castsi256_si512(_mm256_set_m128i(q1, q0));
    const __m512i dup = _mm512_shuffle_i64x2(both, both, _MM_SHUFFLE(1, 1, 0, 0));
    const __m512i shift = _mm512_set_epi64(0x0004000400040004, 0x0004000400040004, 0, 0,
                                           0x0004000400040004, 0x0004000400040004, 0, 0);
    return _mm512_and_si512(_mm512_srlv_epi16(dup, shift), _mm512_set1_epi8(0x0F));
  }
}

// kNR weight rows x MR activation rows in the order of tinyBLAS_Q0_AVX / ggml_vec_dot_q*_0_q8_0:
// each output has 8 lanes (two outputs per zmm), lane i of block b adds the dot of elements
// 4i..4i+3 as fma(d_w*d_x, dot, lane); the block scale product is exact in f32 (two fp16s).
template <bool kIsQ8, int MR>
void tile_lane8(const uint8_t* const* rows, int64_t nb, const ActQ8_0* act, float (*out)[MR]) {
  constexpr size_t kBlockBytes = kIsQ8 ? 34 : 18;
  constexpr int kOffsetShift = kIsQ8 ? 7 : 3;
  static_assert(kNR == 4, "two row pairs per tile");
  __m512 acc[2][MR];
  for (auto& a : acc)
    for (auto& v : a) v = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    // Prefetch 16 blocks (544 bytes) ahead, every other block so about one per cache line;
    // measured 16 > 8 and 32 on decode_bandwidth_k_quants. Prefetches do not touch the numerics.
    if ((b & 1) == 0 && b + 16 < nb)
      for (int r = 0; r < kNR; ++r)
        _mm_prefetch(reinterpret_cast<const char*>(rows[r] + (b + 16) * kBlockBytes), _MM_HINT_T0);
    __m512i wq[2];
    __m512 dw[2];
    for (int q = 0; q < 2; ++q) {
      wq[q] = load_block_row_pair<kIsQ8>(rows[2 * q], rows[2 * q + 1], b);
      const uint32_t h0 = block_scale_bits(rows[2 * q], b, kBlockBytes);
      const uint32_t h1 = block_scale_bits(rows[2 * q + 1], b, kBlockBytes);
      dw[q] = pair_scale(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(h0 | (h1 << 16)))));
    }
    for (int m = 0; m < MR; ++m) {
      const __m512i a = _mm512_broadcast_i64x4(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act[m].qs + kQK8_0 * b)));
      const __m512i bias = _mm512_slli_epi32(
          _mm512_broadcast_i64x4(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act[m].nsum4 + 8 * b))),
          kOffsetShift);
      const __m512 dx = _mm512_set1_ps(act[m].d[b]);
      for (int q = 0; q < 2; ++q) {
        const __m512i isum = _mm512_dpbusd_epi32(bias, wq[q], a);
        acc[q][m] = _mm512_fmadd_ps(_mm512_mul_ps(dw[q], dx), _mm512_cvtepi32_ps(isum), acc[q][m]);
      }
    }
  }
  for (int q = 0; q < 2; ++q)
    for (int m = 0; m < MR; ++m) {
      out[2 * q][m] = hsum_float_8(_mm512_castps512_ps256(acc[q][m]));
      out[2 * q + 1][m] = hsum_float_8(_mm512_extractf32x8_ps(acc[q][m], 1));
    }
}

// Sums each 8-lane half of v[0..15] (int32, so in any order): lane o of *t0 gets v[o]'s low half,
// of *t1 its high half.
inline void reduce_halves_16(const __m512i* v, __m512i* t0, __m512i* t1) {
  __m512i x[4];
  for (int g = 0; g < 4; ++g) {
    const __m512i* a = v + 4 * g;
    const __m512i ab =
        _mm512_add_epi32(_mm512_unpacklo_epi32(a[0], a[1]), _mm512_unpackhi_epi32(a[0], a[1]));
    const __m512i cd =
        _mm512_add_epi32(_mm512_unpacklo_epi32(a[2], a[3]), _mm512_unpackhi_epi32(a[2], a[3]));
    // 128-bit lane q of x[g]: the sums of quarter q of v[4g..4g+3].
    x[g] = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
  }
  // Quarters 0+1 are the low half, 2+3 the high half.
  const __m512i s01 = _mm512_add_epi32(_mm512_shuffle_i32x4(x[0], x[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                       _mm512_shuffle_i32x4(x[0], x[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512i s23 = _mm512_add_epi32(_mm512_shuffle_i32x4(x[2], x[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                       _mm512_shuffle_i32x4(x[2], x[3], _MM_SHUFFLE(3, 1, 3, 1)));
  *t0 = _mm512_shuffle_i32x4(s01, s23, _MM_SHUFFLE(2, 0, 2, 0));
  *t1 = _mm512_shuffle_i32x4(s01, s23, _MM_SHUFFLE(3, 1, 3, 1));
}

// R weight rows x MR activation rows (R*MR = 16 outputs, lane o = r*MR + m) of Q4_0 weights in
// the order of ggml's repacked q4_0_8x8 gemm/gemv: one float chain per output,
// acc = fma(int32 block dot, d_w*d_x, acc), block after block.
template <int R, int MR>
void tile_chain_q4_0(const uint8_t* const* rows, int64_t nb, const ActQ8_0* act, float* out) {
  static_assert(R * MR == 16, "one zmm of outputs");
  constexpr size_t kBlockBytes = 18;
  const __m512i nibble_shift = _mm512_set_epi64(0x0004000400040004, 0x0004000400040004, 0, 0,
                                                0x0004000400040004, 0x0004000400040004, 0, 0);
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512 acc = _mm512_setzero_ps();
  const int64_t npairs = (nb + 1) / 2;
  for (int64_t p = 0; p < npairs; ++p) {
    const int64_t b0 = 2 * p;
    const bool has_b1 = b0 + 1 < nb;
    // A missing second block repeats the first; its activation block is zero padding and its
    // chain step is skipped below.
    const int64_t b1 = has_b1 ? b0 + 1 : b0;
    __m512i wq[R];
    // Per output lane o = r*MR + m: the weight scale bits and the activation scale.
    alignas(32) uint16_t hw0[16], hw1[16];
    alignas(64) float dx0[16], dx1[16];
    for (int r = 0; r < R; ++r) {
      const __m128i q0 =
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[r] + b0 * kBlockBytes + 2));
      const __m128i q1 =
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[r] + b1 * kBlockBytes + 2));
      const __m512i both = _mm512_castsi256_si512(_mm256_set_m128i(q1, q0));
      const __m512i dup = _mm512_shuffle_i64x2(both, both, _MM_SHUFFLE(1, 1, 0, 0));
      wq[r] = _mm512_and_si512(_mm512_srlv_epi16(dup, nibble_shift), low4);
      for (int m = 0; m < MR; ++m) {
        hw0[r * MR + m] = block_scale_bits(rows[r], b0, kBlockBytes);
        hw1[r * MR + m] = block_scale_bits(rows[r], b1, kBlockBytes);
      }
    }
    __m512i v[16];
    for (int m = 0; m < MR; ++m) {
      const __m512i a = _mm512_loadu_si512(act[m].qs + 64 * p);
      const __m512i bias = _mm512_slli_epi32(_mm512_loadu_si512(act[m].nsum4 + 16 * p), 3);
      for (int r = 0; r < R; ++r) {
        v[r * MR + m] = _mm512_dpbusd_epi32(bias, wq[r], a);
        dx0[r * MR + m] = act[m].d[b0];
        dx1[r * MR + m] = act[m].d[b0 + 1];
      }
    }
    __m512i t0, t1;
    reduce_halves_16(v, &t0, &t1);
    // d_w*d_x is exact in f32 (two fp16 values), as in ggml's _mm512_mul_ps(col_scale, row_scale).
    const __m512 ds0 =
        _mm512_mul_ps(_mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(hw0))),
                      _mm512_load_ps(dx0));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t0), ds0, acc);
    if (has_b1) {
      const __m512 ds1 =
          _mm512_mul_ps(_mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(hw1))),
                        _mm512_load_ps(dx1));
      acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t1), ds1, acc);
    }
  }
  _mm512_storeu_ps(out, acc);
}

// --- Q4_0 batches: 16-row panels ---------------------------------------------------------------
// A batch (prefill) against Q4_0 weights runs on panels of 16 weight rows unpacked once per call
// into levels 0..15 (one byte each), laid out so that one zmm holds four consecutive levels of
// each of the 16 rows (int32 lane r = row r). One dpbusd against four broadcast activation bytes
// then advances all 16 outputs of an activation row by 4 elements, with no horizontal sum; the
// panel (K bytes per row, 276 KB at K = 15360) stays in L2 while every activation row runs
// against it, 8 at a time. This is the layout llama.cpp's repack (q4_0x8) builds once at load;
// building it per call keeps the file's bytes the only resident copy of the weights, at the
// cost of one unpacking pass over the weights per call, shared by the call's M rows.
//
// The sums are those of the repacked order, one float chain per output,
// acc = fma(int32 block dot, d_w*d_x, acc), so the result is bit-identical to
// tile_chain_q4_0 and to ggml's q4_0_8x8 gemm.
constexpr int kPanel16Rows = 16;
constexpr int kPanel16MaxMR = 8;
// Levels of one block of the panel: 8 groups (elements 4g..4g+3) x 16 rows x 4 bytes.
constexpr size_t kPanel16BlockBytes = 512;

// Transposes 8 rows of 8 int32 (r[i] = row i) into 8 columns (r[g] = element g of rows 0..7).
inline void transpose_8x8_epi32(__m256i* r) {
  __m256i t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {  // rows 0-3, rows 4-7
    __m256i* th = t + 4 * h;
    u[4 * h + 0] = _mm256_unpacklo_epi64(th[0], th[2]);  // groups 0 | 4
    u[4 * h + 1] = _mm256_unpackhi_epi64(th[0], th[2]);  // groups 1 | 5
    u[4 * h + 2] = _mm256_unpacklo_epi64(th[1], th[3]);  // groups 2 | 6
    u[4 * h + 3] = _mm256_unpackhi_epi64(th[1], th[3]);  // groups 3 | 7
  }
  for (int g = 0; g < 4; ++g) {
    r[g] = _mm256_permute2x128_si256(u[g], u[4 + g], 0x20);
    r[4 + g] = _mm256_permute2x128_si256(u[g], u[4 + g], 0x31);
  }
}

// Unpacks nb blocks of 16 Q4_0 rows into the panel: levels of block b, group g, row r at
// qs[b * 512 + g * 64 + r * 4 .. + 3]; the row scales as floats at d[b * 16 + r].
inline void pack_panel16_q4_0(const uint8_t* const* rows, int64_t nb, uint8_t* qs, float* d) {
  constexpr size_t kBlockBytes = 18;
  const __m256i shift = _mm256_set_epi64x(0x0004000400040004, 0x0004000400040004, 0, 0);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* out = qs + b * kPanel16BlockBytes;
    for (int half = 0; half < 2; ++half) {
      __m256i r[8];
      for (int i = 0; i < 8; ++i) {
        // Byte j holds element j (low nibble) and 16 + j (high nibble): the block's 16 bytes in
        // both 128-bit lanes, the high lane shifted by 4, give elements 0..31 in order.
        const uint8_t* blk = rows[8 * half + i] + b * kBlockBytes + 2;
        const __m256i q =
            _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
        r[i] = _mm256_and_si256(_mm256_srlv_epi16(q, shift), low4);
      }
      transpose_8x8_epi32(r);
      for (int g = 0; g < 8; ++g)
        _mm256_store_si256(reinterpret_cast<__m256i*>(out + 64 * g + 32 * half), r[g]);
    }
    alignas(32) uint16_t h[kPanel16Rows];
    for (int i = 0; i < kPanel16Rows; ++i) h[i] = block_scale_bits(rows[i], b, kBlockBytes);
    _mm512_store_ps(d + kPanel16Rows * b,
                    _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(h))));
  }
}

// MR activation rows against one packed panel: out[m][r] for the panel's 16 rows.
template <int MR>
void tile_panel16_q4_0(const uint8_t* qs, const float* d, int64_t nb, const ActQ8_0* act,
                       float (*out)[kPanel16Rows]) {
  static_assert(MR >= 1 && MR <= kPanel16MaxMR, "8 activation rows fill the registers");
  __m512 acc[MR];
  for (auto& a : acc) a = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* wb = qs + b * kPanel16BlockBytes;
    __m512i w[8];
    for (int g = 0; g < 8; ++g) w[g] = _mm512_load_si512(wb + 64 * g);
    // The levels are the weights + 8: start each block's sum at -8 * (sum of its activations).
    __m512i isum[MR];
    for (int m = 0; m < MR; ++m) isum[m] = _mm512_set1_epi32(8 * act[m].nsum32[b]);
    for (int g = 0; g < 8; ++g)
      for (int m = 0; m < MR; ++m) {
        int32_t a4;
        std::memcpy(&a4, act[m].qs + kQK8_0 * b + 4 * g, 4);
        isum[m] = _mm512_dpbusd_epi32(isum[m], w[g], _mm512_set1_epi32(a4));
      }
    const __m512 dw = _mm512_load_ps(d + kPanel16Rows * b);
    for (int m = 0; m < MR; ++m)
      acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[m]),
                               _mm512_mul_ps(dw, _mm512_set1_ps(act[m].d[b])), acc[m]);
  }
  for (int m = 0; m < MR; ++m) _mm512_storeu_ps(out[m], acc[m]);
}

// NR weight rows x MR activation rows of Q4_K, Q5_K or Q6_K weights against Q8_K activations.
// Per 64-element chunk: dpbusd gives int32 lanes each summing 4 products (|sum| <= 4*63*127 <
// 2^15), dpwssd multiplies them by the sub-block scale (low word; high word of the scale is 0)
// into a per-super-block int32 accumulator. Q6_K's -32 level offset is subtracted from that
// integer accumulator through the activations' bsums (exact, as ggml does); the Q4_K/Q5_K mins
// have their own scale dmin, so they go into a separate float accumulator, also via bsums.
// Super-block int32 sums stay below 256*63*127*127 < 2^31.
template <DType WT, int MR>
void tile_k_quant(const uint8_t* const* rows, int64_t nsb, const ActQ8_K* act, float (*out)[MR]) {
  constexpr size_t kBlockBytes = WT == DType::Q4_K ? 144 : WT == DType::Q5_K ? 176 : 210;
  constexpr bool kIsQ6 = WT == DType::Q6_K;
  // How far ahead (in super-blocks) to prefetch each weight row: four rows interleaved per
  // thread; 4 measured best of 0/4/8/16 on the decode_bandwidth_k_quants shape (noisy host).
  constexpr int64_t kPrefetchBlocks = 4;
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i bits45 = _mm512_set1_epi8(0x30);
  // Words of the upper 256 bits shifted by 4: the high nibbles of a 32-byte run.
  const __m512i shift_0_4 = _mm512_set_epi64(0x0004000400040004, 0x0004000400040004,
                                             0x0004000400040004, 0x0004000400040004, 0, 0, 0, 0);
  const __m512i shift_4_2 = _mm512_set_epi64(
      0x0002000200020002, 0x0002000200020002, 0x0002000200020002, 0x0002000200020002,
      0x0004000400040004, 0x0004000400040004, 0x0004000400040004, 0x0004000400040004);
  const __m512i shift_0_2 = _mm512_set_epi64(0x0002000200020002, 0x0002000200020002,
                                             0x0002000200020002, 0x0002000200020002, 0, 0, 0, 0);
  __m512 facc[kNR][MR];
  __m256 fmin[kNR][MR];  // Q4_K/Q5_K: dmin*dx*sum(min*bsum) lanes
  for (int r = 0; r < kNR; ++r)
    for (int m = 0; m < MR; ++m) {
      facc[r][m] = _mm512_setzero_ps();
      fmin[r][m] = _mm256_setzero_ps();
    }
  for (int64_t sb = 0; sb < nsb; ++sb) {
    const uint8_t* blk[kNR];
    __m512i scales[kNR];
    __m256i offset_weights[kNR];  // int16 multipliers of the 16 bsums (32*sc or the min)
    float d[kNR], dmin[kNR];
    for (int r = 0; r < kNR; ++r) {
      blk[r] = rows[r] + sb * kBlockBytes;
      if (sb + kPrefetchBlocks < nsb) {
        const char* pf = reinterpret_cast<const char*>(blk[r] + kPrefetchBlocks * kBlockBytes);
        for (size_t o = 0; o < kBlockBytes; o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
      }
      if constexpr (kIsQ6) {
        d[r] = half_to_float(blk[r] + 208);
        const __m256i sc16 =
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[r] + 192)));
        scales[r] = _mm512_cvtepu16_epi32(sc16);
        // Levels are stored +32: sum (q-32)*a = sum q*a - 32 * sum a.
        offset_weights[r] = _mm256_slli_epi16(sc16, 5);
      } else {
        d[r] = half_to_float(blk[r]);
        dmin[r] = half_to_float(blk[r] + 2);
        alignas(16) uint8_t sc[8], mn[8];
        unpack_scales_k4(blk[r] + 4, sc, mn);
        scales[r] = _mm512_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc)));
        // Min j covers bsums 2j and 2j+1.
        const __m128i mnv = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn));
        offset_weights[r] = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mnv, mnv));
      }
    }
    __m512i iacc[kNR][MR];
    for (auto& a : iacc)
      for (auto& v : a) v = _mm512_setzero_si512();
        // Unrolled so the chunk's shift pattern and scale index are constants.
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      __m512i wq[kNR], scv[kNR];
      // int32 lane i of the chunk covers elements 4i..4i+3: sub-block 2c + i/8 (32-element
      // sub-blocks) or 4c + i/4 (Q6_K's 16-element sub-blocks).
      const __m512i scale_idx =
          kIsQ6 ? _mm512_set_epi32(4 * c + 3, 4 * c + 3, 4 * c + 3, 4 * c + 3, 4 * c + 2, 4 * c + 2,
                                   4 * c + 2, 4 * c + 2, 4 * c + 1, 4 * c + 1, 4 * c + 1, 4 * c + 1,
                                   4 * c, 4 * c, 4 * c, 4 * c)
                : _mm512_set_epi32(2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1,
                                   2 * c + 1, 2 * c + 1, 2 * c, 2 * c, 2 * c, 2 * c, 2 * c, 2 * c,
                                   2 * c, 2 * c);
      for (int r = 0; r < kNR; ++r) {
        scv[r] = _mm512_permutexvar_epi32(scale_idx, scales[r]);
        if constexpr (WT == DType::Q4_K || WT == DType::Q5_K) {
          // 32 bytes: low nibbles = elements 64c..64c+31, high nibbles = 64c+32..64c+63.
          const uint8_t* qs = blk[r] + (WT == DType::Q4_K ? 16 : 48) + 32 * c;
          const __m512i v =
              _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs)));
          wq[r] = _mm512_and_si512(_mm512_srlv_epi16(v, shift_0_4), low4);
          if constexpr (WT == DType::Q5_K) {
            // Fifth bit of element 64c+32h+l is bit 2c+h of qh[l].
            const __m512i qh = _mm512_broadcast_i64x4(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[r] + 16)));
            const __m512i bit =
                _mm512_inserti64x4(_mm512_set1_epi8(static_cast<char>(1 << (2 * c))),
                                   _mm256_set1_epi8(static_cast<char>(1 << (2 * c + 1))), 1);
            const __mmask64 hi = _mm512_test_epi8_mask(qh, bit);
            wq[r] = _mm512_mask_add_epi8(wq[r], hi, wq[r], _mm512_set1_epi8(16));
          }
        } else {
          // Q6_K half h = c/2: ql[64h..64h+63], qh[32h..32h+31]. Chunk 2h takes the low nibbles
          // and qh bits 0-1 / 2-3; chunk 2h+1 the high nibbles and bits 4-5 / 6-7.
          const int h = c / 2;
          const __m512i ql = _mm512_loadu_si512(blk[r] + 64 * h);
          const __m512i qh = _mm512_broadcast_i64x4(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[r] + 128 + 32 * h)));
          // (ql & 0x0F) | (qh' & 0x30) in one ternary-logic op: imm 0xF8 = A | (B & C) with A =
          // 0xF0, B = 0xCC, C = 0xAA.
          const __m512i lo = c % 2 == 0 ? _mm512_and_si512(ql, low4)
                                        : _mm512_and_si512(_mm512_srli_epi16(ql, 4), low4);
          const __m512i hi =
              c % 2 == 0 ? _mm512_sllv_epi16(qh, shift_4_2) : _mm512_srlv_epi16(qh, shift_0_2);
          wq[r] = _mm512_ternarylogic_epi32(lo, hi, bits45, 0xF8);
        }
      }
      for (int m = 0; m < MR; ++m) {
        const __m512i a =
            _mm512_loadu_si512(act[m].blocks + sb * kQ8_KBlockBytes + kQ8KQsOffset + 64 * c);
        for (int r = 0; r < kNR; ++r) {
          const __m512i t = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq[r], a);
          iacc[r][m] = _mm512_dpwssd_epi32(iacc[r][m], t, scv[r]);
        }
      }
    }
    for (int m = 0; m < MR; ++m) {
      const uint8_t* ablk = act[m].blocks + sb * kQ8_KBlockBytes;
      float dx;
      std::memcpy(&dx, ablk, 4);
      const __m256i bsums =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ablk + kQ8KBsumsOffset));
      for (int r = 0; r < kNR; ++r) {
        // 8 int32 lanes, each the offset term of two bsums.
        const __m256i off = _mm256_madd_epi16(offset_weights[r], bsums);
        __m512i isum = iacc[r][m];
        if constexpr (kIsQ6) {
          isum = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(off));
        } else {
          fmin[r][m] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(off), _mm256_set1_ps(dmin[r] * dx), fmin[r][m]);
        }
        facc[r][m] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(d[r] * dx), facc[r][m]);
      }
    }
  }
  for (int r = 0; r < kNR; ++r)
    for (int m = 0; m < MR; ++m) {
      out[r][m] = _mm512_reduce_add_ps(facc[r][m]);
      if constexpr (!kIsQ6) out[r][m] -= hsum_float_8(fmin[r][m]);
    }
}

template <DType WT, int MR>
void tile_plain(const uint8_t* const* rows, int64_t K, const ActPlain* act, float (*out)[MR]) {
  __m512 acc[kNR][MR];
  for (auto& a : acc)
    for (auto& v : a) v = _mm512_setzero_ps();
  if constexpr (WT == DType::BF16) {
    for (int64_t k = 0; k < K; k += 32) {
      const __mmask32 mask =
          K - k >= 32 ? ~__mmask32{0} : _bzhi_u32(~0u, static_cast<unsigned>(K - k));
      __m512i w[kNR];
      for (int r = 0; r < kNR; ++r) w[r] = _mm512_maskz_loadu_epi16(mask, rows[r] + 2 * k);
      for (int m = 0; m < MR; ++m) {
        const __m512i xv = _mm512_loadu_si512(static_cast<const uint16_t*>(act[m].x) + k);
        for (int r = 0; r < kNR; ++r)
          acc[r][m] = _mm512_dpbf16_ps(acc[r][m], (__m512bh)w[r], (__m512bh)xv);
      }
    }
  } else {
    for (int64_t k = 0; k < K; k += 16) {
      const __mmask16 mask = K - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (K - k)) - 1);
      __m512 w[kNR];
      for (int r = 0; r < kNR; ++r) {
        if constexpr (WT == DType::F16)
          w[r] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, rows[r] + 2 * k));
        else
          w[r] = _mm512_maskz_loadu_ps(mask, rows[r] + 4 * k);
      }
      for (int m = 0; m < MR; ++m) {
        const __m512 xv = _mm512_loadu_ps(static_cast<const float*>(act[m].x) + k);
        for (int r = 0; r < kNR; ++r) acc[r][m] = _mm512_fmadd_ps(w[r], xv, acc[r][m]);
      }
    }
  }
  for (int r = 0; r < kNR; ++r)
    for (int m = 0; m < MR; ++m) out[r][m] = _mm512_reduce_add_ps(acc[r][m]);
}

// ggml's quantize_row_q8_K_ref rounding of one 256-block: nearest_int(iscale*x) rounds the product
// half to even, exactly what cvtps does; written with intrinsics so the product cannot be fused
// into the rounding add.
inline void round_q8_K(const float* x, float iscale, int8_t* qs) {
  const __m512 vs = _mm512_set1_ps(iscale);
  for (int j = 0; j < kQK_K; j += 16) {
    const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(vs, _mm512_loadu_ps(x + j)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + j),
                     _mm512_cvtepi32_epi8(_mm512_min_epi32(v, _mm512_set1_epi32(127))));
  }
}

}  // namespace rawflow::qtiles
