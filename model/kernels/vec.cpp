#include "model/kernels/vec.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "model/kernels/isa.h"

namespace rawflow::vec {

#if RAWFLOW_AVX512
namespace {
// The end of ggml_vec_dot_f32 on AVX-512: a pairwise tree of the four accumulators, one
// horizontal sum, then the scalar tail from np.
inline float dot_finish(__m512 acc[4], const float* a, const float* b, int64_t np, int64_t n) {
  acc[0] = _mm512_add_ps(acc[0], acc[2]);
  acc[1] = _mm512_add_ps(acc[1], acc[3]);
  acc[0] = _mm512_add_ps(acc[0], acc[1]);
  float s = _mm512_reduce_add_ps(acc[0]);
  for (int64_t i = np; i < n; ++i) s += a[i] * b[i];
  return s;
}

template <int G>
void dot_rows(const float* const* a, const float* b, int64_t n, float* out) {
  __m512 acc[G][4];
  for (auto& row : acc)
    for (auto& v : row) v = _mm512_setzero_ps();
  const int64_t np = n & ~int64_t{63};
  for (int64_t i = 0; i < np; i += 64)
    for (int j = 0; j < 4; ++j) {
      const __m512 bv = _mm512_loadu_ps(b + i + 16 * j);
      for (int g = 0; g < G; ++g)
        acc[g][j] = _mm512_fmadd_ps(_mm512_loadu_ps(a[g] + i + 16 * j), bv, acc[g][j]);
    }
  for (int g = 0; g < G; ++g) out[g] = dot_finish(acc[g], a[g], b, np, n);
}
}  // namespace

float dot(const float* a, const float* b, int64_t n) {
  // ggml_vec_dot_f32's order on AVX-512: four 16-lane accumulators over 64-element steps, a
  // pairwise tree of the four, one horizontal sum, then the scalar tail. Same order, same bits:
  // attention scores then match llama.cpp's exactly (see docs/model.md).
  float s;
  dot_rows<1>(&a, b, n, &s);
  return s;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  const __m512 va = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

double sum_squares(const float* x, int64_t n) {
  // Squares rounded to float, summed in double — ggml's rms_norm. The order of the double sum
  // does not matter at float resolution; the float rounding of each square does.
  __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __m512 sq = _mm512_mul_ps(v, v);
    acc0 = _mm512_add_pd(acc0, _mm512_cvtps_pd(_mm512_castps512_ps256(sq)));
    acc1 = _mm512_add_pd(
        acc1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(sq), 1))));
  }
  double s = _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
  for (; i < n; ++i) s += static_cast<double>(x[i] * x[i]);
  return s;
}
#else
namespace {
// The end of ggml_vec_dot_f32 on AVX2: a pairwise tree of the four accumulators,
// GGML_F32x8_REDUCE's horizontal adds, then the scalar tail from np.
inline float dot_finish(__m256 acc[4], const float* a, const float* b, int64_t np, int64_t n) {
  acc[0] = _mm256_add_ps(acc[0], acc[2]);
  acc[1] = _mm256_add_ps(acc[1], acc[3]);
  acc[0] = _mm256_add_ps(acc[0], acc[1]);
  const __m128 t0 = _mm_add_ps(_mm256_castps256_ps128(acc[0]), _mm256_extractf128_ps(acc[0], 1));
  const __m128 t1 = _mm_hadd_ps(t0, t0);
  float s = _mm_cvtss_f32(_mm_hadd_ps(t1, t1));
  for (int64_t i = np; i < n; ++i) s += a[i] * b[i];
  return s;
}

template <int G>
void dot_rows(const float* const* a, const float* b, int64_t n, float* out) {
  __m256 acc[G][4];
  for (auto& row : acc)
    for (auto& v : row) v = _mm256_setzero_ps();
  const int64_t np = n & ~int64_t{31};
  for (int64_t i = 0; i < np; i += 32)
    for (int j = 0; j < 4; ++j) {
      const __m256 bv = _mm256_loadu_ps(b + i + 8 * j);
      for (int g = 0; g < G; ++g)
        acc[g][j] = _mm256_fmadd_ps(_mm256_loadu_ps(a[g] + i + 8 * j), bv, acc[g][j]);
    }
  for (int g = 0; g < G; ++g) out[g] = dot_finish(acc[g], a[g], b, np, n);
}
}  // namespace

float dot(const float* a, const float* b, int64_t n) {
  // ggml_vec_dot_f32's order on AVX2: four 8-lane accumulators over 32-element steps, a pairwise
  // tree of the four, then GGML_F32x8_REDUCE's horizontal adds, then the scalar tail.
  float s;
  dot_rows<1>(&a, b, n, &s);
  return s;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

double sum_squares(const float* x, int64_t n) {
  // Squares rounded to float, summed in double — ggml's rms_norm (see the AVX-512 twin).
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 sq = _mm256_mul_ps(v, v);
    acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
    acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
  }
  alignas(32) double parts[4];
  _mm256_store_pd(parts, _mm256_add_pd(acc0, acc1));
  double s = (parts[0] + parts[1]) + (parts[2] + parts[3]);
  for (; i < n; ++i) s += static_cast<double>(x[i] * x[i]);
  return s;
}
#endif

void rms_norm(const float* x, const float* w, float eps, int64_t n, float* out) {
  // ggml_compute_forward_rms_norm_f32: mean and scale in float, x·scale, then ·w (a separate op).
  const float mean = static_cast<float>(sum_squares(x, n) / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  if (w) {
    for (int64_t i = 0; i < n; ++i) out[i] = (x[i] * scale) * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale;
  }
}

namespace {

float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535588f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + 0.044715f * x * x)));
}

// GELU of every fp16 value, rounded to fp16 — the table llama.cpp's CPU backend evaluates GELU
// with. Using the same table removes the largest systematic difference between the two engines
// (see docs/model.md); its error (≤ 2⁻¹¹ relative) is far below the bf16 rounding of HF's
// reference.
const uint16_t* gelu_fp16_table() {
  static const std::vector<uint16_t> table = [] {
    std::vector<uint16_t> t(65536);
    for (uint32_t i = 0; i < 65536; ++i)
      t[i] = _cvtss_sh(gelu_tanh(_cvtsh_ss(static_cast<uint16_t>(i))), _MM_FROUND_TO_NEAREST_INT);
    return t;
  }();
  return table.data();
}

}  // namespace

void geglu_tanh(const float* gate, const float* up, float* out, int64_t n) {
  const uint16_t* table = gelu_fp16_table();
  for (int64_t i = 0; i < n; ++i) {
    const float x = gate[i];
    float g;
    if (x <= -10.0f)
      g = 0.0f;
    else if (x >= 10.0f)
      g = x;
    else
      g = _cvtsh_ss(table[_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT)]);
    out[i] = g * up[i];
  }
}

namespace {

// ggml's hsum of 8 lanes (hsum_float_8 / tinyBLAS hsum(__m256)):
// ((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7)).
inline float hsum8(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

#if RAWFLOW_AVX512
// ggml_v_expf (AVX-512): exp to ~1.5 ulp with a polynomial; used so attention weights are the
// bits llama.cpp computes.
inline __m512 expf_simd(__m512 x) {
  const __m512 r = _mm512_set1_ps(0x1.8p23f);
  const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
  const __m512 n = _mm512_sub_ps(z, r);
  const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f),
                                    _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
  const __mmask16 d = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192), _CMP_GT_OQ);
  const __m512 u = _mm512_mul_ps(b, b);
  const __m512 j = _mm512_fmadd_ps(
      _mm512_fmadd_ps(
          _mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
          _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
      u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
  const __m512 res = _mm512_scalef_ps(j, n);
  if (_mm512_kortestz(d, d)) return res;
  const __m512 alt = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_LE_OQ),
                                          _mm512_set1_ps(INFINITY), _mm512_setzero_ps());
  return _mm512_mask_blend_ps(d, res, alt);
}

// exp of 16 scores in place; returns their sum as ggml_vec_soft_max_f32 adds it.
inline float exp_chunk(float* x, float mx) {
  const __m512 v = expf_simd(_mm512_sub_ps(_mm512_loadu_ps(x), _mm512_set1_ps(mx)));
  _mm512_storeu_ps(x, v);
  return _mm512_reduce_add_ps(v);
}

inline float lanes_sum(const float* lanes, int64_t dim, int64_t d) {
  const __m512i stride =
      _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                         _mm512_set1_epi32(static_cast<int>(dim)));
  return _mm512_reduce_add_ps(_mm512_i32gather_ps(stride, lanes + d, 4));
}

inline void fma_row(float p, const float* row, float* acc, int64_t dim) {
  const __m512 pk = _mm512_set1_ps(p);
  int64_t d = 0;
  for (; d + 16 <= dim; d += 16)
    _mm512_storeu_ps(acc + d,
                     _mm512_fmadd_ps(pk, _mm512_loadu_ps(row + d), _mm512_loadu_ps(acc + d)));
  for (; d < dim; ++d) acc[d] = std::fma(p, row[d], acc[d]);
}
#else
// ggml_v_expf (AVX2 + FMA): the same polynomial as the AVX-512 version, but built without
// scalef, so its bits differ from that one's — and equal llama.cpp's AVX2 build.
inline __m256 expf_simd(__m256 x) {
  const __m256 r = _mm256_set1_ps(0x1.8p23f);
  const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
  const __m256 n = _mm256_sub_ps(z, r);
  const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                    _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
  const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
  const __m256 k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1))));
  const __m256i c = _mm256_castps_si256(
      _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.f), n), _mm256_set1_ps(126), _CMP_GT_OQ));
  const __m256 u = _mm256_mul_ps(b, b);
  const __m256 j = _mm256_fmadd_ps(
      _mm256_fmadd_ps(
          _mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
          _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
      u, _mm256_mul_ps(_mm256_set1_ps(0x1.ffffecp-1f), b));
  if (!_mm256_movemask_ps(_mm256_castsi256_ps(c))) return _mm256_fmadd_ps(j, k, k);
  const __m256i g =
      _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ)),
                       _mm256_set1_epi32(static_cast<int>(0x82000000u)));
  const __m256 s1 =
      _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(static_cast<int>(0x7f000000u))));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
  const __m256i d = _mm256_castps_si256(
      _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.f), n), _mm256_set1_ps(192), _CMP_GT_OQ));
  return _mm256_or_ps(
      _mm256_and_ps(_mm256_castsi256_ps(d), _mm256_mul_ps(s1, s1)),
      _mm256_andnot_ps(
          _mm256_castsi256_ps(d),
          _mm256_or_ps(
              _mm256_and_ps(_mm256_castsi256_ps(c), _mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1)),
              _mm256_andnot_ps(_mm256_castsi256_ps(c), _mm256_fmadd_ps(k, j, k)))));
}

inline float exp_chunk(float* x, float mx) {
  const __m256 v = expf_simd(_mm256_sub_ps(_mm256_loadu_ps(x), _mm256_set1_ps(mx)));
  _mm256_storeu_ps(x, v);
  return hsum8(v);
}

inline float lanes_sum(const float* lanes, int64_t dim, int64_t d) {
  const __m256i stride = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                            _mm256_set1_epi32(static_cast<int>(dim)));
  return hsum8(_mm256_i32gather_ps(lanes + d, stride, 4));
}

inline void fma_row(float p, const float* row, float* acc, int64_t dim) {
  const __m256 pk = _mm256_set1_ps(p);
  int64_t d = 0;
  for (; d + 8 <= dim; d += 8)
    _mm256_storeu_ps(acc + d,
                     _mm256_fmadd_ps(pk, _mm256_loadu_ps(row + d), _mm256_loadu_ps(acc + d)));
  for (; d < dim; ++d) acc[d] = std::fma(p, row[d], acc[d]);
}
#endif

}  // namespace

void weighted_sum_lanes(const float* p, const float* const* rows, int64_t n, int64_t dim,
                        float* lanes, float* out) {
  std::fill(lanes, lanes + kSimdFloats * dim, 0.0f);
  for (int64_t k = 0; k < n; ++k) {
    if (p[k] == 0.0f) continue;  // fma(0, v, acc) == acc: skipping is exact
    fma_row(p[k], rows[k], lanes + (k % kSimdFloats) * dim, dim);
  }
  for (int64_t d = 0; d < dim; ++d) out[d] = lanes_sum(lanes, dim, d);
}

void dot_multi(const float* const* a, int count, const float* b, int64_t n, float* out) {
  if (count == 2)
    dot_rows<2>(a, b, n, out);
  else
    for (int g = 0; g < count; ++g) dot_rows<1>(a + g, b, n, out + g);
}

namespace {

// Keys per lane taken together by lanes_add: each lane accumulator is loaded and
// stored once per kKeysPerLane keys instead of once per key.
constexpr int kKeysPerLane = 4;

// lanes[g][d] = fma(p[g][c], rows[c][d], lanes[g][d]) for c < C in order, every d < dim: the
// C keys of one lane, their weights broadcast once, each row chunk loaded once for all G heads.
template <int G, int C>
void lane_keys(const float (*p)[kKeysPerLane], const float* const* rows, int64_t dim,
               float* const* lanes) {
  __m256 pv[G][C];
  for (int g = 0; g < G; ++g)
    for (int c = 0; c < C; ++c) pv[g][c] = _mm256_set1_ps(p[g][c]);
  int64_t d = 0;
  for (; d + 8 <= dim; d += 8) {
    __m256 acc[G];
    for (int g = 0; g < G; ++g) acc[g] = _mm256_loadu_ps(lanes[g] + d);
    for (int c = 0; c < C; ++c) {
      const __m256 v = _mm256_loadu_ps(rows[c] + d);
      for (int g = 0; g < G; ++g) acc[g] = _mm256_fmadd_ps(pv[g][c], v, acc[g]);
    }
    for (int g = 0; g < G; ++g) _mm256_storeu_ps(lanes[g] + d, acc[g]);
  }
  for (; d < dim; ++d)
    for (int g = 0; g < G; ++g)
      for (int c = 0; c < C; ++c) lanes[g][d] = std::fma(p[g][c], rows[c][d], lanes[g][d]);
}

template <int G>
void lanes_accumulate(const float* const* p, const float* const* rows, int64_t k_begin,
                      int64_t k_end, int64_t dim, float* lanes) {
  constexpr int64_t kBlock = int64_t{kSimdFloats} * kKeysPerLane;
  for (int64_t k0 = k_begin / kBlock * kBlock; k0 < k_end; k0 += kBlock)
    for (int l = 0; l < kSimdFloats; ++l) {
      // Lane l's keys in this block, in order, skipping masked ones (no row).
      const float* vr[kKeysPerLane];
      float pw[G][kKeysPerLane];
      int c = 0;
      for (int64_t k = k0 + l; k < std::min(k_end, k0 + kBlock); k += kSimdFloats) {
        if (k < k_begin || !rows[k]) continue;
        vr[c] = rows[k];
        for (int g = 0; g < G; ++g) pw[g][c] = p[g][k];
        ++c;
      }
      float* acc[G];
      for (int g = 0; g < G; ++g) acc[g] = lanes + (g * kSimdFloats + l) * dim;
      switch (c) {
        case 1:
          lane_keys<G, 1>(pw, vr, dim, acc);
          break;
        case 2:
          lane_keys<G, 2>(pw, vr, dim, acc);
          break;
        case 3:
          lane_keys<G, 3>(pw, vr, dim, acc);
          break;
        case 4:
          lane_keys<G, 4>(pw, vr, dim, acc);
          break;
        default:
          break;
      }
    }
}

}  // namespace

void lanes_add(const float* const* p, int count, const float* const* rows, int64_t k_begin,
               int64_t k_end, int64_t dim, float* lanes) {
  // A key with weight 0 and a row adds fma(0, v, acc) = acc exactly (acc is never -0: it starts
  // at +0 and a sum rounding to zero is +0), so unlike weighted_sum_lanes only the rowless keys
  // need skipping for the same bits.
  for (int g0 = 0; g0 < count; g0 += 2) {
    float* lg = lanes + int64_t{g0} * kSimdFloats * dim;
    if (count - g0 >= 2)
      lanes_accumulate<2>(p + g0, rows, k_begin, k_end, dim, lg);
    else
      lanes_accumulate<1>(p + g0, rows, k_begin, k_end, dim, lg);
  }
}

void lanes_finish(const float* lanes, int count, int64_t dim, float* const* out) {
  for (int g = 0; g < count; ++g)
    for (int64_t d = 0; d < dim; ++d)
      out[g][d] = lanes_sum(lanes + int64_t{g} * kSimdFloats * dim, dim, d);
}

void softmax(float* x, int64_t n) {
  // ggml_vec_soft_max_f32: exp in SIMD-wide chunks from index 0, each chunk's sum added in double.
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  double sum = 0.0;
  int64_t i = 0;
  for (; i + kSimdFloats <= n; i += kSimdFloats) sum += static_cast<double>(exp_chunk(x + i, mx));
  for (; i < n; ++i) {
    const float e = std::exp(x[i] - mx);
    x[i] = e;
    sum += e;
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t k = 0; k < n; ++k) x[k] *= inv;
}

}  // namespace rawflow::vec
