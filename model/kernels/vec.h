#pragma once
// Small vector kernels of the decoder (AVX-512 or AVX2, model/kernels/isa.h), each tested against a
// plain loop in test_vec.cpp. Where llama.cpp's order depends on the ISA, kSimdFloats (16 or 8)
// is the lane count.
#include <cstdint>

namespace rawflow::vec {

float dot(const float* a, const float* b, int64_t n);
// out[g] = dot(a[g], b, n) for g < count, bit for bit; b is read once for every pair of rows
// (attention heads that share a key).
void dot_multi(const float* const* a, int count, const float* b, int64_t n, float* out);
// y += a * x
void axpy(float a, const float* x, float* y, int64_t n);
// Sum of squares accumulated in double (llama.cpp accumulates norms in ggml_float = double).
double sum_squares(const float* x, int64_t n);
// out = x / sqrt(mean(x²) + eps) * w   (w may be null: the weightless variant). out may alias x.
void rms_norm(const float* x, const float* w, float eps, int64_t n, float* out);
// out[i] = gelu_tanh(gate[i]) * up[i], GELU evaluated as llama.cpp does: the input rounded to
// fp16, the result taken from a table of fp16 values (exact below −10 and above 10).
void geglu_tanh(const float* gate, const float* up, float* out, int64_t n);
// In-place softmax over n scores (ggml_vec_soft_max_f32's order: kSimdFloats-wide chunks from
// index 0). -inf entries become 0.
void softmax(float* x, int64_t n);
// out[d] = Σ_k p[k]·rows[k][d], accumulated as llama.cpp's tinyBLAS does: one accumulator per
// lane k mod kSimdFloats over the keys, then a horizontal sum. `lanes` is scratch of 16·dim floats.
// The reference order; attention computes it with lanes_add / lanes_finish.
void weighted_sum_lanes(const float* p, const float* const* rows, int64_t n, int64_t dim,
                        float* lanes, float* out);
// weighted_sum_lanes for `count` weight vectors p[g] over the same rows, bit for bit, in pieces:
// lanes_add accumulates keys [k_begin, k_end) into `lanes` (count·kSimdFloats·dim floats, zeroed
// before the first call; key k goes into lane k mod kSimdFloats, and each lane must receive its
// keys in increasing order over the calls), lanes_finish writes out[g][d] = Σ_k p[g][k]·rows[k][d].
// Each row is read once for every pair of weight vectors, and each lane accumulator once per four
// keys. rows[k] may be null only where every p[g][k] is 0 (masked keys).
void lanes_add(const float* const* p, int count, const float* const* rows, int64_t k_begin,
               int64_t k_end, int64_t dim, float* lanes);
void lanes_finish(const float* lanes, int count, int64_t dim, float* const* out);

}  // namespace rawflow::vec
