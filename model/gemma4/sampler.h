#pragma once
// Token sampling over one row of logits (spec §1.5, §2.10, §9 step 6).
//
// Chain order, the same as llama.cpp's default sampler chain restricted to these samplers
// (common/common.h: ... top_k, typical_p, top_p, min_p, xtc, temperature, then dist):
//
//   top-k -> top-p -> min-p -> temperature -> draw
//
// Why this order: the filters therefore see the model's own (temperature 1) distribution, so
// top-p 0.95 always means "95 % of the model's mass" whatever the temperature, and the filtered set
// does not change when only the temperature changes. llama.cpp is the reference rawflow is checked
// against, and Google's defaults (T=1.0, top-k 64, top-p 0.95) were published as its GGUF keys
// `general.sampling.*`. HF transformers applies temperature *before* top-k/top-p; at the default
// T=1.0 the two orders give the same distribution.
//
// Determinism: the random source is std::mt19937_64 seeded with `seed` (its output sequence is
// fixed by the C++ standard), and a uniform double in [0,1) is built from its top 53 bits by hand
// rather than through std::uniform_real_distribution (whose algorithm is implementation-defined).
// The same seed and the same logits therefore give the same tokens on any conforming platform.
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace rawflow {

struct SamplingParams {
  float temperature = 1.0f;  // <= 0 means greedy
  int32_t top_k = 64;        // <= 0 disables
  float top_p = 0.95f;       // >= 1 disables
  float min_p = 0.0f;        // <= 0 disables
  uint64_t seed = 0;
  bool greedy = false;  // argmax, lowest id on ties
};

class Sampler {
 public:
  explicit Sampler(SamplingParams p);

  // logits: one value per vocabulary entry, already soft-capped and with suppressed ids set to
  // -inf. Returns a token id whose logit is finite. Throws EngineError when no logit is finite or
  // when a logit is NaN or +inf (an engine bug upstream, not something to sample around).
  int32_t sample(std::span<const float> logits);

  const SamplingParams& params() const { return params_; }

  // One surviving token during filtering (public only so the .cpp's filter helpers can name it).
  struct Candidate {
    float logit;
    int32_t id;
  };

 private:
  double next_uniform();

  SamplingParams params_;
  std::mt19937_64 rng_;
  // Scratch reused across calls: a full-vocabulary row would otherwise allocate megabytes per
  // token.
  std::vector<Candidate> candidates_;
  std::vector<double> weights_;
};

// Index of the largest logit, lowest id on ties; -inf entries never win. Throws EngineError when no
// logit is finite or one is NaN/+inf.
int32_t greedy_token(std::span<const float> logits);

// log-softmax of a logits row: natural log, float32 out, -inf for -inf inputs. Numerically stable
// (max subtracted, sum of exponentials in double). `out` must have the size of `logits` (may alias
// it). Throws EngineError on a size mismatch, a NaN/+inf input, or an all -inf row.
void log_softmax(std::span<const float> logits, std::span<float> out);

}  // namespace rawflow
