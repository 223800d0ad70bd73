#include "model/gemma4/gemma4_vision.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "model/error.h"
#include "model/kernels/vec.h"

namespace rawflow {
namespace {

// Σ x[i] and Σ (x[i] − c)² in double, over 8 independent lanes so the additions pipeline (and
// vectorise) instead of waiting on one accumulator.
double lane_sum(const float* x, int64_t n) {
  double acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += x[i + l];
  for (; i < n; ++i) acc[0] += x[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}
double lane_centered_squares(const float* x, int64_t n, double c) {
  double acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) {
      const double d = x[i + l] - c;
      acc[l] += d * d;
    }
  for (; i < n; ++i) acc[0] += (x[i] - c) * (x[i] - c);
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

// PyTorch LayerNorm over one row: (x − μ)/sqrt(σ² + eps)·γ + β with the population variance;
// mean and variance in double (two passes). out may alias x.
void layer_norm(const float* x, int64_t n, const float* gamma, const float* beta, float eps,
                float* out) {
  const double mean = lane_sum(x, n) / static_cast<double>(n);
  const double var = lane_centered_squares(x, n, mean) / static_cast<double>(n);
  const float scale = static_cast<float>(1.0 / std::sqrt(var + eps));
  const float m = static_cast<float>(mean);
  for (int64_t i = 0; i < n; ++i) out[i] = (x[i] - m) * scale * gamma[i] + beta[i];
}

void layer_norm_rows(const float* x, int64_t rows, int64_t n, const std::vector<float>& gamma,
                     const std::vector<float>& beta, float* out) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    layer_norm(x + r * n, n, gamma.data(), beta.data(), Gemma4Mmproj::kLayerNormEps, out + r * n);
}

void check_positions(const int32_t* pos, int64_t n, int64_t limit, const char* axis) {
  for (int64_t t = 0; t < n; ++t)
    if (pos[t] < 0 || pos[t] >= limit)
      throw EngineError("vision embedder: tile " + std::to_string(t) + " has " + axis + " = " +
                        std::to_string(pos[t]) + ", outside the position table [0, " +
                        std::to_string(limit) + ")");
}

}  // namespace

Gemma4VisionEmbedder::Gemma4VisionEmbedder(const Gemma4Mmproj& mm)
    : w_(mm.vision()),
      order_(mm.patch_order()),
      dim_(mm.vision_dim()),
      ln1_w_(widen_to_f32(w_.patch_norm1_w)),
      ln1_b_(widen_to_f32(w_.patch_norm1_b)),
      ln2_w_(widen_to_f32(w_.patch_norm2_w)),
      ln2_b_(widen_to_f32(w_.patch_norm2_b)),
      ln3_w_(widen_to_f32(w_.patch_norm3_w)),
      ln3_b_(widen_to_f32(w_.patch_norm3_b)),
      dense_(w_.patch_embd_w, &w_.patch_embd_b),
      projection_(w_.input_projection) {}

void Gemma4VisionEmbedder::embed_patches(const float* values, const int32_t* pos_x,
                                         const int32_t* pos_y, int64_t n, float* out) const {
  if (n <= 0) return;
  check_positions(pos_x, n, w_.position_rows, "x");
  check_positions(pos_y, n, w_.position_rows, "y");
  std::vector<float> wide, narrow;
  for (int64_t t0 = 0; t0 < n; t0 += kChunkTiles) {
    const int64_t m = std::min(kChunkTiles, n - t0);
    embed_chunk(values + t0 * kPatchValues, pos_x + t0, pos_y + t0, m, out + t0 * out_dim(), wide,
                narrow);
  }
}

void Gemma4VisionEmbedder::embed_chunk(const float* values, const int32_t* pos_x,
                                       const int32_t* pos_y, int64_t n, float* out,
                                       std::vector<float>& wide, std::vector<float>& narrow) const {
  const int64_t d = dim_;
  wide.resize(static_cast<size_t>(n * kPatchValues));
  narrow.resize(static_cast<size_t>(n * d));
  float* h = narrow.data();

  layer_norm_rows(values, n, kPatchValues, ln1_w_, ln1_b_, wide.data());  // step 1
  dense_.forward(wide.data(), n, h);                                      // step 2 (+ bias)
  layer_norm_rows(h, n, d, ln2_w_, ln2_b_, h);                            // step 3

  // Step 4: the factorized position rows, widened from the file's dtype one row at a time.
  const size_t row_bytes = dtype_row_bytes(w_.position_embd.dtype, d);
  const auto* table = static_cast<const uint8_t*>(w_.position_embd.data);
#pragma omp parallel
  {
    std::vector<float> px(static_cast<size_t>(d)), py(static_cast<size_t>(d));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < n; ++t) {
      widen_to_f32(w_.position_embd.dtype, table + w_.position_row(0, pos_x[t]) * row_bytes, d,
                   px.data());
      widen_to_f32(w_.position_embd.dtype, table + w_.position_row(1, pos_y[t]) * row_bytes, d,
                   py.data());
      float* row = h + t * d;
      for (int64_t i = 0; i < d; ++i) row[i] = (row[i] + px[i]) + py[i];  // llama.cpp's order
    }
  }

  layer_norm_rows(h, n, d, ln3_w_, ln3_b_, h);  // step 5
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < n; ++t) vec::rms_norm(h + t * d, nullptr, w_.rms_eps, d, h + t * d);
  projection_.forward(h, n, out);  // step 7
}

}  // namespace rawflow
