#include "model/gemma4/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "model/error.h"

namespace rawflow {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

[[noreturn]] void throw_bad_logit(const char* who, size_t id, float v) {
  throw EngineError(std::string(who) + ": logit of token " + std::to_string(id) + " is " +
                    (std::isnan(v) ? "NaN" : "+inf") + " (expected finite or -inf)");
}

void check_row(const char* who, std::span<const float> logits) {
  if (logits.empty()) throw EngineError(std::string(who) + ": empty logits row");
  if (logits.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    throw EngineError(std::string(who) + ": logits row of " + std::to_string(logits.size()) +
                      " entries exceeds the int32 token id range");
  }
}

// Largest logit, validating the row; -inf when every entry is -inf.
float max_logit(const char* who, std::span<const float> logits) {
  float m = kNegInf;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float v = logits[i];
    if (std::isnan(v) || v == std::numeric_limits<float>::infinity()) throw_bad_logit(who, i, v);
    m = std::max(m, v);
  }
  return m;
}

using Candidate = Sampler::Candidate;

// Descending logit, then ascending id: a strict total order, so partial sorts select the same set
// on every run even with tied logits.
// A lambda rather than a function so the sorts inline it.
constexpr auto better = [](const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
};

float max_of(const std::vector<Candidate>& cand) {
  float m = kNegInf;
  for (const Candidate& c : cand) m = std::max(m, c.logit);
  return m;
}

// Keeps the k best (k < size), sorted: partial selection, never a full sort of the vocabulary.
void apply_top_k(std::vector<Candidate>& cand, size_t k) {
  std::partial_sort(cand.begin(), cand.begin() + k, cand.end(), better);
  cand.resize(k);
}

// Moves a set that contains the top-p nucleus (up to rounding, see apply_top_p) to the front,
// sorted, and returns its size; every candidate behind it has a smaller logit than all of it.
// Logits are binned by distance from the max (1/64 nat wide); the bins are walked until their mass
// reaches p, so only the nucleus plus one bin gets sorted instead of the whole vocabulary.
size_t sort_nucleus_superset(std::vector<Candidate>& cand, float m, double p) {
  constexpr float kBinsPerNat = 64.0f;
  constexpr size_t kBins = 64 * 64;  // 64 nats: more than the soft-capped logit range of 60
  const auto bin_of = [&](float logit) {
    // Clamped in float first: casting an out-of-range float to an integer is undefined.
    return static_cast<size_t>(std::min((m - logit) * kBinsPerNat, static_cast<float>(kBins - 1)));
  };
  std::vector<double> mass(kBins, 0.0);
  double z = 0.0;
  for (const Candidate& c : cand) {
    const double w = std::exp(static_cast<double>(c.logit) - m);
    mass[bin_of(c.logit)] += w;
    z += w;
  }
  size_t last_bin = kBins - 1;
  double cum = 0.0;
  for (size_t b = 0; b < kBins; ++b) {
    cum += mass[b] / z;
    if (cum >= p) {
      last_bin = b;
      break;
    }
  }
  // bin_of is monotone in the logit, so this split respects `better` order.
  const auto split = std::partition(
      cand.begin(), cand.end(), [&](const Candidate& c) { return bin_of(c.logit) <= last_bin; });
  std::sort(cand.begin(), split, better);
  return static_cast<size_t>(split - cand.begin());
}

// Keeps the smallest best-first prefix whose probability mass reaches p, probabilities taken over
// the current candidates (after top-k), as llama.cpp does; the token that crosses p is kept.
// `sorted` is the length of the prefix already in `better` order with everything behind it worse.
void apply_top_p(std::vector<Candidate>& cand, size_t sorted, double p) {
  const float m = max_of(cand);
  if (sorted < cand.size()) sorted = sort_nucleus_superset(cand, m, p);
  double z = 0.0;
  for (const Candidate& c : cand) z += std::exp(static_cast<double>(c.logit) - m);
  double cum = 0.0;
  for (size_t i = 0; i < cand.size(); ++i) {
    if (i == sorted) {
      // Rounding left the superset's mass a hair short of p: sort the rest too.
      std::sort(cand.begin() + sorted, cand.end(), better);
      sorted = cand.size();
    }
    cum += std::exp(static_cast<double>(cand[i].logit) - m) / z;
    if (cum >= p) {
      cand.resize(i + 1);
      return;
    }
  }
}

// Keeps p_i >= min_p * p_max, i.e. logit_i >= max_logit + ln(min_p). The maximum always survives.
void apply_min_p(std::vector<Candidate>& cand, double min_p) {
  const double threshold = static_cast<double>(max_of(cand)) + std::log(min_p);
  const auto end = std::stable_partition(cand.begin(), cand.end(), [&](const Candidate& c) {
    return static_cast<double>(c.logit) >= threshold;
  });
  cand.erase(end, cand.end());
}

// One draw from softmax(logit / temperature) over the candidates, `u` uniform in [0, 1).
int32_t draw(const std::vector<Candidate>& cand, double temperature, double u,
             std::vector<double>& weights) {
  const double inv_t = 1.0 / temperature;
  const float m = max_of(cand);
  weights.resize(cand.size());
  double total = 0.0;
  for (size_t i = 0; i < cand.size(); ++i) {
    weights[i] = std::exp((static_cast<double>(cand[i].logit) - m) * inv_t);
    total += weights[i];
  }
  const double target = u * total;
  double cum = 0.0;
  int32_t last_positive = cand.front().id;
  for (size_t i = 0; i < cand.size(); ++i) {
    if (weights[i] <= 0.0) continue;  // underflowed: probability 0, never drawn
    cum += weights[i];
    last_positive = cand[i].id;
    if (target < cum) return cand[i].id;
  }
  // Only reachable when rounding left cum a hair below target.
  return last_positive;
}

}  // namespace

int32_t greedy_token(std::span<const float> logits) {
  check_row("greedy_token", logits);
  int32_t best = -1;
  float best_v = kNegInf;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float v = logits[i];
    if (std::isnan(v) || v == std::numeric_limits<float>::infinity()) {
      throw_bad_logit("greedy_token", i, v);
    }
    // Strict '>' keeps the lowest id among equal maxima.
    if (v > best_v) {
      best_v = v;
      best = static_cast<int32_t>(i);
    }
  }
  if (best < 0) throw EngineError("greedy_token: every logit is -inf, nothing can be sampled");
  return best;
}

void log_softmax(std::span<const float> logits, std::span<float> out) {
  check_row("log_softmax", logits);
  if (out.size() != logits.size()) {
    throw EngineError("log_softmax: output has " + std::to_string(out.size()) +
                      " entries, logits have " + std::to_string(logits.size()));
  }
  const float m = max_logit("log_softmax", logits);
  if (m == kNegInf) throw EngineError("log_softmax: every logit is -inf");
  double sum = 0.0;
  for (float v : logits) {
    if (v != kNegInf) sum += std::exp(static_cast<double>(v) - m);
  }
  // Subtract the max before log(sum): folding them into one log-normaliser first would lose
  // log(sum) against a huge max (1e30 + log 2 == 1e30 in double).
  const double log_sum = std::log(sum);
  for (size_t i = 0; i < logits.size(); ++i) {
    const float v = logits[i];
    out[i] = v == kNegInf ? kNegInf : static_cast<float>((static_cast<double>(v) - m) - log_sum);
  }
}

Sampler::Sampler(SamplingParams p) : params_(p), rng_(p.seed) {}

double Sampler::next_uniform() {
  // Top 53 bits of one 64-bit draw, scaled by 2^-53: exactly representable, in [0, 1).
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (params_.greedy || !(params_.temperature > 0.0f)) return greedy_token(logits);
  check_row("Sampler::sample", logits);

  std::vector<Candidate>& cand = candidates_;
  cand.clear();
  for (size_t i = 0; i < logits.size(); ++i) {
    const float v = logits[i];
    if (v == kNegInf) continue;  // suppressed: never a candidate
    if (!std::isfinite(v)) throw_bad_logit("Sampler::sample", i, v);
    cand.push_back({v, static_cast<int32_t>(i)});
  }
  if (cand.empty()) {
    throw EngineError("Sampler::sample: every logit is -inf, nothing can be sampled");
  }

  size_t sorted = 0;  // cand[0, sorted) is in `better` order, everything after it is worse
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < cand.size()) {
    apply_top_k(cand, static_cast<size_t>(params_.top_k));
    sorted = cand.size();
  }
  if (params_.top_p < 1.0f) apply_top_p(cand, sorted, params_.top_p);
  if (params_.min_p > 0.0f) apply_min_p(cand, params_.min_p);
  return draw(cand, params_.temperature, next_uniform(), weights_);
}

}  // namespace rawflow
