// Quantized matmul for decode and small batches: the drivers (activation preparation, tiling,
// threads) over the per-ISA tiles of quant_tiles_avx512.h / quant_tiles_avx2.h.
#include "model/kernels/quant_matmul.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "model/error.h"
#include "model/formats/quant.h"
#include "model/kernels/isa.h"
#if RAWFLOW_AVX512
#include "model/kernels/quant_tiles_avx512.h"
#else
#include "model/kernels/quant_tiles_avx2.h"
#endif

namespace rawflow {
namespace {

using namespace qtiles;

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Scratch for the quantized activations, reused across calls on the same thread.
std::vector<uint8_t>& scratch(size_t bytes) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < bytes) buf.resize(bytes);
  return buf;
}

// --- activations for Q4_0 / Q8_0 weights -------------------------------------------------------

struct ActQ8_0Buffers {
  int64_t kpad;
  std::vector<ActQ8_0> rows;
};

ActQ8_0Buffers quantize_acts_q8_0(const float* x, int64_t M, int64_t ldx, int64_t K) {
  ActQ8_0Buffers out;
  out.kpad = round_up(K, 2 * kQK8_0);
  const int64_t kpad = out.kpad, nbpad = kpad / kQK8_0;
  // qs, nsum4 (kpad / 4 int32), d and nsum32 (one float and one int32 per block).
  const size_t per_row = static_cast<size_t>(kpad + kpad + 8 * nbpad);
  auto& buf = scratch(per_row * static_cast<size_t>(M) + 64);
  uint8_t* base = buf.data();
  out.rows.resize(static_cast<size_t>(M));
  ActQ8_0* rows = out.rows.data();
  // Rows are independent; a 512-token prefill quantizes ~8 M activations per product.
#pragma omp parallel for schedule(static) if (M * K >= (int64_t{1} << 16))
  for (int64_t m = 0; m < M; ++m) {
    uint8_t* row = base + per_row * m;
    auto* qs = reinterpret_cast<int8_t*>(row);
    auto* nsum4 = reinterpret_cast<int32_t*>(row + kpad);
    auto* d = reinterpret_cast<float*>(row + 2 * kpad);
    auto* nsum32 = reinterpret_cast<int32_t*>(row + 2 * kpad + 4 * nbpad);
    const float* xm = x + m * ldx;
    for (int64_t b = 0; b < K / kQK8_0; ++b)
      d[b] = fp16_to_f32(quantize_block_q8_0(xm + b * kQK8_0, qs + b * kQK8_0));
    for (int64_t b = K / kQK8_0; b < nbpad; ++b) {
      d[b] = 0.f;
      std::memset(qs + b * kQK8_0, 0, kQK8_0);
    }
    for (int64_t i = 0; i < kpad / 4; ++i)
      nsum4[i] = -(qs[4 * i] + qs[4 * i + 1] + qs[4 * i + 2] + qs[4 * i + 3]);
    for (int64_t b = 0; b < nbpad; ++b) {
      int32_t s = 0;
      for (int i = 0; i < 8; ++i) s += nsum4[8 * b + i];
      nsum32[b] = s;
    }
    rows[m] = {qs, nsum4, d, nsum32};
  }
  return out;
}

std::vector<ActPlain> prepare_plain(DType wtype, const float* x, int64_t M, int64_t ldx,
                                    int64_t K) {
  const int64_t kpad = round_up(std::max<int64_t>(K, 1), 32);
  const bool bf16_bits = wtype == DType::BF16 && RAWFLOW_AVX512;
  const size_t elem = bf16_bits ? 2 : 4;
  auto& buf = scratch(static_cast<size_t>(kpad * M) * elem + 64);
  std::vector<ActPlain> acts;
  for (int64_t m = 0; m < M; ++m) {
    const float* xm = x + m * ldx;
    uint8_t* row = buf.data() + static_cast<size_t>(kpad * m) * elem;
    if (bf16_bits) {
      auto* h = reinterpret_cast<uint16_t*>(row);
      for (int64_t k = 0; k < kpad; ++k) h[k] = k < K ? f32_to_bf16(xm[k]) : 0;
    } else {
      auto* f = reinterpret_cast<float*>(row);
      for (int64_t k = 0; k < kpad; ++k)
        f[k] = k >= K                 ? 0.f
               : wtype == DType::F16  ? fp16_to_f32(f32_to_fp16(xm[k]))
               : wtype == DType::BF16 ? bf16_to_f32(f32_to_bf16(xm[k]))
                                      : xm[k];
    }
    acts.push_back({row});
  }
  return acts;
}

// The kRows weight rows of the tile that starts at row n0 and holds nr real ones: rows past N
// repeat row N-1 (computed, not stored), so every tile keeps its fixed shape.
template <int kRows>
void tile_rows(const uint8_t* wbase, size_t row_bytes, int64_t n0, int nr,
               const uint8_t* (&rows)[kRows]) {
  for (int r = 0; r < kRows; ++r) rows[r] = wbase + (n0 + std::min(r, nr - 1)) * row_bytes;
}

// --- driver ------------------------------------------------------------------------------------

// Runs tile(std::integral_constant<int, MR>{}, rows, act + m0, out) over all NR x MR tiles (MR up
// to the ISA's kMaxMR: 4, 2 or 1), parallel over weight-row tiles. Rows past N in the last tile
// repeat row N-1 (computed, not stored), so the tile stays fixed.
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
    tile_rows(wbase, row_bytes, n0, nr, rows);
    for (int64_t m0 = 0; m0 < M;) {
      float out[kNR][kMaxMR];
      int mr;
      if (kMaxMR >= 4 && M - m0 >= 4) {
        mr = 4;
        float o4[kNR][4];
        tile(std::integral_constant<int, 4>{}, rows, acts.data() + m0, o4);
        for (int r = 0; r < kNR; ++r) std::copy(o4[r], o4[r] + 4, out[r]);
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

// Scratch for one panel of unpacked weight rows, one per OpenMP thread, 64-byte aligned.
uint8_t* panel_scratch(size_t bytes) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < bytes + 64) buf.resize(bytes + 64);
  const auto p = reinterpret_cast<uintptr_t>(buf.data());
  return buf.data() + ((64 - p % 64) % 64);
}

#if RAWFLOW_AVX512
using Panel16Tile = void (*)(const uint8_t*, const float*, int64_t, const ActQ8_0*,
                             float (*)[kPanel16Rows]);
// [mr - 1]: mr activation rows at a time.
constexpr Panel16Tile kPanel16Tiles[kPanel16MaxMR] = {
    tile_panel16_q4_0<1>, tile_panel16_q4_0<2>, tile_panel16_q4_0<3>, tile_panel16_q4_0<4>,
    tile_panel16_q4_0<5>, tile_panel16_q4_0<6>, tile_panel16_q4_0<7>, tile_panel16_q4_0<8>};

// AVX-512 batches of Q4_0 (tile_panel16_q4_0): each thread unpacks 16 weight rows at a time into
// its panel (rows past N repeat row N-1, computed but not stored) and runs every activation row
// against it, 8 at a time. Sums in the repacked (chain) order.
void run_panel16_q4_0(const void* W, int64_t N, int64_t K, const float* x, int64_t M, int64_t ldx,
                      float* y, int64_t ldy) {
  const auto acts = quantize_acts_q8_0(x, M, ldx, K);
  const int64_t nb = K / kQK8_0;
  const size_t row_bytes = dtype_row_bytes(DType::Q4_0, K);
  const auto* wbase = static_cast<const uint8_t*>(W);
  const int64_t ngroups = (N + kPanel16Rows - 1) / kPanel16Rows;
  const size_t levels_bytes = static_cast<size_t>(nb) * kPanel16BlockBytes;
  const size_t panel_bytes = levels_bytes + static_cast<size_t>(nb) * kPanel16Rows * sizeof(float);
#pragma omp parallel
  {
    uint8_t* qs = panel_scratch(panel_bytes);
    auto* d = reinterpret_cast<float*>(qs + levels_bytes);
#pragma omp for schedule(static)
    for (int64_t g = 0; g < ngroups; ++g) {
      const int64_t n0 = g * kPanel16Rows;
      const int nr = static_cast<int>(std::min<int64_t>(kPanel16Rows, N - n0));
      const uint8_t* rows[kPanel16Rows];
      tile_rows(wbase, row_bytes, n0, nr, rows);
      pack_panel16_q4_0(rows, nb, qs, d);
      for (int64_t m0 = 0; m0 < M;) {
        const ActQ8_0* a = acts.rows.data() + m0;
        float o[kPanel16MaxMR][kPanel16Rows];
        const int mr = static_cast<int>(std::min<int64_t>(kPanel16MaxMR, M - m0));
        kPanel16Tiles[mr - 1](qs, d, nb, a, o);
        for (int m = 0; m < mr; ++m) std::copy(o[m], o[m] + nr, y + (m0 + m) * ldy + n0);
        m0 += mr;
      }
    }
  }
}

// From 3 activation rows on the panels are faster (tests/test_quant_matmul q4_0_batch_speed at
// 3840x3840, alternating builds: M = 3 and 4 0.25-0.33 ms against 0.31-0.60 ms on the older tile);
// at M = 2 neither wins.
constexpr int64_t kPanel16MinRows = 3;
#else

// AVX2 batches of Q8_0 and Q4_0 in llama.cpp's orders (tile_panel8_q8_0 / tile_panel8_q4_0): each
// thread unpacks eight weight rows at a time into its panel (rows past N repeat row N-1, computed
// but not stored) and runs every activation row against it (Q4_0 four at a time).
template <bool kIsQ8>
void run_panel8(const void* W, int64_t N, int64_t K, const float* x, int64_t M, int64_t ldx,
                float* y, int64_t ldy) {
  const auto acts = quantize_acts_q8_0(x, M, ldx, K);
  const int64_t nb = K / kQK8_0;
  const size_t row_bytes = dtype_row_bytes(kIsQ8 ? DType::Q8_0 : DType::Q4_0, K);
  const auto* wbase = static_cast<const uint8_t*>(W);
  const int64_t ngroups = (N + kPanelRows - 1) / kPanelRows;
  const size_t panel_bytes =
      static_cast<size_t>(nb) * (kPanelBlockBytes<kIsQ8> + 8 * sizeof(float));
#pragma omp parallel
  {
    uint8_t* qs = panel_scratch(panel_bytes);
    auto* d = reinterpret_cast<float*>(qs + nb * kPanelBlockBytes<kIsQ8>);
#pragma omp for schedule(static)
    for (int64_t g = 0; g < ngroups; ++g) {
      const int64_t n0 = g * kPanelRows;
      const int nr = static_cast<int>(std::min<int64_t>(kPanelRows, N - n0));
      const uint8_t* rows[kPanelRows];
      tile_rows(wbase, row_bytes, n0, nr, rows);
      pack_panel8<kIsQ8>(rows, nb, qs, d);
      for (int64_t m0 = 0; m0 < M;) {
        const ActQ8_0* a = acts.rows.data() + m0;
        alignas(32) float o[4][kPanelRows];
        const int mr = kIsQ8 ? 1 : static_cast<int>(std::min<int64_t>(4, M - m0));
        if constexpr (kIsQ8)
          tile_panel8_q8_0(qs, d, nb, *a, o[0]);
        else if (mr == 4)
          tile_panel8_q4_0<4>(qs, d, nb, a, o);
        else if (mr == 3)
          tile_panel8_q4_0<3>(qs, d, nb, a, o);
        else if (mr == 2)
          tile_panel8_q4_0<2>(qs, d, nb, a, o);
        else
          tile_panel8_q4_0<1>(qs, d, nb, a, o);
        for (int m = 0; m < mr; ++m)
          for (int r = 0; r < nr; ++r) y[(m0 + m) * ldy + n0 + r] = o[m][r];
        m0 += mr;
      }
    }
  }
}

// Below this many activation rows, unpacking a panel costs more than it saves.
constexpr int64_t kPanelMinRows = 4;
#endif

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
    tile_rows(wbase, row_bytes, n0, nr, rows);
    alignas(64) float out[kChainOutputs];
    for (int64_t m0 = 0; m0 < M;) {
      const ActQ8_0* a = acts.rows.data() + m0;
      const int mr = M - m0 >= 4 ? 4 : M - m0 >= 2 ? 2 : 1;
      const int rows_per_call = kChainOutputs / mr;
      for (int r0 = 0; r0 < nr; r0 += rows_per_call) {
        if (mr == 4)
          tile_chain_q4_0<kChainOutputs / 4, 4>(rows + r0, nb, a, out);
        else if (mr == 2)
          tile_chain_q4_0<kChainOutputs / 2, 2>(rows + r0, nb, a, out);
        else
          tile_chain_q4_0<kChainOutputs, 1>(rows + r0, nb, a, out);
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
      qtiles::round_q8_K(x, iscale, qs);
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
#if RAWFLOW_AVX512
      if (M >= kPanel16MinRows) return run_panel16_q4_0(W, N, K, x, M, ldx, y, ldy);
#endif
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
#if !RAWFLOW_AVX512
      if (M >= kPanelMinRows) return run_panel8<true>(W, N, K, x, M, ldx, y, ldy);
#endif
      return run_lane8<true>(W, N, K, x, M, ldx, y, ldy);
    case DType::Q4_0:
      // llama.cpp repacks Q4_0 weights to q4_0x8 only when the row count allows it
      // (ggml_repack_get_optimal_repack_type: ne[1] % 8 == 0 on AVX2 CPUs).
#if RAWFLOW_AVX512
      if (N % 8 == 0 && M >= kPanel16MinRows) return run_panel16_q4_0(W, N, K, x, M, ldx, y, ldy);
#else
      if (N % 8 == 0 && M >= kPanelMinRows) return run_panel8<false>(W, N, K, x, M, ldx, y, ldy);
#endif
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
