#pragma once
// A read-only view of one weight tensor as stored in a model file (usually mmapped).
#include <cstdint>
#include <string>
#include <vector>

#include "model/formats/dtype.h"

namespace rawflow {

// Shapes use ggml's order: ne[0] is the innermost (contiguous) dimension. A linear layer y = W x
// with W of PyTorch shape [out, in] therefore has ne = {in, out}: each of the `out` rows holds `in`
// contiguous elements. Safetensors shapes are reversed into this order when read.
struct TensorRef {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> ne;
  const void* data = nullptr;
  size_t nbytes = 0;

  int64_t nelements() const {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    return n;
  }
  // Number of rows of ne[0] elements.
  int64_t nrows() const { return ne.empty() ? 0 : nelements() / ne[0]; }
};

}  // namespace rawflow
