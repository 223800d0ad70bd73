#pragma once
// Matrix product against block-quantized (or 16-bit) weights: the engine's decode / small-batch
// kernel. Numerics follow llama.cpp's CPU backend so parity tests can be tight.
#include <cstdint>

#include "model/formats/dtype.h"

namespace rawflow {

// y[m*ldy + n] = sum_k W_n[k] * x[m*ldx + k] for n in [0, N), m in [0, M).
// W: N rows of K elements in `wtype` (row stride dtype_row_bytes(wtype, K)); K must be a multiple
// of the type's block size. As in ggml's vec_dot: for Q8_0/Q4_0 the activations are first
// quantized to Q8_0 blocks, for Q4_K/Q5_K/Q6_K to Q8_K, for F16 rounded to fp16, for BF16 to bf16;
// F32 is used as is. On AVX-512, Q4_0 batches of 3 rows or more run on 16-row panels and sum in
// llama.cpp's repacked order (see quant_matmul_llama_order); the rest in vec_dot-like orders.
// Runs on OpenMP threads (parallel over N); call it from one thread.
void quant_matmul(DType wtype, const void* W, int64_t N, int64_t K, const float* x, int64_t M,
                  int64_t ldx, float* y, int64_t ldy);

// Same product, summed in the order llama.cpp's CPU backend uses for this weight type and batch
// size (tinyBLAS for Q8_0 and BF16, the 8x8 repacked kernels for Q4_0, vec_dot for the rest), so
// that the results are bit-identical to ggml's for Q8_0 and Q4_0 (checked in
// tests/test_quant_matmul.cpp):
// - Q8_0 (any M), and Q4_0 with N % 8 != 0 (llama.cpp does not repack those): per output, 8 float
//   lanes each accumulating fma(d_w*d_x, sum of 4 int8 products, lane) block after block, then
//   ggml's hsum_float_8 ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)). tinyBLAS_Q0_AVX (M >= 2) and
//   ggml_vec_dot_q8_0_q8_0 / q4_0_q8_0 (M = 1) share this order.
// - Q4_0 with N % 8 == 0 (repacked to q4_0x8 at load, ggml_gemm/gemv_q4_0_8x8_q8_0): per output a
//   single float chain acc = fma(block's int32 dot, d_w*d_x, acc) over the blocks.
// On AVX2, batches of 4 rows or more of both run on a panel of eight unpacked weight rows in the
// same orders; on AVX-512, Q4_0 batches of 3 rows or more on a panel of sixteen (any N). Other
// types fall through to quant_matmul. Same threading and argument rules as quant_matmul.
void quant_matmul_llama_order(DType wtype, const void* W, int64_t N, int64_t K, const float* x,
                              int64_t M, int64_t ldx, float* y, int64_t ldy);

// Scalar reference of the same numerics: dequantized weights times the activations as the
// kernel quantizes them, summed in double. For tests.
void quant_matmul_ref(DType wtype, const void* W, int64_t N, int64_t K, const float* x, int64_t M,
                      int64_t ldx, float* y, int64_t ldy);

// The activation quantizers the kernel uses, writing ggml's block layouts (block_q8_0: fp16 d +
// 32 int8; block_q8_K: f32 d + 256 int8 + 16 int16 bsums). Q8_0 follows the x86 build of ggml's
// quantize_row_q8_0 (the one llama.cpp runs on this CPU: id = 127/amax, round half to even);
// Q8_K is quantize_row_q8_K_ref. k must be a multiple of 32 / 256.
void quantize_activations_q8_0(const float* x, void* blocks, int64_t k);
void quantize_activations_q8_K(const float* x, void* blocks, int64_t k);
inline constexpr size_t kQ8_0BlockBytes = 34;
inline constexpr size_t kQ8_KBlockBytes = 292;

}  // namespace rawflow
