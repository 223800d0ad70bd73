#pragma once
// Quantized-matmul tiles for AVX2 + FMA + F16C (Zen 2/3, Haswell to Alder Lake...): the twin of
// quant_tiles_avx512.h with the same functions and the same numerics contract. The integer dot
// products are exact on both ISAs, so Q8_0/Q4_0 results are bit-identical between them; the
// float-lane orders of F32/F16/BF16 follow llama.cpp's AVX2 build (tinyBLAS with 8 lanes).
// Block layouts and the integer formulation follow ggml (ggml-org/llama.cpp, MIT licence:
// ggml-cpu/arch/x86/quants.c, arch/x86/repack.cpp, llamafile/sgemm.cpp).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "model/kernels/quant_tiles_common.h"

namespace rawflow::qtiles {

// Weight rows per tile; activation rows per tile (16 ymm registers: 4x2 accumulators plus the
// weights); outputs of one tile_chain_q4_0 call (one ymm).
constexpr int kNR = 4;
constexpr int kMaxMR = 2;
constexpr int kChainOutputs = 8;

// One Q8_0 block as ggml's x86 quantize_row_q8_0 computes it (AVX2 path: id = 127/amax, products
// rounded half to even). Returns d as fp16 bits.
inline uint16_t quantize_block_q8_0(const float* x, int8_t* q) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 v[4];
  __m256 amax = _mm256_setzero_ps();
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm256_loadu_ps(x + 8 * i);
    amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[i]));
  }
  __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(amax, 1), _mm256_castps256_ps128(amax));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const float mx = _mm_cvtss_f32(m4);
  const float d = mx / 127.f;
  const __m256 mul = _mm256_set1_ps(mx != 0.0f ? 127.f / mx : 0.0f);
  for (int i = 0; i < 4; ++i) {
    const __m256i n = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], mul));
    const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(n), _mm256_extracti128_si256(n, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q + 8 * i), _mm_packs_epi16(w16, w16));
  }
  return f32_to_fp16(d);
}

// 32 levels of block b: Q8_0 signed as stored; Q4_0 unsigned nibbles 0..15 (low nibbles are
// elements 0..15, high nibbles 16..31).
template <bool kIsQ8>
inline __m256i load_block_levels(const uint8_t* row, int64_t b) {
  if constexpr (kIsQ8) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * 34 + 2));
  } else {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + b * 18 + 2));
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
  }
}

// Eight int32 lanes, lane i = the exact signed dot product of elements 4i..4i+3.
// Q8_0 (w signed): ggml's mul_sum_i8_pairs — |w| times a with w's sign, so maddubs never
// saturates (|pair| <= 2*128*127). Q4_0 (w unsigned 0..15): maddubs directly, then the level
// offset 8 removed through the activation's precomputed nsum4 (= -sum of 4 activations).
template <bool kIsQ8>
inline __m256i dot4(__m256i w, __m256i w_abs, __m256i a, const int32_t* nsum4) {
  const __m256i ones = _mm256_set1_epi16(1);
  if constexpr (kIsQ8) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w_abs, _mm256_sign_epi8(a, w)), ones);
  } else {
    const __m256i bias =
        _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(nsum4)), 3);
    return _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(w, a), ones), bias);
  }
}

// kNR weight rows x MR activation rows in the order of tinyBLAS_Q0_AVX / ggml_vec_dot_q*_0_q8_0:
// per output 8 float lanes, lane i of block b adds fma(d_w*d_x, dot of elements 4i..4i+3, lane);
// the block scale product is exact in f32 (two fp16s). Then ggml's hsum_float_8.
template <bool kIsQ8, int MR>
void tile_lane8(const uint8_t* const* rows, int64_t nb, const ActQ8_0* act, float (*out)[MR]) {
  constexpr size_t kBlockBytes = kIsQ8 ? 34 : 18;
  __m256 acc[kNR][MR];
  for (auto& a : acc)
    for (auto& v : a) v = _mm256_setzero_ps();
  // As in tile_k_quant: the next tile's rows, in address order, kNR blocks' worth per step.
  const char* next = reinterpret_cast<const char*>(rows[kNR - 1] + nb * kBlockBytes);
  constexpr int64_t kStepBytes = kNR * static_cast<int64_t>(kBlockBytes);
  for (int64_t b = 0; b < nb; ++b) {
    for (int64_t o = b * kStepBytes; o < (b + 1) * kStepBytes; o += 64)
      _mm_prefetch(next + o, _MM_HINT_T0);
    __m256i w[kNR], w_abs[kNR];
    float dw[kNR];
    for (int r = 0; r < kNR; ++r) {
      w[r] = load_block_levels<kIsQ8>(rows[r], b);
      if constexpr (kIsQ8) w_abs[r] = _mm256_sign_epi8(w[r], w[r]);
      dw[r] = _cvtsh_ss(block_scale_bits(rows[r], b, kBlockBytes));
    }
    for (int m = 0; m < MR; ++m) {
      const __m256i a =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act[m].qs + kQK8_0 * b));
      const float dx = act[m].d[b];
      for (int r = 0; r < kNR; ++r) {
        const __m256i isum = dot4<kIsQ8>(w[r], w_abs[r], a, act[m].nsum4 + 8 * b);
        acc[r][m] =
            _mm256_fmadd_ps(_mm256_set1_ps(dw[r] * dx), _mm256_cvtepi32_ps(isum), acc[r][m]);
      }
    }
  }
  for (int r = 0; r < kNR; ++r)
    for (int m = 0; m < MR; ++m) out[r][m] = hsum_float_8(acc[r][m]);
}

// The default Q4_0/Q8_0 kernel: on AVX2 the vec_dot order above costs nothing extra.
template <bool kIsQ8, int MR>
void tile_q8_0_family(const uint8_t* const* rows, int64_t nb, const ActQ8_0* act,
                      float (*out)[MR]) {
  tile_lane8<kIsQ8, MR>(rows, nb, act, out);
}

// Sums of each of eight int32 vectors, in lane order: lane o = sum of v[o]'s lanes.
inline __m256i hsum8_epi32(const __m256i* v) {
  const __m256i s01 = _mm256_hadd_epi32(v[0], v[1]);
  const __m256i s23 = _mm256_hadd_epi32(v[2], v[3]);
  const __m256i s45 = _mm256_hadd_epi32(v[4], v[5]);
  const __m256i s67 = _mm256_hadd_epi32(v[6], v[7]);
  // 128-bit lane 0 holds the partial sums of elements 0..3 of v0..v3, lane 1 of elements 4..7.
  const __m256i s0123 = _mm256_hadd_epi32(s01, s23);
  const __m256i s4567 = _mm256_hadd_epi32(s45, s67);
  return _mm256_add_epi32(_mm256_permute2x128_si256(s0123, s4567, 0x20),
                          _mm256_permute2x128_si256(s0123, s4567, 0x31));
}

// R weight rows x MR activation rows (R*MR = 8 outputs, lane o = r*MR + m) of Q4_0 weights in
// the order of ggml's repacked q4_0_8x8 gemm/gemv: one float chain per output,
// acc = fma(int32 block dot, d_w*d_x, acc), block after block.
template <int R, int MR>
void tile_chain_q4_0(const uint8_t* const* rows, int64_t nb, const ActQ8_0* act, float* out) {
  static_assert(R * MR == kChainOutputs, "one ymm of outputs");
  constexpr size_t kBlockBytes = 18;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m256i w[R];
    alignas(16) uint16_t hw[8];
    alignas(32) float dx[8];
    for (int r = 0; r < R; ++r) {
      w[r] = load_block_levels<false>(rows[r], b);
      for (int m = 0; m < MR; ++m) hw[r * MR + m] = block_scale_bits(rows[r], b, kBlockBytes);
    }
    __m256i v[8];
    for (int m = 0; m < MR; ++m) {
      const __m256i a =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act[m].qs + kQK8_0 * b));
      for (int r = 0; r < R; ++r) {
        v[r * MR + m] = dot4<false>(w[r], w[r], a, act[m].nsum4 + 8 * b);
        dx[r * MR + m] = act[m].d[b];
      }
    }
    // d_w*d_x is exact in f32 (two fp16 values), as in ggml's _mm256_mul_ps(col_scale, row_scale).
    const __m256 ds = _mm256_mul_ps(
        _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(hw))), _mm256_load_ps(dx));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hsum8_epi32(v)), ds, acc);
  }
  _mm256_storeu_ps(out, acc);
}

// --- batches of Q4_0 / Q8_0: eight weight rows in the lanes of a panel -------------------------

// Bytes of one block of eight rows in a panel: chunk c (elements 4c..4c+3 of the block) of row r
// at c * 32 + r * 4, so one 32-byte load gives the same four elements of all eight rows. Q8_0
// panels hold |w| in the next 256 bytes, which the products need as well.
constexpr int64_t kPanelRows = 8;
template <bool kIsQ8>
constexpr int64_t kPanelBlockBytes = kPanelRows* kQK8_0*(kIsQ8 ? 2 : 1);

// Transposes eight rows of eight dwords (v[r] = row r) into v[c] = dword c of every row.
inline void transpose8_epi32(__m256i* v) {
  const __m256i t0 = _mm256_unpacklo_epi32(v[0], v[1]), t1 = _mm256_unpackhi_epi32(v[0], v[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(v[2], v[3]), t3 = _mm256_unpackhi_epi32(v[2], v[3]);
  const __m256i t4 = _mm256_unpacklo_epi32(v[4], v[5]), t5 = _mm256_unpackhi_epi32(v[4], v[5]);
  const __m256i t6 = _mm256_unpacklo_epi32(v[6], v[7]), t7 = _mm256_unpackhi_epi32(v[6], v[7]);
  const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
  const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
  const __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
  const __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
  v[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
  v[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
  v[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
  v[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
  v[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
  v[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
  v[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
  v[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

// Unpacks eight weight rows of nb blocks into a panel: levels (Q4_0: unsigned nibbles 0..15;
// Q8_0: signed as stored) in the chunk-interleaved layout above, and the block scales as floats,
// eight per block. Done once per eight rows of a batch and reused by every activation row, so the
// weights stay in the file's layout (no repacked copy is kept) at a cost amortised over the batch.
template <bool kIsQ8>
void pack_panel8(const uint8_t* const* rows, int64_t nb, uint8_t* qs, float* d) {
  constexpr size_t kBlockBytes = kIsQ8 ? 34 : 18;
  for (int64_t b = 0; b < nb; ++b) {
    __m256i v[kPanelRows];
    alignas(16) uint16_t h[kPanelRows];
    for (int r = 0; r < kPanelRows; ++r) {
      v[r] = load_block_levels<kIsQ8>(rows[r], b);
      h[r] = block_scale_bits(rows[r], b, kBlockBytes);
    }
    transpose8_epi32(v);
    uint8_t* blk = qs + b * kPanelBlockBytes<kIsQ8>;
    for (int c = 0; c < kPanelRows; ++c) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(blk + 32 * c), v[c]);
      if constexpr (kIsQ8)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(blk + 256 + 32 * c),
                            _mm256_sign_epi8(v[c], v[c]));
    }
    _mm256_storeu_ps(d + 8 * b,
                     _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(h))));
  }
}

// An empty asm that takes v in a register: the compiler cannot reassociate a chain of integer
// adds across it. Left alone, GCC turns the per-chunk sums of tile_panel8_q4_0 into a tree whose
// leaves (every product of a block) are all live at once and spill to the stack.
inline void keep_in_order(__m256i& v) { asm("" : "+x"(v)); }

// Eight panel rows x MR activation rows of Q4_0: per output the exact int32 dot of each block, then
// one float chain acc = fma(dot, d_w*d_x, acc) block after block — the order of ggml's repacked
// q4_0_8x8 gemm, so the results are bit-identical to llama.cpp's (and to tile_chain_q4_0).
// maddubs of the unsigned levels with the int8 activations gives int16 pair sums (|.| <= 2*15*127),
// and the eight chunks of a block add up in int16 (|.| <= 30480) before one widening madd; the
// level offset 8 is removed through the block's activation sum.
template <int MR>
void tile_panel8_q4_0(const uint8_t* qs, const float* d, int64_t nb, const ActQ8_0* act,
                      float (*out)[kPanelRows]) {
  const __m256i ones = _mm256_set1_epi16(1);
  const int8_t* aq[MR];
  for (int m = 0; m < MR; ++m) aq[m] = act[m].qs;
  __m256 acc[MR];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m) acc[m] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = qs + b * kPanelBlockBytes<false>;
    const __m256 dw = _mm256_loadu_ps(d + 8 * b);
    // Activation rows outermost, for the same reason as keep_in_order: each row's products are
    // summed as they come, and the weights are reloaded from L1.
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      __m256i p16 = _mm256_setzero_si256();
#pragma GCC unroll 8
      for (int c = 0; c < 8; ++c) {
        const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 * c));
        int32_t a4;
        std::memcpy(&a4, aq[m] + kQK8_0 * b + 4 * c, 4);
        p16 = _mm256_add_epi16(p16, _mm256_maddubs_epi16(w, _mm256_set1_epi32(a4)));
        keep_in_order(p16);
      }
      const __m256i bias = _mm256_slli_epi32(_mm256_set1_epi32(act[m].nsum32[b]), 3);
      const __m256i isum = _mm256_add_epi32(_mm256_madd_epi16(p16, ones), bias);
      acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum),
                               _mm256_mul_ps(dw, _mm256_broadcast_ss(act[m].d + b)), acc[m]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m) _mm256_storeu_ps(out[m], acc[m]);
}

// Eight panel rows x one activation row of Q8_0 in tinyBLAS's order (tile_lane8's): lane c of
// tinyBLAS's accumulator sums the products of elements 4c..4c+3 of every block, which is chunk c of
// the panel, so eight accumulators, one per chunk with the eight rows in their lanes, hold exactly
// tinyBLAS's lanes; ggml's hsum_float_8 tree then runs across the accumulators, row by row.
// Bit-identical to tile_lane8 and to llama.cpp; products as in dot4 (|w| times a with w's sign).
inline void tile_panel8_q8_0(const uint8_t* qs, const float* d, int64_t nb, const ActQ8_0& act,
                             float* out) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[8];
  for (auto& a : acc) a = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = qs + b * kPanelBlockBytes<true>;
    const __m256 ds = _mm256_mul_ps(_mm256_loadu_ps(d + 8 * b), _mm256_broadcast_ss(act.d + b));
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c) {
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 * c));
      const __m256i w_abs =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 256 + 32 * c));
      int32_t a4;
      std::memcpy(&a4, act.qs + kQK8_0 * b + 4 * c, 4);
      const __m256i p = _mm256_maddubs_epi16(w_abs, _mm256_sign_epi8(_mm256_set1_epi32(a4), w));
      acc[c] = _mm256_fmadd_ps(ds, _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones)), acc[c]);
    }
  }
  const __m256 s =
      _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6])),
                    _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7])));
  _mm256_storeu_ps(out, s);
}

// One super-block of a K-quant weight row unpacked to 256 unsigned levels (8 vectors of 32, in
// element order) and 16 int16 scales, one per 16 elements; for Q4_K/Q5_K also 16 int16 mins (one
// per 16 elements, each sub-block's min twice) and d, dmin.
struct KBlock {
  __m256i levels[8];
  __m256i scales16;  // int16, scale of elements 16i..16i+15
  __m256i mins16;    // Q4_K/Q5_K: int16, min of elements 16i..16i+15
  float d = 0, dmin = 0;
};

template <DType WT>
inline void unpack_k_block(const uint8_t* blk, KBlock* kb) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  if constexpr (WT == DType::Q6_K) {
    // ql[128], qh[64], scales[16] (int8), d: per half h, elements 128h + 32j + l for j = 0..3.
    const uint8_t* ql = blk;
    const uint8_t* qh = blk + 128;
    const __m256i three = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; ++h) {
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 64 * h));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 64 * h + 32));
      const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh + 32 * h));
      auto high = [&](int shift) {
        return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, shift), three), 4);
      };
      kb->levels[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, low4), high(0));
      kb->levels[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, low4), high(2));
      kb->levels[4 * h + 2] =
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4), high(4));
      kb->levels[4 * h + 3] =
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4), high(6));
    }
    kb->scales16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 192)));
    kb->d = half_to_float(blk + 208);
  } else {
    // d, dmin, scales[12], (Q5_K: qh[32]), qs[128]: 64-element group j has its low 32 elements
    // in the low nibbles of qs[32j..32j+31] and the next 32 in the high nibbles.
    constexpr bool kIsQ5 = WT == DType::Q5_K;
    kb->d = half_to_float(blk);
    kb->dmin = half_to_float(blk + 2);
    uint8_t sc[8], mn[8];
    unpack_scales_k4(blk + 4, sc, mn);
    alignas(32) int16_t s16[16], m16[16];
    for (int i = 0; i < 16; ++i) {
      s16[i] = sc[i / 2];
      m16[i] = mn[i / 2];
    }
    kb->scales16 = _mm256_load_si256(reinterpret_cast<const __m256i*>(s16));
    kb->mins16 = _mm256_load_si256(reinterpret_cast<const __m256i*>(m16));
    const uint8_t* qs = blk + (kIsQ5 ? 48 : 16);
    __m256i qh = _mm256_setzero_si256();
    if constexpr (kIsQ5) qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16));
    const __m256i one = _mm256_set1_epi8(1);
    for (int j = 0; j < 4; ++j) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * j));
      __m256i lo = _mm256_and_si256(q, low4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
      if constexpr (kIsQ5) {
        lo = _mm256_or_si256(
            lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j), one), 4));
        hi = _mm256_or_si256(
            hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j + 1), one), 4));
      }
      kb->levels[2 * j] = lo;
      kb->levels[2 * j + 1] = hi;
    }
  }
}

// NR weight rows x MR activation rows of Q4_K, Q5_K or Q6_K weights against Q8_K activations.
// Per 32 elements: maddubs of the unsigned levels (<= 63) with the int8 activations gives int16
// pair sums (|.| <= 2*63*128, no saturation), madd with the 16-element scales gives int32 lanes
// summed per super-block (< 2^31). Q6_K's -32 level offset is subtracted in integers through the
// activations' bsums, as ggml does; the Q4_K/Q5_K mins (scale dmin) also go through bsums.
template <DType WT, int MR>
void tile_k_quant(const uint8_t* const* rows, int64_t nsb, const ActQ8_K* act, float (*out)[MR]) {
  constexpr size_t kBlockBytes = WT == DType::Q4_K ? 144 : WT == DType::Q5_K ? 176 : 210;
  constexpr bool kIsQ6 = WT == DType::Q6_K;
  __m256 acc[kNR][MR];
  for (auto& a : acc)
    for (auto& v : a) v = _mm256_setzero_ps();
  // The tile reads kNR short rows side by side (3 KB each on the 12B), too short for the
  // hardware prefetcher to pick up each stream; the next tile's rows follow this tile's in
  // memory, so each step prefetches one block's worth of them, in address order (past the
  // matrix's end at its last tile: prefetches never fault).
  const char* next = reinterpret_cast<const char*>(rows[kNR - 1] + nsb * kBlockBytes);
  for (int64_t sb = 0; sb < nsb; ++sb) {
    for (int r = 0; r < kNR; ++r) {
      const uint8_t* blk = rows[r] + sb * kBlockBytes;
      const char* pf = next + (sb * kNR + r) * static_cast<int64_t>(kBlockBytes);
      for (size_t o = 0; o < kBlockBytes + 63; o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
      KBlock kb;
      unpack_k_block<WT>(blk, &kb);
      // The scale of 16 elements broadcast over the 8 int16 lanes that hold their pair sums.
      alignas(32) int16_t s16[16];
      _mm256_store_si256(reinterpret_cast<__m256i*>(s16), kb.scales16);
      for (int m = 0; m < MR; ++m) {
        const uint8_t* ablk = act[m].blocks + sb * kQ8_KBlockBytes;
        float dx;
        std::memcpy(&dx, ablk, 4);
        const auto* aq = reinterpret_cast<const __m256i*>(ablk + kQ8KQsOffset);
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 8; ++c) {
          const __m256i p = _mm256_maddubs_epi16(kb.levels[c], _mm256_loadu_si256(aq + c));
          const __m256i sc =
              _mm256_set_m128i(_mm_set1_epi16(s16[2 * c + 1]), _mm_set1_epi16(s16[2 * c]));
          isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, sc));
        }
        const __m256i bsums =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ablk + kQ8KBsumsOffset));
        if constexpr (kIsQ6) {
          const __m256i off = _mm256_madd_epi16(bsums, kb.scales16);
          isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(off, 5));
          acc[r][m] =
              _mm256_fmadd_ps(_mm256_set1_ps(kb.d * dx), _mm256_cvtepi32_ps(isum), acc[r][m]);
        } else {
          const __m256i mins = _mm256_madd_epi16(bsums, kb.mins16);
          acc[r][m] =
              _mm256_fmadd_ps(_mm256_set1_ps(kb.d * dx), _mm256_cvtepi32_ps(isum), acc[r][m]);
          acc[r][m] =
              _mm256_fnmadd_ps(_mm256_set1_ps(kb.dmin * dx), _mm256_cvtepi32_ps(mins), acc[r][m]);
        }
      }
    }
  }
  for (int r = 0; r < kNR; ++r)
    for (int m = 0; m < MR; ++m) out[r][m] = hsum_float_8(acc[r][m]);
}

// Eight weights at k as floats (bf16 widened exactly by a shift).
template <DType WT>
inline __m256 load_weights8(const uint8_t* row, int64_t k) {
  if constexpr (WT == DType::F32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k));
    if constexpr (WT == DType::F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

// The last n < 8 weights of a row from k (the rest read as 0). Kept out of the main loop: its
// partial copy made the compiler spill the accumulators of the whole tile to the stack, which
// held the BF16 decode to ~9 GB/s.
template <DType WT>
inline __m256 load_weights_tail(const uint8_t* row, int64_t k, int64_t n) {
  constexpr int64_t kElem = WT == DType::F32 ? 4 : 2;
  alignas(32) uint8_t tmp[32] = {};
  std::memcpy(tmp, row + kElem * k, static_cast<size_t>(n * kElem));
  return load_weights8<WT>(tmp, 0);
}

// NR weight rows x MR activation rows of F32, F16 or BF16 weights in tinyBLAS's order on AVX2
// (KN = 8): one 8-lane fma accumulator per output over k, then hsum. Activations are pre-rounded
// to the weight type (ActPlain) and zero-padded, so reading past K adds exact zeros.
template <DType WT, int MR>
void tile_plain(const uint8_t* const* rows, int64_t K, const ActPlain* act, float (*out)[MR]) {
  __m256 acc[kNR][MR];
  for (auto& a : acc)
    for (auto& v : a) v = _mm256_setzero_ps();
  const float* xs[MR];
  for (int m = 0; m < MR; ++m) xs[m] = static_cast<const float*>(act[m].x);
  // As in tile_k_quant: the next tile's rows, in address order, kNR × 8 elements per step.
  constexpr int64_t kElem = WT == DType::F32 ? 4 : 2;
  constexpr int64_t kStepBytes = kNR * 8 * kElem;
  const char* next = reinterpret_cast<const char*>(rows[kNR - 1] + K * kElem);
  const int64_t kfull = K & ~int64_t{7};
  for (int64_t k = 0; k < kfull; k += 8) {
    for (int64_t o = 0; o < kStepBytes; o += 64)
      _mm_prefetch(next + k * kNR * kElem + o, _MM_HINT_T0);
    __m256 w[kNR];
    for (int r = 0; r < kNR; ++r) w[r] = load_weights8<WT>(rows[r], k);
    for (int m = 0; m < MR; ++m) {
      const __m256 xv = _mm256_loadu_ps(xs[m] + k);
      for (int r = 0; r < kNR; ++r) acc[r][m] = _mm256_fmadd_ps(w[r], xv, acc[r][m]);
    }
  }
  if (kfull < K) {
    __m256 w[kNR];
    for (int r = 0; r < kNR; ++r) w[r] = load_weights_tail<WT>(rows[r], kfull, K - kfull);
    for (int m = 0; m < MR; ++m) {
      const __m256 xv = _mm256_loadu_ps(xs[m] + kfull);
      for (int r = 0; r < kNR; ++r) acc[r][m] = _mm256_fmadd_ps(w[r], xv, acc[r][m]);
    }
  }
  for (int r = 0; r < kNR; ++r)
    for (int m = 0; m < MR; ++m) out[r][m] = hsum_float_8(acc[r][m]);
}

// ggml's quantize_row_q8_K_ref rounding of one 256-block: nearest_int(iscale*x) rounds the product
// half to even, exactly what cvtps does; intrinsics so the product cannot be fused.
inline void round_q8_K(const float* x, float iscale, int8_t* qs) {
  const __m256 vs = _mm256_set1_ps(iscale);
  for (int j = 0; j < kQK_K; j += 8) {
    const __m256i v = _mm256_min_epi32(
        _mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j))), _mm256_set1_epi32(127));
    const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(qs + j), _mm_packs_epi16(w16, w16));
  }
}

}  // namespace rawflow::qtiles
