// Linear (oneDNN and own kernels) against a plain double-precision product of the dequantized
// weights, for every weight type and both the small-batch and the tiled large-batch path.
#define BOOST_TEST_MODULE test_linear
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "model/formats/quant.h"
#include "model/kernels/linear.h"

using namespace rawflow;

namespace {

struct Case {
  DType type;
  // Bound on |y − y_ref| / Σ_k |w·x|, from the activation rounding each path applies: f32 exact
  // up to accumulation order; bf16 activations (8-bit mantissa) ≤ 2⁻⁸; Q8_0/Q8_K activation
  // quantization (7 bits) ≤ 1/127 per element; fp16 activations ≤ 2⁻¹¹.
  double rel;
};

void check(DType type, double rel, int64_t K, int64_t N, int64_t M, uint32_t seed,
           bool llama_order = false) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> wf(static_cast<size_t>(K * N)), x(static_cast<size_t>(M * K));
  for (auto& v : wf) v = d(g);
  for (auto& v : x) v = d(g);
  const size_t row = dtype_row_bytes(type, K);
  std::vector<uint8_t> wq(row * N);
  for (int64_t n = 0; n < N; ++n) quantize_row(type, wf.data() + n * K, wq.data() + n * row, K);
  std::vector<float> wd(wf.size());
  for (int64_t n = 0; n < N; ++n) dequantize_row(type, wq.data() + n * row, wd.data() + n * K, K);

  TensorRef t{"w", type, {K, N}, wq.data(), wq.size()};
  LinearOptions opt;
  opt.llama_order = llama_order;
  Linear lin(t, opt);
  std::vector<float> y(static_cast<size_t>(M * N));
  lin.forward(x.data(), M, y.data());
  double worst = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double ref = 0, mag = 0;
      for (int64_t k = 0; k < K; ++k) {
        ref += double(wd[n * K + k]) * x[m * K + k];
        mag += std::fabs(double(wd[n * K + k]) * x[m * K + k]);
      }
      worst = std::max(worst, std::fabs(y[m * N + n] - ref) / mag);
    }
  BOOST_TEST_MESSAGE(dtype_name(type)
                     << " K=" << K << " N=" << N << " M=" << M << " worst rel " << worst);
  BOOST_TEST(worst <= rel, dtype_name(type) << " M=" << M << ": " << worst << " > " << rel);
}

}  // namespace

BOOST_AUTO_TEST_CASE(all_types_small_and_large_batches) {
  const Case cases[] = {{DType::F32, 1e-5},  {DType::BF16, 8e-3}, {DType::F16, 8e-3},
                        {DType::Q8_0, 8e-3}, {DType::Q4_0, 8e-3}, {DType::Q4_K, 8e-3},
                        {DType::Q5_K, 8e-3}, {DType::Q6_K, 8e-3}};
  for (const auto& c : cases)
    // 40 rows take oneDNN's brgemm for BF16; 7 and 40 the quantized batch panels on AVX2 (4-row
    // steps, then a 3-row remainder for 7).
    for (int64_t M : {1, 3, 7, 40})
      check(c.type, c.rel, 512, 300, M, 11 + static_cast<uint32_t>(M));
}

BOOST_AUTO_TEST_CASE(bf16_batches_over_several_panels) {
  // 600 output rows span three f32 panels on AVX2 (256 + 256 + 88). The panel path multiplies
  // the stored bf16 weights exactly in f32, so only the summation order differs from the
  // reference (1e-5, as F32); oneDNN's bf16 brgemm rounds the activations to bf16 (8e-3).
  std::vector<uint16_t> dummy(512 * 600);
  TensorRef t{"w", DType::BF16, {512, 600}, dummy.data(), dummy.size() * 2};
  const std::string kernel = Linear(t).batch_kernel();
  BOOST_TEST_MESSAGE("BF16 batches run on " << kernel);
  const double rel = kernel == "onednn-f32-panels" ? 1e-5 : 8e-3;
  for (int64_t M : {32, 77}) check(DType::BF16, rel, 512, 600, M, 21 + static_cast<uint32_t>(M));
}

BOOST_AUTO_TEST_CASE(llama_order_paths) {
  // The llama.cpp-order kernels (BF16 on our kernel at every batch size, Q4_0 repacked order)
  // compute the same product within the same bounds.
  for (DType t : {DType::BF16, DType::Q4_0, DType::Q8_0})
    for (int64_t M : {1, 40}) check(t, 8e-3, 512, 64, M, 5 + static_cast<uint32_t>(M), true);
}
