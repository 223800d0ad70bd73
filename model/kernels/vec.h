#pragma once
// Small vector kernels of the decoder (AVX-512), each tested against a plain loop in test_vec.cpp.
#include <cstdint>

namespace rawflow::vec {

float dot(const float* a, const float* b, int64_t n);
// y += a * x
void axpy(float a, const float* x, float* y, int64_t n);
// Sum of squares accumulated in double (llama.cpp accumulates norms in ggml_float = double).
double sum_squares(const float* x, int64_t n);
// out = x / sqrt(mean(x²) + eps) * w   (w may be null: the weightless variant). out may alias x.
void rms_norm(const float* x, const float* w, float eps, int64_t n, float* out);
// out[i] = gelu_tanh(gate[i]) * up[i]
void geglu_tanh(const float* gate, const float* up, float* out, int64_t n);
// In-place softmax over n scores; returns nothing. -inf entries become 0.
void softmax(float* x, int64_t n);

}  // namespace rawflow::vec
