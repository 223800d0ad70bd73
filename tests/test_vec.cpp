// The decoder's small vector kernels against plain double-precision loops.
#define BOOST_TEST_MODULE test_vec
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "model/kernels/vec.h"

using namespace rawflow;

namespace {
std::vector<float> randv(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}
}  // namespace

// Sizes cover the 16- and 32-wide main loops and their scalar tails.
const int64_t kSizes[] = {1, 15, 16, 17, 31, 32, 33, 256, 640, 3840, 3841};

BOOST_AUTO_TEST_CASE(dot_and_axpy) {
  for (int64_t n : kSizes) {
    auto a = randv(n, 1), b = randv(n, 2);
    double ref = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i)
      ref += double(a[i]) * b[i], mag += std::fabs(double(a[i]) * b[i]);
    // f32 accumulation in a different order than the reference: error ≤ n·ε·Σ|a·b|, taken loosely.
    BOOST_TEST(std::fabs(vec::dot(a.data(), b.data(), n) - ref) <=
               1e-6 * mag * std::sqrt(double(n)) + 1e-12);
    auto y = randv(n, 3), y0 = y;
    vec::axpy(0.37f, a.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i)
      BOOST_TEST(std::fabs(y[i] - (y0[i] + 0.37 * a[i])) <= 1e-6 * (1 + std::fabs(y0[i])));
  }
}

BOOST_AUTO_TEST_CASE(rms_norm_weighted_and_weightless) {
  for (int64_t n : kSizes) {
    auto x = randv(n, 4, 50.f), w = randv(n, 5);
    double ss = 0;
    for (float v : x) ss += double(v) * v;
    const double s = 1.0 / std::sqrt(ss / n + 1e-6);
    std::vector<float> out(n), out2(n);
    vec::rms_norm(x.data(), w.data(), 1e-6f, n, out.data());
    vec::rms_norm(x.data(), nullptr, 1e-6f, n, out2.data());
    for (int64_t i = 0; i < n; ++i) {
      BOOST_TEST(std::fabs(out[i] - x[i] * s * w[i]) <= 1e-5 * (1 + std::fabs(x[i] * s * w[i])));
      BOOST_TEST(std::fabs(out2[i] - x[i] * s) <= 1e-5 * (1 + std::fabs(x[i] * s)));
    }
  }
  // All-zero input maps to zero (the multimodal norms rely on it for silent audio frames).
  std::vector<float> z(640, 0.f), o(640, 1.f);
  vec::rms_norm(z.data(), nullptr, 1e-6f, 640, o.data());
  for (float v : o) BOOST_TEST(v == 0.f);
}

BOOST_AUTO_TEST_CASE(geglu_matches_formula) {
  auto g = randv(1000, 6, 3.f), u = randv(1000, 7);
  std::vector<float> out(1000);
  vec::geglu_tanh(g.data(), u.data(), out.data(), 1000);
  for (int i = 0; i < 1000; ++i) {
    const double x = g[i];
    const double ref =
        0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))) * u[i];
    // fp16 input and output rounding: each ≤ 2⁻¹¹ relative; GELU's slope is ≤ 1.13, so the
    // product is within ~3·2⁻¹¹ of the exact value, plus an absolute floor near zero.
    BOOST_TEST(std::fabs(out[i] - ref) <= 1.5e-3 * std::fabs(ref) + 1e-4 * std::fabs(u[i]));
  }
}

BOOST_AUTO_TEST_CASE(softmax_sums_to_one_and_handles_masked) {
  auto x = randv(1024, 8, 20.f);
  x[5] = -INFINITY;
  auto ref = x;
  vec::softmax(x.data(), 1024);
  double mx = -INFINITY, sum = 0;
  for (float v : ref) mx = std::max<double>(mx, v);
  for (float v : ref) sum += std::exp(double(v) - mx);
  for (int i = 0; i < 1024; ++i)
    BOOST_TEST(std::fabs(x[i] - std::exp(double(ref[i]) - mx) / sum) <= 1e-6);
  BOOST_TEST(x[5] == 0.f);
}

BOOST_AUTO_TEST_CASE(dot_multi_equals_dot_bit_for_bit) {
  // Attention takes two heads at a time through dot_multi; their scores must be dot's bits, the
  // order llama.cpp's are computed in.
  for (int64_t n : kSizes) {
    auto a0 = randv(n, 11), a1 = randv(n, 12), b = randv(n, 13);
    const float* a[2] = {a0.data(), a1.data()};
    for (int count : {1, 2}) {
      float out[2] = {};
      vec::dot_multi(a, count, b.data(), n, out);
      for (int g = 0; g < count; ++g) BOOST_TEST(out[g] == vec::dot(a[g], b.data(), n));
    }
  }
}

BOOST_AUTO_TEST_CASE(weighted_sum_lanes_against_plain_sum_and_lanes_add_bit_for_bit) {
  // Keys: a masked edge (no row, weight 0) as attention lays out its aligned 16-key groups,
  // weights that are exactly 0 on a row (an underflowed exp), and counts that end mid-lane and
  // mid-block. Dimensions cover the 8-wide chunks and the scalar tail.
  for (int64_t n : {1, 7, 16, 33, 64, 65, 200, 1040})
    for (int64_t dim : {8, 13, 256}) {
      auto v = randv(static_cast<size_t>(n * dim), 21);
      std::vector<const float*> rows(static_cast<size_t>(n));
      std::vector<float> p[3];
      for (int g = 0; g < 3; ++g) p[g] = randv(static_cast<size_t>(n), 30 + g);
      for (int64_t k = 0; k < n; ++k) {
        rows[k] = v.data() + k * dim;
        for (auto& w : p) w[k] = std::fabs(w[k]);
        if (k < 3 || k >= n - 2) {  // masked
          rows[k] = nullptr;
          for (auto& w : p) w[k] = 0.f;
        } else if (k % 5 == 0) {
          p[1][k] = 0.f;  // underflowed for one head only
        }
      }
      std::vector<float> lanes(static_cast<size_t>(3 * 16 * dim));
      std::vector<float> single[3], multi[3];
      for (int g = 0; g < 3; ++g) {
        single[g].resize(static_cast<size_t>(dim));
        multi[g].resize(static_cast<size_t>(dim));
        vec::weighted_sum_lanes(p[g].data(), rows.data(), n, dim, lanes.data(), single[g].data());
        double worst = 0;
        for (int64_t d = 0; d < dim; ++d) {
          double ref = 0, mag = 0;
          for (int64_t k = 0; k < n; ++k)
            if (rows[k])
              ref += double(p[g][k]) * rows[k][d], mag += std::fabs(p[g][k] * rows[k][d]);
          worst = std::max(worst, std::fabs(single[g][d] - ref) / (mag + 1e-30));
        }
        // f32 sums of ≤ n/8 terms per lane, then 8 or 16 lanes: a few ε per level.
        BOOST_TEST(worst <= 1e-5, "n=" << n << " dim=" << dim << " rel " << worst);
      }
      const float* pp[3] = {p[0].data(), p[1].data(), p[2].data()};
      float* out[3] = {multi[0].data(), multi[1].data(), multi[2].data()};
      // All keys in one call, and in pieces that cut lanes and blocks (as attention's value tiles
      // do for rows whose keys start mid-tile).
      for (int64_t piece : {n, int64_t{5}, int64_t{64}})
        for (int count : {1, 2, 3}) {
          std::fill(lanes.begin(), lanes.end(), 0.f);
          for (int64_t k = 0; k < n; k += piece)
            vec::lanes_add(pp, count, rows.data(), k, std::min(n, k + piece), dim, lanes.data());
          vec::lanes_finish(lanes.data(), count, dim, out);
          for (int g = 0; g < count; ++g)
            BOOST_TEST(std::memcmp(multi[g].data(), single[g].data(), dim * sizeof(float)) == 0,
                       "n=" << n << " dim=" << dim << " piece=" << piece << " count=" << count
                            << " head " << g);
        }
    }
}
