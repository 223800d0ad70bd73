#include "model/kernels/embedder_matmul.h"

#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>

#include "model/error.h"
#include "model/formats/quant.h"
#include "model/kernels/linear.h"

namespace rawflow {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

void widen_to_f32(DType t, const void* src, int64_t n, float* dst) {
  const auto* p = static_cast<const uint8_t*>(src);
  switch (t) {
    case DType::F32:
      std::memcpy(dst, p, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16:
#pragma omp parallel for schedule(static) if (n > (1 << 20))
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = fp16_to_f32(h);
      }
      return;
    case DType::BF16:
      // bf16 is the top half of an f32: a shift, inlined (position rows are widened per tile).
#pragma omp parallel for schedule(static) if (n > (1 << 20))
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        const uint32_t u = static_cast<uint32_t>(h) << 16;
        std::memcpy(dst + i, &u, 4);
      }
      return;
    default:
      throw EngineError("embedder weights must be f32, f16 or bf16, not " +
                        std::string(dtype_name(t)));
  }
}

std::vector<float> widen_to_f32(const TensorRef& t) {
  std::vector<float> v(static_cast<size_t>(t.nelements()));
  widen_to_f32(t.dtype, t.data, t.nelements(), v.data());
  return v;
}

struct EmbedderMatmul::Impl {
  dnnl::matmul prim;
  dnnl::memory weights;
  dnnl::memory bias;
  bool has_bias = false;
};

EmbedderMatmul::EmbedderMatmul(const TensorRef& w, const TensorRef* bias)
    : impl_(std::make_unique<Impl>()) {
  if (w.ne.size() != 2) throw EngineError("embedder weight `" + w.name + "` is not a matrix");
  in_ = w.ne[0];
  out_ = w.ne[1];
  const void* data = w.data;
  if (w.dtype != DType::F32) {
    widened_ = widen_to_f32(w);
    data = widened_.data();
  }
  auto& eng = DnnlContext::get().engine();
  // Weights as [K, N] with K contiguous (tag ba): exactly the file's rows of `in` elements.
  const dnnl::memory::desc wmd({in_, out_}, dt::f32, tag::ba);
  // oneDNN takes a non-const handle; it never writes weights.
  impl_->weights = dnnl::memory(wmd, eng, const_cast<void*>(data));
  const dnnl::memory::desc src({DNNL_RUNTIME_DIM_VAL, in_}, dt::f32, tag::ab);
  const dnnl::memory::desc dst({DNNL_RUNTIME_DIM_VAL, out_}, dt::f32, tag::ab);
  if (bias) {
    if (bias->nelements() != out_)
      throw EngineError("embedder bias `" + bias->name + "` has " +
                        std::to_string(bias->nelements()) + " elements, expected " +
                        std::to_string(out_));
    bias_ = widen_to_f32(*bias);
    const dnnl::memory::desc bmd({1, out_}, dt::f32, tag::ab);
    impl_->bias = dnnl::memory(bmd, eng, bias_.data());
    impl_->has_bias = true;
    impl_->prim =
        dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wmd, bmd, dst), eng));
  } else {
    impl_->prim =
        dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wmd, dst), eng));
  }
}

EmbedderMatmul::EmbedderMatmul(EmbedderMatmul&&) noexcept = default;
EmbedderMatmul& EmbedderMatmul::operator=(EmbedderMatmul&&) noexcept = default;
EmbedderMatmul::~EmbedderMatmul() = default;

void EmbedderMatmul::forward(const float* x, int64_t rows, float* y) const {
  if (rows <= 0) return;
  auto& eng = DnnlContext::get().engine();
  auto& s = DnnlContext::get().stream();
  dnnl::memory xm({{rows, in_}, dt::f32, tag::ab}, eng, const_cast<float*>(x));
  dnnl::memory ym({{rows, out_}, dt::f32, tag::ab}, eng, y);
  std::unordered_map<int, dnnl::memory> args = {
      {DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, impl_->weights}, {DNNL_ARG_DST, ym}};
  if (impl_->has_bias) args.emplace(DNNL_ARG_BIAS, impl_->bias);
  impl_->prim.execute(s, args);
  s.wait();
}

}  // namespace rawflow
