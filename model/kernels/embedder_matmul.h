#pragma once
// y = x·Wᵀ (+ b) for the multimodal embedders' projections, on oneDNN's f32 matmul.
//
// Why not `Linear`: the embedders' weights come as F32 (the GGUF's patch_embd), F16 or BF16, and
// their inputs are normalised activations whose every bit counts against the reference
// (≤ 1e-4 relative). oneDNN 2.6 offers no f16 matmul on CPUs without AVX-512 FP16 and no bf16 one
// without AVX-512, and our own kernels round activations to the weight's 16-bit type (llama.cpp's
// numerics). So F32 weights are read in place from the file (format tag `ba` on the mapping),
// and 16-bit ones are widened once to an F32 copy at load (≤ 160 MB on the 12B). Measurements
// and the oneDNN implementations seen are in docs/mmproj.md.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/formats/tensor_ref.h"

namespace rawflow {

class EmbedderMatmul {
 public:
  // `w`: ne [in, out] (PyTorch [out, in]); `bias`: nullptr or ne [out]. Both must be F32, F16 or
  // BF16 (EngineError otherwise) and outlive this object when F32 (read in place).
  explicit EmbedderMatmul(const TensorRef& w, const TensorRef* bias = nullptr);
  EmbedderMatmul(EmbedderMatmul&&) noexcept;
  EmbedderMatmul& operator=(EmbedderMatmul&&) noexcept;
  ~EmbedderMatmul();

  int64_t in() const { return in_; }
  int64_t out() const { return out_; }
  // True when the weights are read from the file without a copy.
  bool in_place() const { return widened_.empty(); }

  // y[m·out + n] = Σ_k W[n][k]·x[m·in + k] (+ b[n]) for m < rows. One primitive serves every
  // row count (runtime M); oneDNN parallelises over its OpenMP threads.
  void forward(const float* x, int64_t rows, float* y) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int64_t in_ = 0, out_ = 0;
  std::vector<float> widened_;  // F32 copy of 16-bit weights
  std::vector<float> bias_;
};

// The n elements of a 1-D F32/F16/BF16 tensor (or a row of one) as floats; `src` may be unaligned.
void widen_to_f32(DType t, const void* src, int64_t n, float* dst);
std::vector<float> widen_to_f32(const TensorRef& t);

}  // namespace rawflow
