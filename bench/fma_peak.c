// The arithmetic ceiling of this CPU, measured: ten independent 8-lane chains per thread (more
// than latency × throughput, so the pipes never wait), one thread per core, of
//  - f32 FMA (vfmadd231ps): the bound on any f32 GEMM, so on AVX2 on BF16 prefill, which
//    multiplies in f32 (no bf16 arithmetic before AVX-512);
//  - int16 pair multiply-add (vpmaddwd): the widest exact integer product AVX2 has for values
//    of more than 8 bits.
// docs/performance.md compares them with what the GEMMs reach.
//   cc -O2 -mavx2 -mfma -fopenmp bench/fma_peak.c -o /tmp/fma_peak
//   OMP_NUM_THREADS=2 /tmp/fma_peak
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static const long kIters = 100000000L;

// Returns multiply-adds per second.
static double fma_rate(float* sink) {
  const double t0 = now();
  float s_all = 0;
#pragma omp parallel reduction(+ : s_all)
  {
    __m256 acc[10];
    const __m256 b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 10; ++i) acc[i] = _mm256_set1_ps((float)i);
    for (long i = 0; i < kIters; ++i)
#pragma GCC unroll 10
      for (int j = 0; j < 10; ++j) acc[j] = _mm256_fmadd_ps(acc[j], b, c);
    __m256 s = acc[0];
    for (int i = 1; i < 10; ++i) s = _mm256_add_ps(s, acc[i]);
    float f[8];
    _mm256_storeu_ps(f, s);
    s_all += f[0];  // keeps the chains live
  }
  *sink += s_all;
  return (double)kIters * 10 * 8 * omp_get_max_threads() / (now() - t0);
}

static double madd_rate(int* sink) {
  const double t0 = now();
  int s_all = 0;
#pragma omp parallel reduction(+ : s_all)
  {
    __m256i acc[10];
    const __m256i b = _mm256_set1_epi16(3);
    for (int i = 0; i < 10; ++i) acc[i] = _mm256_set1_epi32(i);
    for (long i = 0; i < kIters; ++i)
#pragma GCC unroll 10
      for (int j = 0; j < 10; ++j) {
        acc[j] = _mm256_madd_epi16(acc[j], b);
        __asm__("" : "+x"(acc[j]));  // no folding of the chain
      }
    __m256i s = acc[0];
    for (int i = 1; i < 10; ++i) s = _mm256_add_epi32(s, acc[i]);
    s_all += _mm256_extract_epi32(s, 0);
  }
  *sink += s_all;
  return (double)kIters * 10 * 16 * omp_get_max_threads() / (now() - t0);
}

int main(void) {
  float fs = 0;
  int is = 0;
  const int n = omp_get_max_threads();
  const double f = fma_rate(&fs), m = madd_rate(&is);
  printf(
      "%d threads: f32 FMA %.1f GFLOP/s (%.1f G multiply-adds/s, %.2f GHz at 16 per cycle per "
      "core)\n",
      n, 2 * f / 1e9, f / 1e9, f / 1e9 / 16 / n);
  printf("%d threads: vpmaddwd %.1f G multiply-adds/s (checksums %g %d)\n", n, m / 1e9, fs, is);
  return 0;
}
