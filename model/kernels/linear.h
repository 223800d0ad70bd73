#pragma once
// y = W x for every weight format, on the kernel that fits it best:
//  - BF16: oneDNN bf16 brgemm for batches (prefill), our streaming kernel for decode; both read
//    the file's bytes in place, so resident memory stays at one copy of the weights. Where
//    oneDNN has no bf16 matmul (AVX2 CPUs), batches run its f32 GEMM on transient f32 panels;
//  - F32, F16 and block-quantized: our AVX-512 or AVX2 kernels (model/kernels/quant_matmul.h),
//    which read the file's blocks in place (no dequantized copy) and sum in llama.cpp's order.
// With `llama_order`, BF16 also runs on our kernel and Q4_0 in llama.cpp's repacked order: slower,
// but every product sums as llama.cpp's does, for parity checks (docs/model.md).
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "model/formats/tensor_ref.h"

namespace rawflow {

class DnnlContext {
 public:
  static DnnlContext& get();
  dnnl::engine& engine() { return engine_; }
  dnnl::stream& stream() { return stream_; }

 private:
  DnnlContext();
  dnnl::engine engine_;
  dnnl::stream stream_;
};

struct LinearOptions {
  // Every product in llama.cpp's summation order: BF16 on our kernel instead of oneDNN brgemm,
  // Q4_0 in the order of llama.cpp's repacked 8×8 kernels.
  bool llama_order = false;
};

class Linear {
 public:
  Linear();
  Linear(const TensorRef& w, const LinearOptions& opt = {});
  Linear(Linear&&) noexcept;
  Linear& operator=(Linear&&) noexcept;
  ~Linear();

  int64_t in() const { return in_; }
  int64_t out() const { return out_; }
  DType dtype() const { return dtype_; }
  const std::string& name() const { return name_; }

  // What runs batches of 32 rows or more: "onednn-bf16", "onednn-f32-panels" or
  // "rawflow" (our kernels), for benchmarks and tests to report.
  const char* batch_kernel() const;

  // y[m * out + n] = sum_k W[n][k] x[m * in + k], m < M. x and y must not alias.
  void forward(const float* x, int64_t M, float* y) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string name_;
  DType dtype_ = DType::F32;
  int64_t in_ = 0, out_ = 0;
};

// Converts n floats to bf16 (round to nearest even), vectorised.
void f32_to_bf16_row(const float* src, uint16_t* dst, int64_t n);
// Widens n bf16 values to floats (exact), vectorised.
void bf16_to_f32_row(const uint16_t* src, float* dst, int64_t n);

}  // namespace rawflow
