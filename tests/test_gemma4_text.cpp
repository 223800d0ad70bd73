// The decoder's batching and cache machinery against itself: however the same tokens are split
// into forward calls — one prefill, chunks, token-by-token decode, several sequences in one call —
// the logits must be the same. The kernels compute each row independently in a fixed order, so
// the expected difference is zero; the bound 1e-5 on |Δ logit| (logits are O(10)) only leaves
// room for a different but equally valid instruction order, not for a cache bug. The mask itself
// is checked against llama.cpp by tests/parity/test_logprob_parity.sh.
#define BOOST_TEST_MODULE test_gemma4_text
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <random>

#include "model/error.h"
#include "model/model_loader.h"
#include "tests/test_models.h"

using namespace rawflow;

namespace {

const LoadedModel& tiny_model() { return test::tiny_model(5, "test_gemma4_text"); }

std::vector<int32_t> prompt(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int32_t> d(300, 511);
  std::vector<int32_t> t{2};
  while (t.size() < n) t.push_back(d(g));
  return t;
}

// Logits of every position, computed by feeding `tokens` in pieces of `step`.
std::vector<float> logits_in_steps(const Gemma4Text& m, const std::vector<int32_t>& tokens,
                                   size_t step) {
  KvCache cache(m.config());
  std::vector<float> all;
  for (size_t at = 0; at < tokens.size(); at += step) {
    SequenceChunk ch;
    ch.cache = &cache;
    ch.tokens.assign(tokens.begin() + at, tokens.begin() + std::min(tokens.size(), at + step));
    ch.logits = LogitsWanted::All;
    auto r = m.forward(std::span<SequenceChunk>(&ch, 1));
    all.insert(all.end(), r.logits[0].begin(), r.logits[0].end());
  }
  return all;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  BOOST_REQUIRE_EQUAL(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isinf(a[i]) && std::isinf(b[i]) && a[i] == b[i]) continue;
    worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
  }
  return worst;
}

}  // namespace

BOOST_AUTO_TEST_CASE(prefill_chunks_and_decode_agree_across_the_window) {
  const Gemma4Text& m = *tiny_model().text;
  BOOST_REQUIRE_EQUAL(m.config().sliding_window, 16);
  // 150 tokens: crosses the 16-token window nine times and the 128-row MLP block once.
  const auto tokens = prompt(150, 1);
  const auto whole = logits_in_steps(m, tokens, tokens.size());
  for (size_t step : {1, 7, 16, 33}) {
    const double d = max_abs_diff(whole, logits_in_steps(m, tokens, step));
    BOOST_TEST_MESSAGE("step " << step << ": max |Δ logit| " << d);
    BOOST_TEST(d <= 1e-5, "step " << step << ": " << d);
  }
}

BOOST_AUTO_TEST_CASE(sequences_batched_in_one_forward_equal_separate_runs) {
  const Gemma4Text& m = *tiny_model().text;
  const auto a = prompt(40, 2), b = prompt(23, 3);
  const auto ref_a = logits_in_steps(m, a, a.size()), ref_b = logits_in_steps(m, b, b.size());
  const size_t nv = static_cast<size_t>(m.config().vocab_size);
  // Prefill both in one call, then decode the last 5 tokens of each together, one per step.
  KvCache ca(m.config()), cb(m.config());
  std::vector<SequenceChunk> chunks(2);
  chunks[0] = {&ca, {a.begin(), a.end() - 5}, {}, {}, LogitsWanted::All};
  chunks[1] = {&cb, {b.begin(), b.end() - 5}, {}, {}, LogitsWanted::All};
  auto r = m.forward(chunks);
  std::vector<float> got_a = r.logits[0], got_b = r.logits[1];
  for (size_t i = 5; i > 0; --i) {
    chunks[0] = {&ca, {a[a.size() - i]}, {}, {}, LogitsWanted::Last};
    chunks[1] = {&cb, {b[b.size() - i]}, {}, {}, LogitsWanted::Last};
    r = m.forward(chunks);
    got_a.insert(got_a.end(), r.logits[0].begin(), r.logits[0].end());
    got_b.insert(got_b.end(), r.logits[1].begin(), r.logits[1].end());
  }
  BOOST_REQUIRE_EQUAL(got_a.size(), a.size() * nv);
  BOOST_TEST(max_abs_diff(ref_a, got_a) <= 1e-5);
  BOOST_TEST(max_abs_diff(ref_b, got_b) <= 1e-5);
}

BOOST_AUTO_TEST_CASE(suppressed_ids_are_minus_infinity) {
  const LoadedModel& lm = tiny_model();
  const auto lg = logits_in_steps(*lm.text, prompt(5, 4), 5);
  const size_t nv = static_cast<size_t>(lm.text->config().vocab_size);
  const int32_t eoi = lm.tokenizer->vocab().find("<image|>"),
                eoa = lm.tokenizer->vocab().find("<audio|>");
  BOOST_REQUIRE(eoi >= 0 && eoa >= 0);
  for (size_t row = 0; row < 5; ++row) {
    BOOST_TEST(std::isinf(lg[row * nv + eoi]));
    BOOST_TEST(std::isinf(lg[row * nv + eoa]));
  }
}

BOOST_AUTO_TEST_CASE(token_outside_the_vocabulary_is_an_error) {
  const Gemma4Text& m = *tiny_model().text;
  KvCache cache(m.config());
  SequenceChunk ch{&cache, {2, 512}, {}, {}, LogitsWanted::Last};
  BOOST_CHECK_EXCEPTION(
      m.forward(std::span<SequenceChunk>(&ch, 1)), EngineError, [](const EngineError& e) {
        return std::string(e.what()).find("token id 512 is outside the vocabulary (size 512)") !=
               std::string::npos;
      });
}
