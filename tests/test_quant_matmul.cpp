#define BOOST_TEST_MODULE test_quant_matmul
#include <dlfcn.h>
#include <omp.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "model/dtype.h"
#include "model/kernels/quant_matmul.h"
#include "model/quant.h"

using namespace rawflow;

namespace {

// llama.cpp's CPU backend as node-llama-cpp ships it (tests/npm): the zen4 build is the one it
// selects on this machine; its quantize_row_q8_0 and ggml_vec_dot_* are what llama.cpp runs.
void* ggml_lib(const char* file) {
  const char* env = std::getenv("RAWFLOW_SOURCE_DIR");
  const std::filesystem::path src =
      env ? std::filesystem::path(env)
          : std::filesystem::path(__FILE__).parent_path().parent_path();
  const auto path = src / "tests/npm/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64" / file;
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!h) BOOST_FAIL("cannot load llama.cpp's ggml (" << path << "): " << dlerror());
  return h;
}
void* ggml_cpu() {
  static void* h = [] {
    ggml_lib("libggml-base.so");
    void* cpu = ggml_lib("libggml-cpu-zen4.so");
    reinterpret_cast<void (*)()>(dlsym(cpu, "ggml_cpu_init"))();
    return cpu;
  }();
  return h;
}
template <typename Fn>
Fn ggml_fn(const char* name) {
  void* sym = dlsym(ggml_cpu(), name);
  if (!sym) sym = dlsym(RTLD_DEFAULT, name);
  if (!sym) BOOST_FAIL("ggml symbol missing: " << name);
  return reinterpret_cast<Fn>(sym);
}
using RowFn = void (*)(const float*, void*, int64_t);
using VecDotFn = void (*)(int, float*, size_t, const void*, size_t, const void*, size_t, int);

const DType kAllTypes[] = {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q5_K,
                           DType::Q6_K, DType::F16,  DType::BF16, DType::F32};

std::vector<float> gaussian(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

// Weights with some structure: per-row scale, a few outliers, one-signed stretches (K-quant mins).
std::vector<uint8_t> make_weights(DType t, int64_t N, int64_t K, uint32_t seed) {
  auto w = gaussian(static_cast<size_t>(N * K), seed, 0.05f);
  for (int64_t i = 0; i < N * K; ++i) {
    if (i % 97 == 0) w[i] *= 8.f;
    if ((i / 256) % 5 == 2) w[i] = std::fabs(w[i]) + 0.01f;
  }
  const size_t rb = dtype_row_bytes(t, K);
  std::vector<uint8_t> q(rb * N);
  for (int64_t n = 0; n < N; ++n) quantize_row(t, w.data() + n * K, q.data() + n * rb, K);
  return q;
}

// Sum_k |w_k * x_k| over the dequantized weights and raw activations: the scale of the result's
// rounding error.
double abs_dot(const float* w, const float* x, int64_t K) {
  double s = 0;
  for (int64_t k = 0; k < K; ++k) s += std::fabs(static_cast<double>(w[k]) * x[k]);
  return s;
}

}  // namespace

BOOST_AUTO_TEST_CASE(activation_quantizers_match_ggml) {
  const int64_t K = 4096;
  auto x = gaussian(K, 11);
  for (int64_t i = 0; i < 64; ++i) x[i] = 0.f;                           // all-zero block
  for (int64_t i = 64; i < 96; ++i) x[i] = (i % 2 ? 1.f : -1.f) * 0.5f;  // ties at +-127*0.5/0.5
  for (int64_t i = 256; i < 512; ++i) x[i] *= 1e-6f;
  // Q8_0: the x86 quantize_row_q8_0 llama.cpp runs (rounding half to even, id = 127/amax).
  {
    std::vector<uint8_t> ours(K / 32 * kQ8_0BlockBytes), theirs(ours.size());
    quantize_activations_q8_0(x.data(), ours.data(), K);
    ggml_fn<RowFn>("quantize_row_q8_0")(x.data(), theirs.data(), K);
    BOOST_CHECK(ours == theirs);
  }
  {
    std::vector<uint8_t> ours(K / 256 * kQ8_KBlockBytes), theirs(ours.size());
    quantize_activations_q8_K(x.data(), ours.data(), K);
    ggml_fn<RowFn>("quantize_row_q8_K")(x.data(), theirs.data(), K);
    BOOST_CHECK(ours == theirs);
  }
}

// Kernel vs the scalar reference. Integer partial sums are exact in both; the kernel's float
// steps are: per-block scale product (exact: fp16*fp16 fits 22 bits; for K-quants one rounding),
// one FMA rounding per accumulation step in each of 16 lanes (at most K/64 steps for Q4_0/Q8_0,
// K/256 for K-quants, K/16 for F32/F16/BF16), a 4-level lane reduction, and for K-quants the
// separately accumulated min term (2 roundings per super-block). The reference rounds each
// dequantized K-quant weight once. Each rounding is <= 2^-24 of a partial sum of |terms|, so
// |kernel - ref| <= (steps + 8) * 2^-24 * sum|w x| (K-quants: x ~3 since the min term and the
// scale term can each exceed |w x|). With K <= 4096 (quantized) and K <= 2048 (plain types) that
// is <= 140 * 6e-8 < 1e-5 of sum|w x|.
BOOST_AUTO_TEST_CASE(kernel_matches_reference) {
  struct Shape {
    int64_t M, N, K;
  };
  const Shape shapes[] = {{1, 37, 256},  {7, 64, 512}, {16, 13, 4096}, {3, 6, 1024},
                          {2, 129, 768}, {5, 3, 256},  {4, 4, 2048}};
  for (DType t : kAllTypes) {
    const bool plain = !dtype_is_quantized(t);
    std::vector<Shape> cases(std::begin(shapes), std::end(shapes));
    if (t == DType::Q4_0 || t == DType::Q8_0) cases.push_back({3, 5, 96});  // odd block count
    if (plain) cases.push_back({6, 9, 100});                                // K % 32 != 0
    for (const auto& s : cases) {
      if (plain && s.K > 2048) continue;
      BOOST_TEST_CONTEXT(dtype_name(t) << " M=" << s.M << " N=" << s.N << " K=" << s.K) {
        const auto W = make_weights(t, s.N, s.K, static_cast<uint32_t>(s.N * 31 + s.K));
        const int64_t ldx = s.K + 3, ldy = s.N + 2;
        const auto x = gaussian(static_cast<size_t>(s.M * ldx), static_cast<uint32_t>(s.M + s.K));
        std::vector<float> y(s.M * ldy, -777.f), yref(s.M * ldy, -777.f);
        quant_matmul(t, W.data(), s.N, s.K, x.data(), s.M, ldx, y.data(), ldy);
        quant_matmul_ref(t, W.data(), s.N, s.K, x.data(), s.M, ldx, yref.data(), ldy);
        std::vector<float> w(s.K);
        double worst = 0;
        for (int64_t n = 0; n < s.N; ++n) {
          dequantize_row(t, W.data() + n * dtype_row_bytes(t, s.K), w.data(), s.K);
          for (int64_t m = 0; m < s.M; ++m) {
            const double scale = abs_dot(w.data(), x.data() + m * ldx, s.K);
            const double err = std::fabs(static_cast<double>(y[m * ldy + n]) - yref[m * ldy + n]);
            worst = std::max(worst, err / scale);
            BOOST_REQUIRE_MESSAGE(err <= 1e-5 * scale, "n=" << n << " m=" << m << " kernel "
                                                            << y[m * ldy + n] << " ref "
                                                            << yref[m * ldy + n]);
          }
        }
        // Padding between rows of y is not written.
        for (int64_t m = 0; m < s.M; ++m) BOOST_REQUIRE_EQUAL(y[m * ldy + s.N], -777.f);
        BOOST_TEST_MESSAGE(dtype_name(t) << " M=" << s.M << " N=" << s.N << " K=" << s.K
                                         << " worst |kernel-ref|/sum|wx| = " << worst);
      }
    }
  }
}

// The kernel against llama.cpp's own dot products (ggml_vec_dot_*, activations converted by
// llama.cpp's own from_float): same bound as above, the two differ only in float summation order.
BOOST_AUTO_TEST_CASE(kernel_matches_llama_cpp_vec_dot) {
  struct Peer {
    DType t;
    const char* vec_dot;
    const char* from_float;
    size_t act_bytes_per_256;
  };
  const Peer peers[] = {
      {DType::Q4_0, "ggml_vec_dot_q4_0_q8_0", "quantize_row_q8_0", 8 * kQ8_0BlockBytes},
      {DType::Q8_0, "ggml_vec_dot_q8_0_q8_0", "quantize_row_q8_0", 8 * kQ8_0BlockBytes},
      {DType::Q4_K, "ggml_vec_dot_q4_K_q8_K", "quantize_row_q8_K", kQ8_KBlockBytes},
      {DType::Q5_K, "ggml_vec_dot_q5_K_q8_K", "quantize_row_q8_K", kQ8_KBlockBytes},
      {DType::Q6_K, "ggml_vec_dot_q6_K_q8_K", "quantize_row_q8_K", kQ8_KBlockBytes},
      {DType::F16, "ggml_vec_dot_f16", "ggml_cpu_fp32_to_fp16", 512},
      {DType::BF16, "ggml_vec_dot_bf16", "ggml_cpu_fp32_to_bf16", 512},
  };
  const int64_t M = 3, N = 24, K = 2048;
  for (const auto& p : peers) {
    BOOST_TEST_CONTEXT(dtype_name(p.t)) {
      const auto vec_dot = ggml_fn<VecDotFn>(p.vec_dot);
      const auto from_float = ggml_fn<RowFn>(p.from_float);
      const auto W = make_weights(p.t, N, K, 99);
      const auto x = gaussian(static_cast<size_t>(M * K), 5);
      std::vector<float> y(M * N);
      quant_matmul(p.t, W.data(), N, K, x.data(), M, K, y.data(), N);
      std::vector<uint8_t> act(K / 256 * p.act_bytes_per_256);
      std::vector<float> w(K);
      const size_t rb = dtype_row_bytes(p.t, K);
      for (int64_t m = 0; m < M; ++m) {
        from_float(x.data() + m * K, act.data(), K);
        for (int64_t n = 0; n < N; ++n) {
          float s = 0;
          vec_dot(static_cast<int>(K), &s, 0, W.data() + n * rb, 0, act.data(), 0, 1);
          dequantize_row(p.t, W.data() + n * rb, w.data(), K);
          const double scale = abs_dot(w.data(), x.data() + m * K, K);
          BOOST_REQUIRE_MESSAGE(
              std::fabs(y[m * N + n] - s) <= 1e-5 * scale,
              "n=" << n << " m=" << m << " ours " << y[m * N + n] << " llama.cpp " << s);
        }
      }
    }
  }
}

// The reference against the exact f32 product of the dequantized weights with the unrounded
// activations: the only difference is the activation rounding, bounded per element by
// Q8_0: d/2 + 127*e16 with d = amax_block/127 and e16 = max(d*2^-11, 2^-25) (d stored as fp16),
// Q8_K: d/2 with d = amax_block/127 (d kept in f32), F16: |x|*2^-11 (normal range), BF16: |x|*2^-8,
// F32: 0 -- each times 1.001 for the rounding of the scales themselves. So
// |ref - exact| <= sum_k |w_k| * bound_k, plus 1e-6 of sum|w x| for the double sums.
BOOST_AUTO_TEST_CASE(reference_error_vs_unquantized_activations) {
  const int64_t M = 4, N = 16, K = 1024;
  for (DType t : kAllTypes) {
    BOOST_TEST_CONTEXT(dtype_name(t)) {
      const auto W = make_weights(t, N, K, 3);
      auto x = gaussian(static_cast<size_t>(M * K), 8);
      for (int64_t i = 0; i < 256; ++i) x[i] *= 1e-3f;  // small blocks: fp16 d's relative error
      std::vector<float> yref(M * N);
      quant_matmul_ref(t, W.data(), N, K, x.data(), M, K, yref.data(), N);
      std::vector<float> w(K);
      double tightest = 1e30;
      for (int64_t n = 0; n < N; ++n) {
        dequantize_row(t, W.data() + n * dtype_row_bytes(t, K), w.data(), K);
        for (int64_t m = 0; m < M; ++m) {
          const float* xm = x.data() + m * K;
          double exact = 0, bound = 0;
          for (int64_t k = 0; k < K; ++k) {
            exact += static_cast<double>(w[k]) * xm[k];
            const int64_t blk = t == DType::Q4_0 || t == DType::Q8_0 ? 32 : 256;
            const int64_t b0 = k / blk * blk;
            double amax = 0;
            for (int64_t j = b0; j < b0 + blk; ++j) amax = std::max(amax, std::fabs(double(xm[j])));
            double e = 0;
            switch (t) {
              case DType::Q4_0:
              case DType::Q8_0: {
                const double d = amax / 127;
                e = d / 2 + 127 * std::max(d / 2048, std::ldexp(1.0, -25));
                break;
              }
              case DType::Q4_K:
              case DType::Q5_K:
              case DType::Q6_K:
                e = amax / 127 / 2;
                break;
              case DType::F16:
                e = std::fabs(xm[k]) / 2048;
                break;
              case DType::BF16:
                e = std::fabs(xm[k]) / 256;
                break;
              case DType::F32:
                e = 0;
                break;
            }
            bound += std::fabs(w[k]) * e * 1.001;
          }
          bound += 1e-6 * abs_dot(w.data(), xm, K);
          const double err = std::fabs(yref[m * N + n] - exact);
          tightest = std::min(tightest, bound / std::max(err, 1e-30));
          BOOST_REQUIRE_MESSAGE(err <= bound,
                                "n=" << n << " m=" << m << " err " << err << " bound " << bound);
        }
      }
      BOOST_TEST_MESSAGE(dtype_name(t) << ": smallest bound/error ratio " << tightest);
    }
  }
}

// Decode-shaped Q4_0 (3840 x 15360, the 12B's FFN down projection), M = 1 and 16: checks a
// sample of rows against the reference and reports the weight streaming rate next to a plain
// memory read rate measured the same way (the kernel should stay within ~1.3x of it).
BOOST_AUTO_TEST_CASE(decode_bandwidth_q4_0) {
  const int64_t N = 3840, K = 15360;
  const size_t rb = dtype_row_bytes(DType::Q4_0, K);
  std::vector<uint8_t> W(rb * N);
  {
    std::vector<float> row(K);
    std::mt19937 rng(1);
    std::normal_distribution<float> g(0.f, 0.05f);
    for (int64_t n = 0; n < N; ++n) {
      for (auto& v : row) v = g(rng);
      quantize_row(DType::Q4_0, row.data(), W.data() + n * rb, K);
    }
  }
  const auto x = gaussian(static_cast<size_t>(16 * K), 2);
  std::vector<float> y(16 * N);
  auto best_seconds = [](auto&& fn) {
    double best = 1e30;
    for (int rep = 0; rep < 7; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      fn();
      best = std::min(best,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  };
  // Reference streaming rate: sum all bytes of W with the same thread count.
  volatile uint64_t sink = 0;
  const double t_read = best_seconds([&] {
    const auto* p = reinterpret_cast<const uint64_t*>(W.data());
    const int64_t n64 = static_cast<int64_t>(W.size() / 8);
    uint64_t s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (int64_t i = 0; i < n64; ++i) s += p[i];
    sink = sink + s;
  });
  const double gb = static_cast<double>(W.size()) / 1e9;
  BOOST_TEST_MESSAGE("threads " << omp_get_max_threads() << ", W " << gb * 1e3 << " MB, plain read "
                                << gb / t_read << " GB/s");
  for (int64_t M : {1, 4, 16}) {
    const double t = best_seconds(
        [&] { quant_matmul(DType::Q4_0, W.data(), N, K, x.data(), M, K, y.data(), N); });
    BOOST_TEST_MESSAGE("Q4_0 3840x15360 M=" << M << ": " << t * 1e3 << " ms, " << gb / t
                                            << " GB/s, " << t / t_read << "x plain read time");
  }
  // Spot-check the big product against the reference.
  std::vector<float> yref(N);
  std::vector<int64_t> sample = {0, 1, 7, 8, 1000, 3839};
  quant_matmul(DType::Q4_0, W.data(), N, K, x.data(), 1, K, y.data(), N);
  std::vector<float> w(K);
  for (int64_t n : sample) {
    float r;
    quant_matmul_ref(DType::Q4_0, W.data() + n * rb, 1, K, x.data(), 1, K, &r, 1);
    dequantize_row(DType::Q4_0, W.data() + n * rb, w.data(), K);
    // K = 15360: (240 + 8) roundings of 2^-24 -> 1.5e-5 of sum|w x| (see kernel_matches_reference).
    BOOST_CHECK_SMALL(static_cast<double>(y[n] - r), 1.5e-5 * abs_dot(w.data(), x.data(), K));
  }
}
