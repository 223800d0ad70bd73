#pragma once
// Block formats of ggml, bit-exact: dequantization for every supported type, and the reference
// quantizers (ggml's quantize_row_*_ref) used by `model synth`.
#include <cstddef>
#include <cstdint>

#include "model/formats/dtype.h"

namespace rawflow {

// dst[0..n) = value of the n elements at src. n must be a multiple of the block size.
void dequantize_row(DType t, const void* src, float* dst, int64_t n);
// Writes dtype_row_bytes(t, n) bytes. Matches ggml's reference quantizer bit for bit.
void quantize_row(DType t, const float* src, void* dst, int64_t n);

// Scalar conversions (round-to-nearest-even, as ggml does).
float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);

}  // namespace rawflow
