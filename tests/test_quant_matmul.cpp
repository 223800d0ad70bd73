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

#include "model/formats/dtype.h"
#include "model/formats/quant.h"
#include "model/kernels/isa.h"
#include "model/kernels/quant_matmul.h"

using namespace rawflow;

namespace {

// llama.cpp's CPU backend as node-llama-cpp ships it (tests/npm), in the variant llama.cpp loads on
// a CPU like the one our kernels were compiled for: zen4 (AVX-512 VNNI + BF16) or haswell (AVX2 +
// FMA + F16C). Its quantize_row_q8_0 and ggml_vec_dot_* are what llama.cpp runs.
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
    void* cpu = ggml_lib(RAWFLOW_AVX512 ? "libggml-cpu-zen4.so" : "libggml-cpu-haswell.so");
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
// Best wall time of `reps` runs of fn: the least disturbed run on a shared machine.
template <typename Fn>
double best_of(int reps, Fn&& fn) {
  double best = 1e30;
  for (int rep = 0; rep < reps; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// Sums every byte of W with the engine's thread count: the reference streaming rate.
void read_all(const std::vector<uint8_t>& W) {
  static volatile uint64_t sink = 0;
  const auto* p = reinterpret_cast<const uint64_t*>(W.data());
  const int64_t n64 = static_cast<int64_t>(W.size() / 8);
  uint64_t s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
  for (int64_t i = 0; i < n64; ++i) s += p[i];
  sink = sink + s;
}

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
  const auto best_seconds = [](auto&& fn) { return best_of(7, fn); };
  // Reference streaming rate: sum all bytes of W with the same thread count.
  const double t_read = best_seconds([&] { read_all(W); });
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

// --- llama.cpp's exact summation order
// ------------------------------------------------------------

namespace {

// The slice of ggml's public C API (ggml.h, ggml-backend.h, ggml-cpu.h of the same llama.cpp
// release) needed to run one GGML_OP_MUL_MAT through llama.cpp's CPU backend dispatch.
struct GgmlInitParams {
  size_t mem_size;
  void* mem_buffer;
  bool no_alloc;
};
constexpr int kGgmlTypeF32 = 0, kGgmlTypeQ4_0 = 2, kGgmlTypeQ8_0 = 8;

struct Ggml {
  void* (*init)(GgmlInitParams);
  void (*free)(void*);
  void* (*new_tensor_2d)(void*, int, int64_t, int64_t);
  void* (*mul_mat)(void*, void*, void*);
  void* (*new_graph)(void*);
  void (*build_forward_expand)(void*, void*);
  int (*graph_compute_with_ctx)(void*, void*, int);
  void* (*get_data)(const void*);
  size_t (*nbytes)(const void*);
  size_t (*tensor_overhead)();
  void* (*alloc_ctx_tensors_from_buft)(void*, void*);
  void (*tensor_set)(void*, const void*, size_t, size_t);
  void (*buffer_free)(void*);
  void* (*repack_buffer_type)();

  static const Ggml& get() {
    static const Ggml g = [] {
      Ggml r{};
      r.init = ggml_fn<decltype(r.init)>("ggml_init");
      r.free = ggml_fn<decltype(r.free)>("ggml_free");
      r.new_tensor_2d = ggml_fn<decltype(r.new_tensor_2d)>("ggml_new_tensor_2d");
      r.mul_mat = ggml_fn<decltype(r.mul_mat)>("ggml_mul_mat");
      r.new_graph = ggml_fn<decltype(r.new_graph)>("ggml_new_graph");
      r.build_forward_expand =
          ggml_fn<decltype(r.build_forward_expand)>("ggml_build_forward_expand");
      r.graph_compute_with_ctx =
          ggml_fn<decltype(r.graph_compute_with_ctx)>("ggml_graph_compute_with_ctx");
      r.get_data = ggml_fn<decltype(r.get_data)>("ggml_get_data");
      r.nbytes = ggml_fn<decltype(r.nbytes)>("ggml_nbytes");
      r.tensor_overhead = ggml_fn<decltype(r.tensor_overhead)>("ggml_tensor_overhead");
      r.alloc_ctx_tensors_from_buft = ggml_fn<decltype(r.alloc_ctx_tensors_from_buft)>(
          "ggml_backend_alloc_ctx_tensors_from_buft");
      r.tensor_set = ggml_fn<decltype(r.tensor_set)>("ggml_backend_tensor_set");
      r.buffer_free = ggml_fn<decltype(r.buffer_free)>("ggml_backend_buffer_free");
      // C++ linkage in ggml-cpu's repack.h: the buffer type llama.cpp loads Q4_0 weights into.
      r.repack_buffer_type =
          ggml_fn<decltype(r.repack_buffer_type)>("_Z35ggml_backend_cpu_repack_buffer_typev");
      // ggml logs every repacked tensor at info level; keep the test output readable.
      using LogFn = void (*)(int, const char*, void*);
      ggml_fn<void (*)(LogFn, void*)>("ggml_log_set")([](int, const char*, void*) {}, nullptr);
      return r;
    }();
    return g;
  }
};

// y = W x computed by llama.cpp's CPU backend: ggml_mul_mat in a graph run by
// ggml_graph_compute_with_ctx, i.e. ggml_compute_forward_mul_mat's own dispatch (llamafile_sgemm
// for M >= 2, vec_dot for M = 1). With `repacked` the weights live in the CPU_REPACK buffer type,
// as llama.cpp loads them, so the op goes through the repack extra-buffer kernels.
std::vector<float> ggml_mul_mat_ref(DType t, const std::vector<uint8_t>& W, int64_t N, int64_t K,
                                    const std::vector<float>& x, int64_t M, bool repacked) {
  const Ggml& g = Ggml::get();
  const int type = t == DType::Q4_0 ? kGgmlTypeQ4_0 : kGgmlTypeQ8_0;
  void* wctx = nullptr;
  void* wbuf = nullptr;
  const size_t work = static_cast<size_t>(4 * (M * K + M * N)) + W.size() + (1 << 20);
  void* ctx = g.init({work, nullptr, false});
  BOOST_REQUIRE(ctx);
  void* w = nullptr;
  if (repacked) {
    wctx = g.init({g.tensor_overhead() * 2, nullptr, true});
    w = g.new_tensor_2d(wctx, type, K, N);
    wbuf = g.alloc_ctx_tensors_from_buft(wctx, g.repack_buffer_type());
    BOOST_REQUIRE(wbuf);
    g.tensor_set(w, W.data(), 0, W.size());  // repacks to q4_0x8
  } else {
    w = g.new_tensor_2d(ctx, type, K, N);
    BOOST_REQUIRE_EQUAL(g.nbytes(w), W.size());
    std::memcpy(g.get_data(w), W.data(), W.size());
  }
  void* xt = g.new_tensor_2d(ctx, kGgmlTypeF32, K, M);
  std::memcpy(g.get_data(xt), x.data(), x.size() * sizeof(float));
  void* yt = g.mul_mat(ctx, w, xt);
  void* graph = g.new_graph(ctx);
  g.build_forward_expand(graph, yt);
  BOOST_REQUIRE_EQUAL(g.graph_compute_with_ctx(ctx, graph, 2), 0);
  std::vector<float> y(static_cast<size_t>(M * N));
  std::memcpy(y.data(), g.get_data(yt), y.size() * sizeof(float));
  g.free(ctx);
  if (wbuf) g.buffer_free(wbuf);
  if (wctx) g.free(wctx);
  return y;
}

int64_t ulp_distance(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  const int64_t la = ia < 0 ? int64_t{INT32_MIN} - ia : ia;
  const int64_t lb = ib < 0 ? int64_t{INT32_MIN} - ib : ib;
  return std::abs(la - lb);
}

}  // namespace

// quant_matmul_llama_order against llama.cpp's own mul_mat, bit for bit: the integer block dots
// are exact on both sides, and the float steps (scale product, FMA chain, lane layout, horizontal
// sum tree) are the same operations in the same order, so there is no tolerance. Shapes cover
// llama.cpp's batch paths: M = 1 (vec_dot / repack gemv), M = 3 (tinyBLAS 3-row tiles / gemv
// only), M = 4 (gemm), M = 7 (gemm + 3 gemv rows), M = 200 (gemm with 16-row and 4-row groups);
// N = 40 and 72 leave partial 16-column groups; K = 96 has an odd block count. On AVX2, M >= 4
// runs our eight-row panels (Q8_0 N = 13 ends in a partial one; Q4_0 N = 36 / 13 are not
// repacked by llama.cpp and keep tinyBLAS's lanes).
BOOST_AUTO_TEST_CASE(llama_order_is_bit_identical_to_llama_cpp) {
  struct Case {
    DType t;
    int64_t N;
    bool repacked;  // how llama.cpp stores it: Q4_0 with N % 8 == 0 is repacked
  };
  const Case cases[] = {{DType::Q8_0, 64, false}, {DType::Q8_0, 40, false},
                        {DType::Q8_0, 13, false}, {DType::Q4_0, 64, true},
                        {DType::Q4_0, 72, true},  {DType::Q4_0, 36, false},
                        {DType::Q4_0, 13, false}};
  for (const auto& c : cases) {
    for (int64_t K : {256, 512, 96}) {
      const auto W = make_weights(c.t, c.N, K, static_cast<uint32_t>(c.N * 7 + K));
      for (int64_t M : {1, 3, 4, 7, 200}) {
        BOOST_TEST_CONTEXT(dtype_name(c.t) << " N=" << c.N << " K=" << K << " M=" << M
                                           << (c.repacked ? " repacked" : "")) {
          auto x = gaussian(static_cast<size_t>(M * K), static_cast<uint32_t>(M * 13 + K));
          for (int64_t i = 0; i < std::min<int64_t>(32, M * K); ++i) x[i] = 0.f;  // d = 0 block
          for (int64_t i = 0; i < M * K; i += 37) x[i] *= 40.f;                   // outliers
          const auto ref = ggml_mul_mat_ref(c.t, W, c.N, K, x, M, c.repacked);
          std::vector<float> y(static_cast<size_t>(M * c.N), -777.f);
          quant_matmul_llama_order(c.t, W.data(), c.N, K, x.data(), M, K, y.data(), c.N);
          int64_t mismatches = 0, worst_ulp = 0;
          for (size_t i = 0; i < y.size(); ++i) {
            if (std::memcmp(&y[i], &ref[i], 4) != 0) ++mismatches;
            worst_ulp = std::max(worst_ulp, ulp_distance(y[i], ref[i]));
          }
          BOOST_CHECK_MESSAGE(mismatches == 0, mismatches << " of " << y.size()
                                                          << " outputs differ, worst " << worst_ulp
                                                          << " ulp");
        }
      }
    }
  }
}

namespace {

// One float chain per output over exact int32 block dots, acc = fma(dot_b, d_w*d_x, acc) block
// after block, in scalar code: the order of llama.cpp's repacked Q4_0 kernels.
std::vector<float> chain_order_ref(const std::vector<uint8_t>& W, int64_t N, int64_t K,
                                   const std::vector<float>& x, int64_t M) {
  const int64_t nb = K / 32;
  const size_t rb = dtype_row_bytes(DType::Q4_0, K);
  std::vector<uint8_t> act(static_cast<size_t>(nb) * kQ8_0BlockBytes);
  std::vector<float> y(static_cast<size_t>(M * N));
  auto half = [](const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return fp16_to_f32(h);
  };
  for (int64_t m = 0; m < M; ++m) {
    quantize_activations_q8_0(x.data() + m * K, act.data(), K);
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0.f;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* wb = W.data() + n * rb + b * 18;
        const uint8_t* ab = act.data() + b * kQ8_0BlockBytes;
        int32_t dot = 0;
        for (int j = 0; j < 32; ++j) {
          const int32_t w = j < 16 ? (wb[2 + j] & 15) - 8 : (wb[2 + j - 16] >> 4) - 8;
          dot += w * static_cast<int8_t>(ab[2 + j]);
        }
        acc = std::fma(static_cast<float>(dot), half(wb) * half(ab), acc);
      }
      y[m * N + n] = acc;
    }
  }
  return y;
}

// Activations for the chain-order checks: M rows of K, the first block all zeros (d = 0) and
// every `stride`-th value an outlier (x30), which moves its block's scale.
std::vector<float> chain_case_x(int64_t M, int64_t K, uint32_t seed, int64_t stride) {
  auto x = gaussian(static_cast<size_t>(M * K), seed);
  for (int64_t i = 0; i < 32; ++i) x[i] = 0.f;
  for (int64_t i = 0; i < M * K; i += stride) x[i] *= 30.f;
  return x;
}

}  // namespace

// Q4_0 in llama.cpp's repacked order against a scalar model of that order, bit for bit, at the
// shapes of the AVX2 panel: M = 4..7 cover its 4-row steps and 1-3-row remainders, K = 3840 the
// 12B's hidden size, N = 8 a single panel. (The ggml comparison above covers the same path at
// other shapes; Q8_0's panel sums in tinyBLAS's order and is checked there.)
BOOST_AUTO_TEST_CASE(q4_0_chain_order_is_exact) {
  for (int64_t N : {8, 64})
    for (int64_t K : {96, 512, 3840})
      for (int64_t M : {4, 5, 6, 7, 33}) {
        BOOST_TEST_CONTEXT("N=" << N << " K=" << K << " M=" << M) {
          const auto W = make_weights(DType::Q4_0, N, K, static_cast<uint32_t>(N * 5 + K));
          const auto x = chain_case_x(M, K, static_cast<uint32_t>(M * 17 + K), 41);
          const auto ref = chain_order_ref(W, N, K, x, M);
          std::vector<float> y(static_cast<size_t>(M * N), -777.f);
          quant_matmul_llama_order(DType::Q4_0, W.data(), N, K, x.data(), M, K, y.data(), N);
          int64_t mismatches = 0;
          for (size_t i = 0; i < y.size(); ++i) mismatches += std::memcmp(&y[i], &ref[i], 4) != 0;
          BOOST_CHECK_MESSAGE(mismatches == 0, mismatches << " of " << y.size() << " differ");
        }
      }
}

// On AVX-512, quant_matmul runs Q4_0 batches of 3 rows or more on 16-row panels that sum in the
// repacked order: bit for bit the chain-order model, at partial last panels (N = 13, 40), every
// remainder of the 8-row steps (M = 3..9, 25), an odd block count (K = 96), the 12B's hidden size,
// and row strides (padding between rows of y is not written).
BOOST_AUTO_TEST_CASE(q4_0_batches_sum_in_chain_order_on_avx512) {
  if (!RAWFLOW_AVX512) return;  // AVX2 batches keep the vec_dot order (kernel_matches_reference)
  for (int64_t N : {13, 40, 64})
    for (int64_t K : {96, 3840})
      for (int64_t M : {3, 4, 5, 6, 7, 8, 9, 25}) {
        BOOST_TEST_CONTEXT("N=" << N << " K=" << K << " M=" << M) {
          const auto W = make_weights(DType::Q4_0, N, K, static_cast<uint32_t>(N * 3 + K));
          const auto x = chain_case_x(M, K, static_cast<uint32_t>(M * 19 + K), 43);
          const auto ref = chain_order_ref(W, N, K, x, M);
          const int64_t ldx = K + 7, ldy = N + 3;
          std::vector<float> xs(static_cast<size_t>(M * ldx), 0.f);
          for (int64_t m = 0; m < M; ++m)
            std::copy(x.begin() + m * K, x.begin() + (m + 1) * K, xs.begin() + m * ldx);
          std::vector<float> y(static_cast<size_t>(M * ldy), -777.f);
          quant_matmul(DType::Q4_0, W.data(), N, K, xs.data(), M, ldx, y.data(), ldy);
          int64_t mismatches = 0;
          for (int64_t m = 0; m < M; ++m) {
            BOOST_REQUIRE_EQUAL(y[m * ldy + N], -777.f);
            for (int64_t n = 0; n < N; ++n)
              mismatches += std::memcmp(&y[m * ldy + n], &ref[m * N + n], 4) != 0;
          }
          BOOST_CHECK_MESSAGE(mismatches == 0, mismatches << " of " << M * N << " differ");
        }
      }
}

// Q4_0 product time by batch size at a 12B layer's shape (informational: where the batch panels
// start to pay, kPanel16MinRows; and the rate in GMAC/s).
BOOST_AUTO_TEST_CASE(q4_0_batch_speed) {
  const int64_t N = 3840, K = 3840;
  const auto W = make_weights(DType::Q4_0, N, K, 9);
  const auto x = gaussian(static_cast<size_t>(512 * K), 10);
  std::vector<float> y(static_cast<size_t>(512 * N));
  for (int64_t M : {1, 2, 3, 4, 6, 8, 16, 25, 64, 512}) {
    double best = 1e30;
    for (int rep = 0; rep < (M < 64 ? 10 : 3); ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      quant_matmul(DType::Q4_0, W.data(), N, K, x.data(), M, K, y.data(), N);
      best = std::min(best,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    BOOST_TEST_MESSAGE("Q4_0 " << N << "x" << K << " M=" << M << ": " << best * 1e3 << " ms, "
                               << static_cast<double>(M * N * K) / best * 1e-9 << " GMAC/s");
  }
}

// Row strides and the other weight types (which fall through to quant_matmul).
BOOST_AUTO_TEST_CASE(llama_order_strides_and_fallthrough) {
  const int64_t M = 5, N = 48, K = 512, ldx = K + 5, ldy = N + 3;
  for (DType t : kAllTypes) {
    BOOST_TEST_CONTEXT(dtype_name(t)) {
      const auto W = make_weights(t, N, K, 17);
      const auto x = gaussian(static_cast<size_t>(M * ldx), 23);
      std::vector<float> y(M * ldy, -777.f), packed(M * K), ypacked(M * N);
      quant_matmul_llama_order(t, W.data(), N, K, x.data(), M, ldx, y.data(), ldy);
      for (int64_t m = 0; m < M; ++m)
        std::copy(x.begin() + m * ldx, x.begin() + m * ldx + K, packed.begin() + m * K);
      quant_matmul_llama_order(t, W.data(), N, K, packed.data(), M, K, ypacked.data(), N);
      std::vector<float> yq(M * N);
      quant_matmul(t, W.data(), N, K, packed.data(), M, K, yq.data(), N);
      std::vector<float> w(K);
      for (int64_t m = 0; m < M; ++m) {
        BOOST_REQUIRE_EQUAL(y[m * ldy + N], -777.f);
        for (int64_t n = 0; n < N; ++n) {
          BOOST_REQUIRE_EQUAL(y[m * ldy + n], ypacked[m * N + n]);
          // Same product as quant_matmul up to summation order (bound of kernel_matches_reference).
          dequantize_row(t, W.data() + n * dtype_row_bytes(t, K), w.data(), K);
          BOOST_REQUIRE_SMALL(static_cast<double>(ypacked[m * N + n] - yq[m * N + n]),
                              2e-5 * abs_dot(w.data(), packed.data() + m * K, K));
        }
      }
    }
  }
}

// Speed next to quant_matmul (informational; decode M = 1 and a prompt batch M = 200), and the
// results do not depend on the run: the same bits on every call whatever the thread timing.
BOOST_AUTO_TEST_CASE(llama_order_speed) {
  const int64_t N = 2048, K = 3840;
  const auto x = gaussian(static_cast<size_t>(200 * K), 4);
  std::vector<float> y(200 * N), first(200 * N);
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    const auto W = make_weights(t, N, K, 5);
    for (int64_t M : {1, 200}) {
      quant_matmul_llama_order(t, W.data(), N, K, x.data(), M, K, first.data(), N);
      auto best = [&](auto fn) {
        double b = 1e30;
        for (int rep = 0; rep < (M == 1 ? 20 : 3); ++rep) {
          const auto t0 = std::chrono::steady_clock::now();
          fn(t, W.data(), N, K, x.data(), M, K, y.data(), N);
          b = std::min(
              b, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        return b;
      };
      const double t_plain = best(quant_matmul);
      const double t_llama = best(quant_matmul_llama_order);
      BOOST_CHECK(std::memcmp(y.data(), first.data(), sizeof(float) * M * N) == 0);
      BOOST_TEST_MESSAGE(dtype_name(t)
                         << " " << N << "x" << K << " M=" << M << ": quant_matmul " << t_plain * 1e3
                         << " ms, llama order " << t_llama * 1e3 << " ms");
    }
  }
}

// BF16 decode (M = 1) at the 12B's hidden size over 8192 rows (63 MB, past the caches): reports
// the streaming rate next to a plain read of the same bytes (informational) and spot-checks rows
// against the reference. Bound: K / 8 = 480 fma steps per lane plus the 3-level horizontal sum,
// each rounding <= 2^-24 of a partial sum of |w x|: 488 * 6e-8 < 3e-5 of sum|w x|.
BOOST_AUTO_TEST_CASE(decode_bandwidth_bf16) {
  const int64_t N = 8192, K = 3840;
  const auto W = make_weights(DType::BF16, N, K, 8);
  const auto x = gaussian(static_cast<size_t>(K), 9);
  std::vector<float> y(N);
  const double t_read = best_of(5, [&] { read_all(W); });
  const double t_mm =
      best_of(5, [&] { quant_matmul(DType::BF16, W.data(), N, K, x.data(), 1, K, y.data(), N); });
  const double gb = static_cast<double>(W.size()) / 1e9;
  BOOST_TEST_MESSAGE("BF16 " << N << "x" << K << " M=1: " << gb / t_mm << " GB/s, plain read "
                             << gb / t_read << " GB/s");
  const size_t rb = dtype_row_bytes(DType::BF16, K);
  std::vector<float> w(K);
  for (int64_t n : {int64_t{0}, int64_t{3}, int64_t{4097}, N - 1}) {
    float r;
    quant_matmul_ref(DType::BF16, W.data() + n * rb, 1, K, x.data(), 1, K, &r, 1);
    dequantize_row(DType::BF16, W.data() + n * rb, w.data(), K);
    BOOST_CHECK_SMALL(static_cast<double>(y[n] - r), 3e-5 * abs_dot(w.data(), x.data(), K));
  }
}

// Decode-shaped K-quant and Q8_0 products (K = 3840, the 12B's hidden size; N large enough that
// W is far bigger than the caches, as the 262144-row tied head is): reports the weight streaming
// rate at M = 1 next to a plain parallel read of the same bytes (informational: memory speed
// varies with the machine's load), and spot-checks rows against the reference with the bound of
// kernel_matches_reference.
BOOST_AUTO_TEST_CASE(decode_bandwidth_k_quants) {
  const int64_t N = 32768, K = 3840;
  const auto x = gaussian(static_cast<size_t>(K), 6);
  std::vector<float> y(N);
  for (DType t : {DType::Q6_K, DType::Q4_K, DType::Q5_K, DType::Q8_0}) {
    const auto W = make_weights(t, N, K, 7);
    const size_t rb = dtype_row_bytes(t, K);
    const auto best_seconds = [](auto&& fn) { return best_of(5, fn); };
    const double t_read = best_seconds([&] { read_all(W); });
    const double t_mm = best_seconds(
        [&] { quant_matmul_llama_order(t, W.data(), N, K, x.data(), 1, K, y.data(), N); });
    const double gb = static_cast<double>(W.size()) / 1e9;
    BOOST_TEST_MESSAGE(dtype_name(t) << " " << N << "x" << K << " M=1: " << gb / t_mm
                                     << " GB/s, plain read " << gb / t_read << " GB/s");
    std::vector<float> w(K);
    for (int64_t n : {int64_t{0}, int64_t{5}, int64_t{12345}, N - 1}) {
      float r;
      quant_matmul_ref(t, W.data() + n * rb, 1, K, x.data(), 1, K, &r, 1);
      dequantize_row(t, W.data() + n * rb, w.data(), K);
      // K = 3840: 15 super-blocks (120 Q8_0 blocks) + 8 lanes of float roundings, < 1e-5 of
      // sum|w x| (see kernel_matches_reference).
      BOOST_CHECK_SMALL(static_cast<double>(y[n] - r), 1e-5 * abs_dot(w.data(), x.data(), K));
    }
  }
}
