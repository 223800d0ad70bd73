#include "model/kernels/linear.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "model/error.h"
#include "model/formats/quant.h"
#include "model/kernels/isa.h"
#include "model/kernels/quant_matmul.h"

namespace rawflow {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

DnnlContext::DnnlContext() : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {}

DnnlContext& DnnlContext::get() {
  static DnnlContext ctx;
  return ctx;
}

void f32_to_bf16_row(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512BF16__)
  for (; i + 16 <= n; i += 16) {
    __m256bh v = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), reinterpret_cast<__m256i&>(v));
  }
#endif
  for (; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

void bf16_to_f32_row(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    const __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
    _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(w));
  }
  for (; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

namespace {

enum class Path { DnnlBf16, DnnlF32Panels, Quant };

// Whether oneDNN can build a bf16 matmul on this CPU, asked once.
bool dnnl_has_bf16_matmul() {
  static const bool ok = [] {
    try {
      dnnl::memory::desc a({32, 64}, dt::bf16, tag::ab), b({64, 32}, dt::bf16, tag::ba),
          c({32, 32}, dt::f32, tag::ab);
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), DnnlContext::get().engine());
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return ok;
}

// Below this batch size a bf16 matrix is streamed by our kernel (decode is bandwidth-bound and
// oneDNN's small-M brgemm reads it at half the speed, measured); above it oneDNN's brgemm wins.
constexpr int64_t kPlainDnnlMinRows = 32;

// Without a bf16 matmul in oneDNN (AVX2), a batch converts this many weight rows at a time to f32
// and runs oneDNN's f32 GEMM on them: the panel stays cache-sized and transient, so resident
// memory keeps one bf16 copy of the weights.
constexpr int64_t kBf16PanelRows = 256;

}  // namespace

struct Linear::Impl {
  TensorRef w;
  LinearOptions opt;
  Path path = Path::Quant;
  dnnl::memory::desc wei_md;
  dnnl::memory wei_mem;
  mutable std::mutex mu;
  mutable std::map<std::pair<int64_t, int64_t>, dnnl::matmul> prims;  // (M, N-tile) → primitive

  int64_t K() const { return w.ne[0]; }
  int64_t N() const { return w.ne[1]; }

  // The primitive for an [M, K] × [K, n] product with dst rows `ldd` floats apart.
  dnnl::matmul primitive(int64_t M, int64_t n, int64_t ldd, const dnnl::memory::desc& wmd,
                         dt src_dt) const {
    std::lock_guard<std::mutex> lock(mu);
    auto key = std::make_pair(M, n);
    auto it = prims.find(key);
    if (it != prims.end()) return it->second;
    auto& eng = DnnlContext::get().engine();
    dnnl::memory::desc src({M, K()}, src_dt, tag::ab);
    dnnl::memory::desc dst({M, n}, dt::f32, dnnl::memory::dims{ldd, 1});
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, wmd, dst), eng);
    dnnl::matmul p(pd);
    prims.emplace(key, p);
    return p;
  }

  void run(const dnnl::matmul& p, const void* src, int64_t M, int64_t n, int64_t ldd,
           const dnnl::memory::desc& wmd, const dnnl::memory& wmem, dt src_dt, float* y) const {
    auto& eng = DnnlContext::get().engine();
    auto& s = DnnlContext::get().stream();
    dnnl::memory xm({{M, K()}, src_dt, tag::ab}, eng, const_cast<void*>(src));
    dnnl::memory ym({{M, n}, dt::f32, dnnl::memory::dims{ldd, 1}}, eng, y);
    p.execute(s, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wmem}, {DNNL_ARG_DST, ym}});
    s.wait();
  }

  void forward_dnnl(const float* x, int64_t M, float* y) const {
    // One engine thread calls forward at a time; its bf16 copy of the activations is reused.
    thread_local std::vector<uint16_t> xb;
    if (xb.size() < static_cast<size_t>(M * K())) xb.resize(static_cast<size_t>(M * K()));
    f32_to_bf16_row(x, xb.data(), M * K());
    run(primitive(M, N(), N(), wei_md, dt::bf16), xb.data(), M, N(), N(), wei_md, wei_mem, dt::bf16,
        y);
  }

  // bf16 weights, f32 activations and GEMM (exact products of the stored weights), one panel of
  // rows at a time into the matching columns of y.
  void forward_f32_panels(const float* x, int64_t M, float* y) const {
    thread_local std::vector<float> panel;
    const int64_t nt = std::min(N(), kBf16PanelRows);
    if (panel.size() < static_cast<size_t>(nt * K())) panel.resize(static_cast<size_t>(nt * K()));
    // A pointer, not the thread_local itself, goes into the parallel loop: the OpenMP workers
    // would each see their own (empty) vector.
    float* p = panel.data();
    const auto* wb = static_cast<const uint16_t*>(w.data);
    const int64_t k = K();
    auto& eng = DnnlContext::get().engine();
    for (int64_t n0 = 0; n0 < N(); n0 += nt) {
      const int64_t n = std::min(nt, N() - n0);
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < n; ++r) bf16_to_f32_row(wb + (n0 + r) * k, p + r * k, k);
      dnnl::memory::desc pmd({k, n}, dt::f32, tag::ba);
      dnnl::memory pmem(pmd, eng, p);
      run(primitive(M, n, N(), pmd, dt::f32), x, M, n, N(), pmd, pmem, dt::f32, y + n0);
    }
  }
};

Linear::Linear(const TensorRef& w, const LinearOptions& opt) : impl_(std::make_unique<Impl>()) {
  if (w.ne.size() != 2)
    throw ModelFileError("tensor `" + w.name + "` is not a matrix (" + std::to_string(w.ne.size()) +
                         " dimensions)");
  name_ = w.name;
  dtype_ = w.dtype;
  in_ = w.ne[0];
  out_ = w.ne[1];
  Impl& im = *impl_;
  im.w = w;
  im.opt = opt;
  auto& eng = DnnlContext::get().engine();
  void* data =
      const_cast<void*>(w.data);  // oneDNN takes a non-const handle; it never writes weights
  switch (w.dtype) {
    case DType::F32:
      // F32 files are reference and test models: our kernel sums in llama.cpp's order (one
      // 16-lane accumulator, then a horizontal sum), which keeps parity runs bit-close.
      im.path = Path::Quant;
      break;
    case DType::BF16:
      // Read in place by our kernel, like F32, for llama.cpp's order. oneDNN 2.6 has no bf16
      // matmul without avx512_core: there batches go to its f32 GEMM panel by panel.
      if (opt.llama_order) {
        im.path = Path::Quant;
        break;
      }
      if (!dnnl_has_bf16_matmul()) {
        im.path = Path::DnnlF32Panels;
        break;
      }
      im.path = Path::DnnlBf16;
      im.wei_md = dnnl::memory::desc({in_, out_}, dt::bf16, tag::ba);
      im.wei_mem = dnnl::memory(im.wei_md, eng, data);
      break;
    default:
      im.path = Path::Quant;
      break;
  }
}

const char* Linear::batch_kernel() const {
  switch (impl_->path) {
    case Path::DnnlBf16:
      return "onednn-bf16";
    case Path::DnnlF32Panels:
      return "onednn-f32-panels";
    case Path::Quant:
      break;
  }
  return "rawflow";
}

Linear::Linear() = default;
Linear::Linear(Linear&&) noexcept = default;
Linear& Linear::operator=(Linear&&) noexcept = default;
Linear::~Linear() = default;

void Linear::forward(const float* x, int64_t M, float* y) const {
  const Impl& im = *impl_;
  if (M <= 0) return;
  switch (im.path) {
    case Path::DnnlBf16:
    case Path::DnnlF32Panels:
      // Read in place: small batches stream it with our kernel, large ones go to brgemm, which
      // copies blocks into its layout on the fly (within 3 % of pre-reordered weights, measured),
      // or without bf16 brgemm to the f32 GEMM over widened panels.
      if (M < kPlainDnnlMinRows)
        quant_matmul(DType::BF16, im.w.data, out_, in_, x, M, in_, y, out_);
      else if (im.path == Path::DnnlBf16)
        im.forward_dnnl(x, M, y);
      else
        im.forward_f32_panels(x, M, y);
      return;
    case Path::Quant:
      // Q8_0 costs nothing extra in llama.cpp's order, so it always uses it. Q4_0 batches run
      // in the repacked order on both ISAs, the faster one there (on AVX-512 quant_matmul
      // itself takes them to its panels); decode keeps the prefetching vec_dot-order tile.
      if (im.opt.llama_order || im.w.dtype == DType::Q8_0 ||
          (!RAWFLOW_AVX512 && im.w.dtype == DType::Q4_0 && M > 1))
        quant_matmul_llama_order(im.w.dtype, im.w.data, out_, in_, x, M, in_, y, out_);
      else
        quant_matmul(im.w.dtype, im.w.data, out_, in_, x, M, in_, y, out_);
      return;
  }
}

}  // namespace rawflow
