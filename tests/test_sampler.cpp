#define BOOST_TEST_MODULE test_sampler
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "model/error.h"
#include "model/gemma4/sampler.h"

using namespace rawflow;

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr size_t kVocab = 262144;  // Gemma 4 vocabulary size (spec §0)

// Independent reference of the chain (top-k -> top-p -> min-p -> temperature) for a small row:
// a full sort in double precision, written from llama.cpp's definitions, not from sampler.cpp.
std::vector<double> reference_distribution(const std::vector<float>& logits,
                                           const SamplingParams& p) {
  std::vector<size_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return logits[a] > logits[b]; });
  std::vector<size_t> kept;
  for (size_t i : order) {
    if (logits[i] != kNegInf) kept.push_back(i);
  }
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < kept.size()) kept.resize(p.top_k);
  const auto softmax = [&](const std::vector<size_t>& ids, double temp) {
    double mx = -INFINITY, z = 0;
    for (size_t i : ids) mx = std::max(mx, double(logits[i]));
    std::vector<double> pr;
    for (size_t i : ids) pr.push_back(std::exp((logits[i] - mx) / temp));
    for (double v : pr) z += v;
    for (double& v : pr) v /= z;
    return pr;
  };
  if (p.top_p < 1.0f) {
    const auto pr = softmax(kept, 1.0);
    double cum = 0;
    size_t n = kept.size();
    for (size_t j = 0; j < pr.size(); ++j) {
      cum += pr[j];
      if (cum >= p.top_p) {
        n = j + 1;
        break;
      }
    }
    kept.resize(n);
  }
  if (p.min_p > 0.0f) {
    const auto pr = softmax(kept, 1.0);
    std::vector<size_t> survivors;
    for (size_t j = 0; j < kept.size(); ++j) {
      if (pr[j] >= p.min_p * pr[0]) survivors.push_back(kept[j]);
    }
    kept = survivors;
  }
  const auto pr = softmax(kept, p.temperature);
  std::vector<double> dist(logits.size(), 0.0);
  for (size_t j = 0; j < kept.size(); ++j) dist[kept[j]] = pr[j];
  return dist;
}

// Draws `n` tokens and checks every token's frequency against `expected`.
// Bound: |f_i - p_i| <= 5 * sqrt(p_i (1 - p_i) / n), five binomial standard deviations. For a
// correct sampler the chance that any of 5 tokens exceeds it is < 5 * 5.7e-7 per seed. 5 sigma is
// at most 0.018 at n = 20,000, while a wrong filter or order in the cases below moves some p_i by
// 0.02 or more (e.g. keeping/dropping a token of p >= 0.023 renormalises the rest by that much).
// Tokens with p_i = 0 must never be drawn.
void check_empirical(const std::vector<float>& logits, const SamplingParams& p, int n) {
  const std::vector<double> expected = reference_distribution(logits, p);
  Sampler sampler(p);
  std::vector<int> counts(logits.size(), 0);
  for (int t = 0; t < n; ++t) {
    const int32_t id = sampler.sample(logits);
    BOOST_REQUIRE(id >= 0 && static_cast<size_t>(id) < logits.size());
    ++counts[id];
  }
  for (size_t i = 0; i < logits.size(); ++i) {
    const double f = double(counts[i]) / n;
    const double sigma = std::sqrt(expected[i] * (1 - expected[i]) / n);
    BOOST_TEST_INFO("token " << i << " expected " << expected[i] << " observed " << f);
    if (expected[i] == 0.0) {
      BOOST_CHECK_EQUAL(counts[i], 0);
    } else {
      BOOST_CHECK_LE(std::abs(f - expected[i]), 5 * sigma);
    }
  }
}

std::vector<float> random_row(size_t n, uint32_t seed, float scale) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> row(n);
  for (float& v : row) v = 30.0f * std::tanh(dist(gen) / 30.0f);  // soft-capped like the model's
  return row;
}

}  // namespace

BOOST_AUTO_TEST_CASE(greedy_is_argmax_lowest_id_on_ties) {
  const std::vector<float> row = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f};
  BOOST_CHECK_EQUAL(greedy_token(row), 1);
  SamplingParams p;
  p.greedy = true;
  BOOST_CHECK_EQUAL(Sampler(p).sample(row), 1);
  p.greedy = false;
  p.temperature = 0.0f;  // temperature <= 0 is greedy too
  BOOST_CHECK_EQUAL(Sampler(p).sample(row), 1);
  p.temperature = -1.0f;
  BOOST_CHECK_EQUAL(Sampler(p).sample(row), 1);
  // -inf never wins, even when it is the only non-finite-looking "extreme".
  const std::vector<float> masked = {kNegInf, -5.0f, kNegInf, -5.0f};
  BOOST_CHECK_EQUAL(greedy_token(masked), 1);
}

BOOST_AUTO_TEST_CASE(top_k_one_equals_greedy) {
  SamplingParams p;
  p.top_k = 1;
  p.top_p = 1.0f;
  for (uint32_t s = 0; s < 8; ++s) {
    std::vector<float> row = random_row(kVocab, s, 3.0f);
    // Plant ties at the maximum so the tie rule is exercised: ids 1000 and 7 share the max.
    const float mx = *std::max_element(row.begin(), row.end()) + 1.0f;
    row[1000] = mx;
    if (s % 2 == 0) row[7] = mx;
    row[3] = kNegInf;
    p.seed = s;
    Sampler sampler(p);
    const int32_t want = greedy_token(row);
    BOOST_CHECK_EQUAL(want, s % 2 == 0 ? 7 : 1000);
    for (int t = 0; t < 3; ++t) BOOST_CHECK_EQUAL(sampler.sample(row), want);
  }
}

// 5-token row: p(T=1) = softmax{2, 1.5, 1, 0, -1} = {0.4631, 0.2809, 0.1704, 0.0627, 0.0231}.
BOOST_AUTO_TEST_CASE(empirical_distribution_matches_chain) {
  const std::vector<float> row = {1.0f, -1.0f, 2.0f, 0.0f, 1.5f};  // shuffled so id != rank
  constexpr int kDraws = 20000;
  {
    SamplingParams p;  // no filter: plain softmax
    p.top_k = 0;
    p.top_p = 1.0f;
    p.seed = 1;
    check_empirical(row, p, kDraws);
  }
  {
    SamplingParams p;  // top-k 3 keeps {2, 1.5, 1}
    p.top_k = 3;
    p.top_p = 1.0f;
    p.seed = 2;
    check_empirical(row, p, kDraws);
  }
  {
    SamplingParams p;  // top-p 0.8: cum 0.463, 0.744, 0.914 -> 3 tokens
    p.top_k = 0;
    p.top_p = 0.8f;
    p.seed = 3;
    check_empirical(row, p, kDraws);
  }
  {
    SamplingParams p;  // min-p 0.1: threshold 0.0463 keeps 4 tokens (0.0627 survives, 0.0231 not)
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.1f;
    p.seed = 4;
    check_empirical(row, p, kDraws);
  }
  {
    SamplingParams p;  // temperature 0.5 over top-k 4: softmax{4, 3, 2, 0}
    p.top_k = 4;
    p.top_p = 1.0f;
    p.temperature = 0.5f;
    p.seed = 5;
    check_empirical(row, p, kDraws);
  }
  {
    // All four: top-k 4 -> p {0.474, 0.288, 0.174, 0.064}; top-p 0.9 stops at 0.936 (3 kept);
    // min-p 0.4 drops 0.174 (ratio e^-1 = 0.37 < 0.4; 2 kept); T = 1.5 flattens the two.
    SamplingParams p;
    p.top_k = 4;
    p.top_p = 0.9f;
    p.min_p = 0.4f;
    p.temperature = 1.5f;
    p.seed = 6;
    const auto ref = reference_distribution(row, p);
    BOOST_CHECK_CLOSE(ref[2], 1.0 / (1.0 + std::exp(-0.5 / 1.5)), 1e-9);
    check_empirical(row, p, kDraws);
  }
  {
    SamplingParams p;  // the model's defaults (spec §1.5): top-k 64 > 5, top-p 0.95 keeps 4
    p.seed = 7;
    check_empirical(row, p, kDraws);
  }
}

BOOST_AUTO_TEST_CASE(neg_inf_never_drawn) {
  // Suppressed ids as in spec §2.10 plus a mostly masked row; high temperature flattens what is
  // left so a masked id would show up quickly if the mask leaked.
  std::vector<float> row(kVocab, kNegInf);
  const std::vector<int32_t> live = {5, 17, 258000, 262143};
  for (int32_t id : live) row[id] = -20.0f + id % 7;
  SamplingParams p;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.temperature = 50.0f;
  p.seed = 11;
  Sampler sampler(p);
  for (int t = 0; t < 2000; ++t) {
    const int32_t id = sampler.sample(row);
    BOOST_REQUIRE(std::find(live.begin(), live.end(), id) != live.end());
  }
  // Defaults on a full random row with the suppressed ids of spec §2.10 masked.
  std::vector<float> full = random_row(kVocab, 3, 4.0f);
  full[258882] = kNegInf;
  full[258883] = kNegInf;
  Sampler def(SamplingParams{});
  for (int t = 0; t < 300; ++t) {
    const int32_t id = def.sample(full);
    BOOST_REQUIRE(id != 258882 && id != 258883);
  }
  // Nothing finite: a typed error, not a token.
  const std::vector<float> dead(16, kNegInf);
  BOOST_CHECK_THROW(Sampler(SamplingParams{}).sample(dead), EngineError);
  BOOST_CHECK_THROW(greedy_token(dead), EngineError);
  const std::vector<float> nan_row = {0.0f, std::nanf(""), 1.0f};
  BOOST_CHECK_THROW(Sampler(SamplingParams{}).sample(nan_row), EngineError);
}

BOOST_AUTO_TEST_CASE(large_vocab_filters_select_the_right_set) {
  // top-k 64 on a 262144 row: every draw is among the 64 largest (computed by a full sort here).
  const std::vector<float> row = random_row(kVocab, 21, 3.0f);
  std::vector<int32_t> order(kVocab);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
  {
    SamplingParams p;
    p.top_p = 1.0f;
    p.seed = 5;
    Sampler sampler(p);
    std::vector<char> in_top(kVocab, 0);
    for (int i = 0; i < 64; ++i) in_top[order[i]] = 1;
    for (int t = 0; t < 200; ++t) BOOST_REQUIRE(in_top[sampler.sample(row)]);
  }
  {
    // top-p alone (no top-k) with a nucleus far larger than the first lazy sort chunk: draws stay
    // inside the nucleus computed from the full sort, and do reach deep into it.
    double mx = row[order[0]], z = 0;
    for (float v : row) z += std::exp(double(v) - mx);
    size_t nucleus = 0;
    double cum = 0;
    for (; nucleus < kVocab;) {
      cum += std::exp(double(row[order[nucleus]]) - mx) / z;
      ++nucleus;
      if (cum >= 0.95) break;
    }
    BOOST_TEST_MESSAGE("nucleus size at top-p 0.95: " << nucleus);
    BOOST_REQUIRE_GT(nucleus, 4096u);
    std::vector<size_t> rank(kVocab);
    for (size_t r = 0; r < kVocab; ++r) rank[order[r]] = r;
    SamplingParams p;
    p.top_k = 0;
    p.top_p = 0.95f;
    p.seed = 9;
    Sampler sampler(p);
    size_t deepest = 0;
    for (int t = 0; t < 200; ++t) {
      const size_t r = rank[sampler.sample(row)];
      BOOST_REQUIRE_LT(r, nucleus);
      deepest = std::max(deepest, r);
    }
    BOOST_CHECK_GT(deepest, 1024u);
  }
}

BOOST_AUTO_TEST_CASE(same_seed_same_tokens) {
  const std::vector<float> row = random_row(kVocab, 8, 2.0f);
  SamplingParams p;
  p.seed = 12345;
  Sampler a(p), b(p);
  p.seed = 12346;
  Sampler c(p);
  int differ = 0;
  for (int t = 0; t < 200; ++t) {
    const int32_t ta = a.sample(row);
    BOOST_REQUIRE_EQUAL(ta, b.sample(row));
    differ += ta != c.sample(row);
  }
  // With top-k 64 over a 2-sigma-wide row, two seeds agreeing on all 200 draws is ~impossible.
  BOOST_CHECK_GT(differ, 50);
  BOOST_CHECK_EQUAL(a.params().seed, 12345u);
}

BOOST_AUTO_TEST_CASE(top_p_on_logits_outside_soft_cap_range) {
  // The top-p binning clamps distances in float: no overflow or UB on a row of +-1e30.
  const std::vector<float> wide = {1e30f, -1e30f, 0.0f, 1e30f};
  SamplingParams p;
  p.top_k = 0;
  p.top_p = 0.5f;
  Sampler sampler(p);
  for (int t = 0; t < 20; ++t) BOOST_CHECK_EQUAL(sampler.sample(wide), 0);  // tie: lowest id
}

BOOST_AUTO_TEST_CASE(log_softmax_matches_double_reference) {
  std::vector<float> row = random_row(kVocab, 4, 8.0f);
  row[258882] = kNegInf;
  row[258883] = kNegInf;
  std::vector<float> out(row.size());
  log_softmax(row, out);
  // Reference: log-sum-exp in long double without the max shift's float rounding.
  long double mx = -INFINITY, z = 0;
  for (float v : row) mx = std::max<long double>(mx, v);
  for (float v : row) {
    if (v != kNegInf) z += std::exp(static_cast<long double>(v) - mx);
  }
  const long double lse = mx + std::log(z);
  double max_err = 0, prob_sum = 0;
  for (size_t i = 0; i < row.size(); ++i) {
    if (row[i] == kNegInf) {
      BOOST_REQUIRE(out[i] == kNegInf);
      continue;
    }
    const long double want = row[i] - lse;
    // Tolerance: the result is rounded once to float; |value| <= ~70 here, so 1 ulp is <= 7.6e-6.
    // Allow 2 ulps of the value plus 1e-6 absolute.
    const double err = std::abs(double(out[i] - want));
    max_err = std::max(max_err, err);
    BOOST_REQUIRE_LE(err, 2 * std::abs(double(want)) * 0x1.0p-24 + 1e-6);
    prob_sum += std::exp(double(out[i]));
  }
  BOOST_TEST_MESSAGE("log_softmax max abs error " << max_err);
  BOOST_CHECK_CLOSE(prob_sum, 1.0, 1e-3);  // percent: float rounding of 262142 log-probs
  // Stability: huge logits that would overflow exp() directly.
  const std::vector<float> big = {1e30f, 1e30f, kNegInf};
  std::vector<float> out3(3);
  log_softmax(big, out3);
  BOOST_CHECK_CLOSE(out3[0], -std::log(2.0f), 1e-4);
  BOOST_CHECK(out3[2] == kNegInf);
  // In place works (out aliases logits).
  std::vector<float> inplace = {0.0f, 1.0f, 2.0f};
  log_softmax(inplace, inplace);
  BOOST_CHECK_CLOSE(inplace[2], float(-std::log(1 + std::exp(-1.0) + std::exp(-2.0))), 1e-4);
  BOOST_CHECK_THROW(log_softmax(big, std::span<float>(out3.data(), 2)), EngineError);
}
