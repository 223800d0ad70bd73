// Quantized matmul for decode and small batches. Block layouts and the integer formulation of
// the dot products follow ggml (ggml-org/llama.cpp, MIT licence: ggml-cpu/quants.c).
#include "model/kernels/quant_matmul.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "model/error.h"
#include "model/quant.h"

// GCC 12's AVX-512 headers build some results from _mm512_undefined_*(), which trips these
// warnings once inlined (a known false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace rawflow {
namespace {

// Weight rows per tile. Every W byte is read from memory once per tile and reused for all M
// activation rows while it sits in L1/L2.
constexpr int kNR = 4;
constexpr int64_t kQK8_0 = 32;
constexpr int64_t kQK_K = 256;

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Scratch for the quantized activations, reused across calls on the same thread.
std::vector<uint8_t>& scratch(size_t bytes) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < bytes) buf.resize(bytes);
  return buf;
}

// --- activations for Q4_0 / Q8_0 weights -------------------------------------------------------

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

// Kernel-side layout of one quantized activation row: qs contiguous so a 64-byte load covers a
// pair of blocks; nsum4[i] = -(sum of qs[4i..4i+3]) so the weights' level offset (8 for Q4_0,
// 128 for Q8_0 made unsigned) is folded into the int32 accumulator's start value; d as float.
// Padded with zero blocks to an even block count.
struct ActQ8_0 {
  const int8_t* qs;
  const int32_t* nsum4;
  const float* d;
};

struct ActQ8_0Buffers {
  int64_t kpad;
  std::vector<ActQ8_0> rows;
};

ActQ8_0Buffers quantize_acts_q8_0(const float* x, int64_t M, int64_t ldx, int64_t K) {
  ActQ8_0Buffers out;
  out.kpad = round_up(K, 2 * kQK8_0);
  const int64_t kpad = out.kpad;
  const size_t per_row = static_cast<size_t>(kpad + kpad + kpad / 8);
  auto& buf = scratch(per_row * static_cast<size_t>(M) + 64);
  uint8_t* base = buf.data();
  for (int64_t m = 0; m < M; ++m) {
    uint8_t* row = base + per_row * m;
    auto* qs = reinterpret_cast<int8_t*>(row);
    auto* nsum4 = reinterpret_cast<int32_t*>(row + kpad);
    auto* d = reinterpret_cast<float*>(row + 2 * kpad);
    const float* xm = x + m * ldx;
    for (int64_t b = 0; b < K / kQK8_0; ++b)
      d[b] = fp16_to_f32(quantize_block_q8_0(xm + b * kQK8_0, qs + b * kQK8_0));
    for (int64_t b = K / kQK8_0; b < kpad / kQK8_0; ++b) {
      d[b] = 0.f;
      std::memset(qs + b * kQK8_0, 0, kQK8_0);
    }
    for (int64_t i = 0; i < kpad / 4; ++i)
      nsum4[i] = -(qs[4 * i] + qs[4 * i + 1] + qs[4 * i + 2] + qs[4 * i + 3]);
    out.rows.push_back({qs, nsum4, d});
  }
  return out;
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

// --- llama.cpp's summation orders for Q8_0 / Q4_0 weights ---------------------------------------

// ggml's hsum_float_8 (arch/x86/quants.c; tinyBLAS's hsum(__m256) is the same tree).
inline float hsum_float_8(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
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

inline uint16_t block_scale_bits(const uint8_t* row, int64_t b, size_t block_bytes) {
  uint16_t h;
  std::memcpy(&h, row + b * block_bytes, 2);
  return h;
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

// --- F32 / F16 / BF16 weights ------------------------------------------------------------------

// Activations pre-rounded to the weight's dot type, zero-padded to a multiple of 32 elements:
// floats for F32/F16 (fp16-rounded for F16), bf16 bits for BF16.
struct ActPlain {
  const void* x;
};

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

std::vector<ActPlain> prepare_plain(DType wtype, const float* x, int64_t M, int64_t ldx,
                                    int64_t K) {
  const int64_t kpad = round_up(std::max<int64_t>(K, 1), 32);
  const size_t elem = wtype == DType::BF16 ? 2 : 4;
  auto& buf = scratch(static_cast<size_t>(kpad * M) * elem + 64);
  std::vector<ActPlain> acts;
  for (int64_t m = 0; m < M; ++m) {
    const float* xm = x + m * ldx;
    uint8_t* row = buf.data() + static_cast<size_t>(kpad * m) * elem;
    if (wtype == DType::BF16) {
      auto* h = reinterpret_cast<uint16_t*>(row);
      for (int64_t k = 0; k < kpad; ++k) h[k] = k < K ? f32_to_bf16(xm[k]) : 0;
    } else {
      auto* f = reinterpret_cast<float*>(row);
      for (int64_t k = 0; k < kpad; ++k)
        f[k] = k >= K ? 0.f : wtype == DType::F16 ? fp16_to_f32(f32_to_fp16(xm[k])) : xm[k];
    }
    acts.push_back({row});
  }
  return acts;
}

// --- driver ------------------------------------------------------------------------------------

// Runs tile(std::integral_constant<int, MR>{}, rows, act + m0, out) over all NR x MR tiles (MR 4,
// 2 or 1), parallel over weight-row tiles. Rows past N in the last tile repeat row N-1 (computed,
// not stored), so the tile stays fixed.
template <typename Act, typename TileFn>
void run_tiles(const void* W, int64_t N, size_t row_bytes, const std::vector<Act>& acts, float* y,
               int64_t ldy, TileFn tile) {
  const int64_t M = static_cast<int64_t>(acts.size());
  const int64_t ntiles = (N + kNR - 1) / kNR;
  const auto* wbase = static_cast<const uint8_t*>(W);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < ntiles; ++t) {
    const int64_t n0 = t * kNR;
    const int nr = static_cast<int>(std::min<int64_t>(kNR, N - n0));
    const uint8_t* rows[kNR];
    for (int r = 0; r < kNR; ++r) rows[r] = wbase + (n0 + std::min(r, nr - 1)) * row_bytes;
    for (int64_t m0 = 0; m0 < M;) {
      float out[kNR][4];
      int mr;
      if (M - m0 >= 4) {
        mr = 4;
        tile(std::integral_constant<int, 4>{}, rows, acts.data() + m0,
             reinterpret_cast<float(*)[4]>(out));
      } else if (M - m0 >= 2) {
        float o2[kNR][2];
        mr = 2;
        tile(std::integral_constant<int, 2>{}, rows, acts.data() + m0, o2);
        for (int r = 0; r < kNR; ++r) std::copy(o2[r], o2[r] + 2, out[r]);
      } else {
        float o1[kNR][1];
        mr = 1;
        tile(std::integral_constant<int, 1>{}, rows, acts.data() + m0, o1);
        for (int r = 0; r < kNR; ++r) out[r][0] = o1[r][0];
      }
      for (int m = 0; m < mr; ++m)
        for (int r = 0; r < nr; ++r) y[(m0 + m) * ldy + n0 + r] = out[r][m];
      m0 += mr;
    }
  }
}

void check_args(const char* what, DType wtype, int64_t N, int64_t K, int64_t M, int64_t ldx,
                int64_t ldy) {
  const int64_t be = dtype_traits(wtype).block_elems;
  if (N < 0 || M < 0 || K <= 0 || K % be != 0 || ldx < K || ldy < N)
    throw EngineError(std::string(what) + ": bad shape for " + std::string(dtype_name(wtype)) +
                      " weights: N=" + std::to_string(N) + " K=" + std::to_string(K) +
                      " M=" + std::to_string(M) + " ldx=" + std::to_string(ldx) +
                      " ldy=" + std::to_string(ldy) + " (K must be a multiple of " +
                      std::to_string(be) + ")");
}

std::vector<ActQ8_K> quantize_acts_q8_K(const float* x, int64_t M, int64_t ldx, int64_t K) {
  const size_t per_row = static_cast<size_t>(K / kQK_K) * kQ8_KBlockBytes;
  auto& buf = scratch(per_row * static_cast<size_t>(M) + 64);
  std::vector<ActQ8_K> acts;
  for (int64_t m = 0; m < M; ++m) {
    quantize_activations_q8_K(x + m * ldx, buf.data() + per_row * m, K);
    acts.push_back({buf.data() + per_row * m});
  }
  return acts;
}

template <DType WT>
void run_k_quant(const void* W, int64_t N, int64_t K, const float* x, int64_t M, int64_t ldx,
                 float* y, int64_t ldy) {
  const auto acts = quantize_acts_q8_K(x, M, ldx, K);
  const int64_t nsb = K / kQK_K;
  run_tiles(W, N, dtype_row_bytes(WT, K), acts, y, ldy,
            [nsb](auto mr, const uint8_t* const* rows, const ActQ8_K* a, auto o) {
              tile_k_quant<WT, decltype(mr)::value>(rows, nsb, a, o);
            });
}

template <bool kIsQ8>
void run_q8_0_family(const void* W, int64_t N, int64_t K, const float* x, int64_t M, int64_t ldx,
                     float* y, int64_t ldy) {
  const auto acts = quantize_acts_q8_0(x, M, ldx, K);
  const int64_t nb = K / kQK8_0;
  run_tiles(W, N, dtype_row_bytes(kIsQ8 ? DType::Q8_0 : DType::Q4_0, K), acts.rows, y, ldy,
            [nb](auto mr, const uint8_t* const* rows, const ActQ8_0* a, auto o) {
              tile_q8_0_family<kIsQ8, decltype(mr)::value>(rows, nb, a, o);
            });
}

template <bool kIsQ8>
void run_lane8(const void* W, int64_t N, int64_t K, const float* x, int64_t M, int64_t ldx,
               float* y, int64_t ldy) {
  const auto acts = quantize_acts_q8_0(x, M, ldx, K);
  const int64_t nb = K / kQK8_0;
  run_tiles(W, N, dtype_row_bytes(kIsQ8 ? DType::Q8_0 : DType::Q4_0, K), acts.rows, y, ldy,
            [nb](auto mr, const uint8_t* const* rows, const ActQ8_0* a, auto o) {
              tile_lane8<kIsQ8, decltype(mr)::value>(rows, nb, a, o);
            });
}

// Q4_0 in the repacked order: 16-row weight tiles (rows past N repeat row N-1, computed but not
// stored), activation rows 4, 2 or 1 at a time.
void run_chain_q4_0(const void* W, int64_t N, int64_t K, const float* x, int64_t M, int64_t ldx,
                    float* y, int64_t ldy) {
  const auto acts = quantize_acts_q8_0(x, M, ldx, K);
  const int64_t nb = K / kQK8_0;
  const size_t row_bytes = dtype_row_bytes(DType::Q4_0, K);
  const auto* wbase = static_cast<const uint8_t*>(W);
  constexpr int kRows = 16;
  const int64_t ntiles = (N + kRows - 1) / kRows;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < ntiles; ++t) {
    const int64_t n0 = t * kRows;
    const int nr = static_cast<int>(std::min<int64_t>(kRows, N - n0));
    const uint8_t* rows[kRows];
    for (int r = 0; r < kRows; ++r) rows[r] = wbase + (n0 + std::min(r, nr - 1)) * row_bytes;
    alignas(64) float out[16];
    for (int64_t m0 = 0; m0 < M;) {
      const ActQ8_0* a = acts.rows.data() + m0;
      const int mr = M - m0 >= 4 ? 4 : M - m0 >= 2 ? 2 : 1;
      const int rows_per_call = 16 / mr;
      for (int r0 = 0; r0 < nr; r0 += rows_per_call) {
        if (mr == 4)
          tile_chain_q4_0<4, 4>(rows + r0, nb, a, out);
        else if (mr == 2)
          tile_chain_q4_0<8, 2>(rows + r0, nb, a, out);
        else
          tile_chain_q4_0<16, 1>(rows + r0, nb, a, out);
        for (int r = 0; r < rows_per_call && r0 + r < nr; ++r)
          for (int m = 0; m < mr; ++m) y[(m0 + m) * ldy + n0 + r0 + r] = out[r * mr + m];
      }
      m0 += mr;
    }
  }
}

template <DType WT>
void run_plain(const void* W, int64_t N, int64_t K, const float* x, int64_t M, int64_t ldx,
               float* y, int64_t ldy) {
  const auto acts = prepare_plain(WT, x, M, ldx, K);
  run_tiles(W, N, dtype_row_bytes(WT, K), acts, y, ldy,
            [K](auto mr, const uint8_t* const* rows, const ActPlain* a, auto o) {
              tile_plain<WT, decltype(mr)::value>(rows, K, a, o);
            });
}

}  // namespace

void quantize_activations_q8_0(const float* x, void* blocks, int64_t k) {
  auto* out = static_cast<uint8_t*>(blocks);
  for (int64_t b = 0; b < k / kQK8_0; ++b) {
    int8_t q[32];
    const uint16_t d = quantize_block_q8_0(x + b * kQK8_0, q);
    std::memcpy(out + b * kQ8_0BlockBytes, &d, 2);
    std::memcpy(out + b * kQ8_0BlockBytes + 2, q, 32);
  }
}

void quantize_activations_q8_K(const float* x, void* blocks, int64_t k) {
  auto* out = static_cast<uint8_t*>(blocks);
  for (int64_t i = 0; i < k / kQK_K; ++i, x += kQK_K) {
    uint8_t* blk = out + i * kQ8_KBlockBytes;
    float max = 0;
    float amax = 0;
    for (int j = 0; j < kQK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    int8_t qs[kQK_K];
    int16_t bsums[kQK_K / 16];
    float d = 0;
    if (!amax) {
      std::memset(qs, 0, sizeof(qs));
    } else {
      const float iscale = -127.f / max;
      // ggml's nearest_int(iscale*x) rounds the product half to even, exactly what cvtps does;
      // written with intrinsics so the product cannot be fused into the rounding add.
      const __m512 vs = _mm512_set1_ps(iscale);
      for (int j = 0; j < kQK_K; j += 16) {
        const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(vs, _mm512_loadu_ps(x + j)));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + j),
                         _mm512_cvtepi32_epi8(_mm512_min_epi32(v, _mm512_set1_epi32(127))));
      }
      d = 1 / iscale;
    }
    for (int j = 0; j < kQK_K / 16; ++j) {
      int sum = 0;
      for (int ii = 0; ii < 16; ++ii) sum += qs[j * 16 + ii];
      bsums[j] = static_cast<int16_t>(sum);
    }
    std::memcpy(blk, &d, 4);
    std::memcpy(blk + kQ8KQsOffset, qs, kQK_K);
    std::memcpy(blk + kQ8KBsumsOffset, bsums, sizeof(bsums));
  }
}

void quant_matmul(DType wtype, const void* W, int64_t N, int64_t K, const float* x, int64_t M,
                  int64_t ldx, float* y, int64_t ldy) {
  check_args("quant_matmul", wtype, N, K, M, ldx, ldy);
  if (N == 0 || M == 0) return;
  switch (wtype) {
    case DType::Q4_0:
      return run_q8_0_family<false>(W, N, K, x, M, ldx, y, ldy);
    case DType::Q8_0:
      return run_q8_0_family<true>(W, N, K, x, M, ldx, y, ldy);
    case DType::Q4_K:
      return run_k_quant<DType::Q4_K>(W, N, K, x, M, ldx, y, ldy);
    case DType::Q5_K:
      return run_k_quant<DType::Q5_K>(W, N, K, x, M, ldx, y, ldy);
    case DType::Q6_K:
      return run_k_quant<DType::Q6_K>(W, N, K, x, M, ldx, y, ldy);
    case DType::F16:
      return run_plain<DType::F16>(W, N, K, x, M, ldx, y, ldy);
    case DType::BF16:
      return run_plain<DType::BF16>(W, N, K, x, M, ldx, y, ldy);
    case DType::F32:
      return run_plain<DType::F32>(W, N, K, x, M, ldx, y, ldy);
  }
  throw EngineError("quant_matmul: unsupported weight type " +
                    std::to_string(static_cast<uint32_t>(wtype)));
}

void quant_matmul_llama_order(DType wtype, const void* W, int64_t N, int64_t K, const float* x,
                              int64_t M, int64_t ldx, float* y, int64_t ldy) {
  check_args("quant_matmul_llama_order", wtype, N, K, M, ldx, ldy);
  if (N == 0 || M == 0) return;
  switch (wtype) {
    case DType::Q8_0:
      return run_lane8<true>(W, N, K, x, M, ldx, y, ldy);
    case DType::Q4_0:
      // llama.cpp repacks Q4_0 weights to q4_0x8 only when the row count allows it
      // (ggml_repack_get_optimal_repack_type: ne[1] % 8 == 0 on AVX2 CPUs).
      if (N % 8 == 0) return run_chain_q4_0(W, N, K, x, M, ldx, y, ldy);
      return run_lane8<false>(W, N, K, x, M, ldx, y, ldy);
    default:
      return quant_matmul(wtype, W, N, K, x, M, ldx, y, ldy);
  }
}

void quant_matmul_ref(DType wtype, const void* W, int64_t N, int64_t K, const float* x, int64_t M,
                      int64_t ldx, float* y, int64_t ldy) {
  check_args("quant_matmul_ref", wtype, N, K, M, ldx, ldy);
  // The activations exactly as the kernel sees them; double holds every q*d product exactly.
  std::vector<double> xa(static_cast<size_t>(M * K));
  for (int64_t m = 0; m < M; ++m) {
    const float* xm = x + m * ldx;
    double* out = xa.data() + m * K;
    switch (wtype) {
      case DType::Q4_0:
      case DType::Q8_0: {
        std::vector<uint8_t> blocks(static_cast<size_t>(K / kQK8_0) * kQ8_0BlockBytes);
        quantize_activations_q8_0(xm, blocks.data(), K);
        for (int64_t b = 0; b < K / kQK8_0; ++b) {
          uint16_t h;
          std::memcpy(&h, &blocks[b * kQ8_0BlockBytes], 2);
          for (int j = 0; j < kQK8_0; ++j)
            out[b * kQK8_0 + j] = static_cast<double>(fp16_to_f32(h)) *
                                  static_cast<int8_t>(blocks[b * kQ8_0BlockBytes + 2 + j]);
        }
        break;
      }
      case DType::Q4_K:
      case DType::Q5_K:
      case DType::Q6_K: {
        std::vector<uint8_t> blocks(static_cast<size_t>(K / kQK_K) * kQ8_KBlockBytes);
        quantize_activations_q8_K(xm, blocks.data(), K);
        for (int64_t b = 0; b < K / kQK_K; ++b) {
          float d;
          std::memcpy(&d, &blocks[b * kQ8_KBlockBytes], 4);
          for (int j = 0; j < kQK_K; ++j)
            out[b * kQK_K + j] =
                static_cast<double>(d) * static_cast<int8_t>(blocks[b * kQ8_KBlockBytes + 4 + j]);
        }
        break;
      }
      case DType::F16:
        for (int64_t k = 0; k < K; ++k) out[k] = fp16_to_f32(f32_to_fp16(xm[k]));
        break;
      case DType::BF16:
        for (int64_t k = 0; k < K; ++k) out[k] = bf16_to_f32(f32_to_bf16(xm[k]));
        break;
      case DType::F32:
        for (int64_t k = 0; k < K; ++k) out[k] = xm[k];
        break;
    }
  }
  const size_t row_bytes = dtype_row_bytes(wtype, K);
  std::vector<float> w(static_cast<size_t>(K));
  for (int64_t n = 0; n < N; ++n) {
    dequantize_row(wtype, static_cast<const uint8_t*>(W) + n * row_bytes, w.data(), K);
    for (int64_t m = 0; m < M; ++m) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += static_cast<double>(w[k]) * xa[m * K + k];
      y[m * ldy + n] = static_cast<float>(s);
    }
  }
}

}  // namespace rawflow
