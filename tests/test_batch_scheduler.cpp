// The decoder's continuous-batching scheduler on the `tiny` model with greedy sampling.
//
// Equivalence bound: Gemma4Text::forward computes every row of every sequence independently
// (test_gemma4_text bounds |Δ logit| by 1e-5 between batched and separate runs, logits O(10)), so a
// request run among others must produce exactly the tokens it produces alone: the expected
// difference is 0 tokens and the tests compare token sequences for equality. Only an argmax tie
// within 1e-5 could flip a token; the tiny model's median top-1 margin is ≈ 0.6–0.9 (synth.cpp).
#define BOOST_TEST_MODULE test_batch_scheduler
#include <boost/test/unit_test.hpp>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "model/error.h"
#include "model/gemma4/chat.h"
#include "model/gemma4/kv_cache.h"
#include "model/gemma4/multimodal_prompt.h"
#include "model/model_loader.h"
#include "pipeline/batch_scheduler.h"
#include "tests/test_models.h"

using namespace rawflow;
using namespace rawflow::pipeline;
using namespace std::chrono_literals;

namespace rawflow::pipeline {
std::ostream& operator<<(std::ostream& os, GenerationStatus s) { return os << to_string(s); }
}  // namespace rawflow::pipeline

namespace {

const LoadedModel& tiny_model() { return test::tiny_model(7, "test_batch_scheduler"); }
const Gemma4Text& model() { return *tiny_model().text; }
const Tokenizer& tok() { return *tiny_model().tokenizer; }

// A stop list no sampled id can match, for requests that must run to max_new_tokens.
const std::vector<int32_t> kNoStop = {-1};

PromptInput text_prompt(const std::string& text) {
  PromptInput p;
  p.tokens = tok().encode(render_user_prompt(text));
  p.soft_index.assign(p.size(), -1);
  p.block_ids.assign(p.size(), -1);
  return p;
}

const std::vector<std::string> kTexts = {
    "What is the weather like today?",
    "Describe the scene.",
    "Transcribe the audio and tell me what the speaker said about the river in the north.",
    "hi",
    "Count the people in the picture and say what they are doing, one line each.",
    "Summarize.",
};

// A request run alone with the plain single-sequence loop of `rawflow generate`: prefill in
// pieces that never cut a block, then sample / stop / feed back one token at a time.
std::vector<int32_t> solo_tokens(const PromptInput& p, int max_new,
                                 const std::vector<int32_t>& stops, size_t prefill = 1 << 20) {
  const Gemma4Text& m = model();
  KvCache cache(m.config());
  std::vector<float> last;
  for (size_t at = 0; at < p.size();) {
    const size_t end = p.prefill_cut(at, prefill);
    SequenceChunk ch = p.chunk(&cache, at, end, LogitsWanted::Last);
    last = m.forward(std::span<SequenceChunk>(&ch, 1)).logits[0];
    at = end;
  }
  Sampler sampler(SamplingParams{.greedy = true});
  std::vector<int32_t> out;
  while (static_cast<int>(out.size()) < max_new) {
    const int32_t next = sampler.sample(last);
    if (std::find(stops.begin(), stops.end(), next) != stops.end()) break;
    out.push_back(next);
    if (static_cast<int>(out.size()) == max_new) break;
    SequenceChunk ch{&cache, {next}, {}, {}, LogitsWanted::Last};
    last = m.forward(std::span<SequenceChunk>(&ch, 1)).logits[0];
  }
  return out;
}

// What the callbacks saw, per request id. Callbacks run on the stepping thread; the lock is for
// the thread-safety test, where the main thread reads while another steps.
struct Collector {
  struct Seen {
    std::string partials;
    int partial_calls = 0;
    int done_calls = 0;
    GenerationResult result;
  };
  mutable std::mutex mu;
  std::condition_variable cv;
  std::map<uint64_t, Seen> seen;

  GenerationRequest request(uint64_t id, PromptInput p, int max_new,
                            std::vector<int32_t> stops = {}) {
    GenerationRequest r;
    r.id = id;
    r.stream = "s" + std::to_string(id % 3);
    r.task = "describe";
    r.prompt = std::move(p);
    r.sampling = SamplingParams{.greedy = true};
    r.max_new_tokens = max_new;
    r.stop_ids = std::move(stops);
    r.on_partial = [this](const TokenDelta& d) {
      std::lock_guard lock(mu);
      BOOST_CHECK(!d.text.empty());
      seen[d.id].partials += d.text;
      ++seen[d.id].partial_calls;
    };
    r.on_done = [this, id](const GenerationResult& res) {
      std::lock_guard lock(mu);
      BOOST_CHECK_EQUAL(res.id, id);
      seen[id].result = res;
      ++seen[id].done_calls;
      cv.notify_all();
    };
    return r;
  }
  const GenerationResult& result(uint64_t id) const {
    std::lock_guard lock(mu);
    auto it = seen.find(id);
    BOOST_REQUIRE_MESSAGE(it != seen.end() && it->second.done_calls > 0,
                          "request " << id << " not done");
    return it->second.result;
  }
  size_t done() const {
    std::lock_guard lock(mu);
    size_t n = 0;
    for (const auto& [id, s] : seen) n += s.done_calls > 0;
    return n;
  }
  // on_done exactly once; the partials add up to the final text; the text is the streaming
  // detokenization of the tokens.
  void check_consistent() const {
    std::lock_guard lock(mu);
    for (const auto& [id, s] : seen) {
      BOOST_TEST(s.done_calls == 1, "request " << id << ": on_done called " << s.done_calls);
      BOOST_TEST(s.partials == s.result.text, "request " << id);
      StreamingDetokenizer d(tok());
      std::string text;
      for (int32_t t : s.result.tokens) text += d.push(t);
      text += d.flush();
      BOOST_TEST(text == s.result.text, "request " << id);
      BOOST_TEST(s.result.generated_tokens == static_cast<int64_t>(s.result.tokens.size()));
    }
  }
};

void drain(BatchScheduler& s, int max_steps = 10000) {
  int steps = 0;
  while (s.step()) BOOST_REQUIRE_LT(++steps, max_steps);
}

SchedulerOptions options(int max_batch, int prefill_chunk) {
  SchedulerOptions o;
  o.max_batch = max_batch;
  o.prefill_chunk = prefill_chunk;
  return o;
}

MediaEmbedding random_image(int64_t rows, uint32_t seed) {
  const int64_t H = model().config().hidden;
  MediaEmbedding m;
  m.kind = MediaEmbedding::Kind::Image;
  m.rows = rows;
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  m.values.resize(static_cast<size_t>(rows * H));
  for (float& v : m.values) v = d(g);
  return m;
}

}  // namespace

BOOST_AUTO_TEST_CASE(batched_requests_produce_the_tokens_they_produce_alone) {
  Collector c;
  // 4 slots for 6 requests of different lengths, prefilled 8 tokens at a time: requests finish
  // at different steps and the last two join while the first ones decode.
  BatchScheduler s(model(), tok(), options(4, 8));
  for (size_t i = 0; i < kTexts.size(); ++i)
    s.submit(c.request(i, text_prompt(kTexts[i]), 10 + 3 * static_cast<int>(i)));
  drain(s);
  BOOST_REQUIRE_EQUAL(c.done(), kTexts.size());
  const auto stops = stop_ids(tok().vocab());
  size_t total = 0;
  for (size_t i = 0; i < kTexts.size(); ++i) {
    const GenerationResult& r = c.result(i);
    const auto alone = solo_tokens(text_prompt(kTexts[i]), 10 + 3 * static_cast<int>(i), stops);
    BOOST_TEST(r.ok(), "request " << i << ": " << to_string(r.status) << " " << r.error);
    BOOST_TEST(r.tokens == alone, "request " << i << " differs from its solo run");
    BOOST_TEST(r.status == (static_cast<int>(alone.size()) == 10 + 3 * static_cast<int>(i)
                                ? GenerationStatus::MaxTokens
                                : GenerationStatus::Stop));
    BOOST_TEST(r.prompt_tokens == static_cast<int64_t>(text_prompt(kTexts[i]).size()));
    BOOST_TEST(r.prefill_ms > 0);
    BOOST_TEST(r.queue_ms >= 0);
    total += r.tokens.size();
  }
  BOOST_TEST_MESSAGE("generated " << total << " tokens");
  BOOST_TEST(total > 40u);  // the comparison covers real decoding, not only stops
  c.check_consistent();
  const SchedulerStats st = s.stats();
  BOOST_TEST(st.max_sequences_per_forward == 4u);
  BOOST_TEST(st.tokens_generated == total);
  uint64_t prompt_total = 0;
  for (const auto& t : kTexts) prompt_total += text_prompt(t).size();
  BOOST_TEST(st.tokens_prefilled == prompt_total);
  BOOST_TEST(st.active == 0u);
  BOOST_TEST(st.pending == 0u);
  BOOST_TEST(st.kv_reserved_bytes == 0u);
}

BOOST_AUTO_TEST_CASE(a_stop_id_ends_the_request_and_is_not_part_of_its_text) {
  const PromptInput p = text_prompt(kTexts[4]);
  const auto full = solo_tokens(p, 12, kNoStop);
  BOOST_REQUIRE_EQUAL(full.size(), 12u);
  const int32_t stop = full[6];
  const auto expected =
      std::vector<int32_t>(full.begin(), std::find(full.begin(), full.end(), stop));
  Collector c;
  BatchScheduler s(model(), tok(), options(4, 512));
  s.submit(c.request(1, p, 12, {stop}));
  s.submit(c.request(2, text_prompt(kTexts[0]), 12, kNoStop));
  s.submit(c.request(3, p, 0));  // prompt only: evaluated, nothing generated
  drain(s);
  BOOST_TEST(c.result(1).status == GenerationStatus::Stop);
  BOOST_TEST(c.result(1).tokens == expected);
  BOOST_TEST(c.result(2).status == GenerationStatus::MaxTokens);
  BOOST_TEST(c.result(3).status == GenerationStatus::MaxTokens);
  BOOST_TEST(c.result(3).text.empty());
  BOOST_TEST(c.result(3).first_forward == 1u);
  BOOST_TEST(s.stats().tokens_prefilled == 2 * p.size() + text_prompt(kTexts[0]).size());
  c.check_consistent();
}

BOOST_AUTO_TEST_CASE(several_sequences_share_a_forward_and_late_requests_join) {
  Collector c;
  std::vector<ForwardInfo> forwards;
  SchedulerOptions o = options(4, 512);
  o.on_forward = [&](const ForwardInfo& f) { forwards.push_back(f); };
  BatchScheduler s(model(), tok(), o);
  s.submit(c.request(1, text_prompt(kTexts[0]), 20, kNoStop));
  s.submit(c.request(2, text_prompt(kTexts[1]), 20, kNoStop));
  for (int i = 0; i < 6; ++i) BOOST_REQUIRE(s.step());  // both prefilled and decoding
  BOOST_TEST(s.active() == 2u);
  s.submit(c.request(3, text_prompt(kTexts[2]), 10, kNoStop));
  drain(s);

  const auto &a = c.result(1), &b = c.result(2), &late = c.result(3);
  BOOST_TEST_MESSAGE("a: forwards " << a.first_forward << ".." << a.last_forward << ", late: "
                                    << late.first_forward << ".." << late.last_forward);
  BOOST_TEST(a.first_forward == 1u);
  BOOST_TEST(b.first_forward == 1u);
  BOOST_TEST(late.first_forward == 7u);            // the step right after it was submitted
  BOOST_TEST(late.last_forward < a.last_forward);  // it finished while the others still ran
  BOOST_TEST(late.tokens == solo_tokens(text_prompt(kTexts[2]), 10, kNoStop));
  BOOST_TEST(a.tokens == solo_tokens(text_prompt(kTexts[0]), 20, kNoStop));

  const SchedulerStats st = s.stats();
  BOOST_TEST(st.max_sequences_per_forward == 3u);
  BOOST_TEST(st.forwards_by_sequences[2] > 0u);
  BOOST_TEST(st.forwards_by_sequences[3] == 10u);  // the late one's 10 forwards
  BOOST_TEST(st.mixed_forwards == 1u);             // its prefill rode along the others' decode
  BOOST_TEST(st.forwards == forwards.size());
  BOOST_TEST(st.sequences_in_forwards == 20u + 20u + 10u);  // one entry per forward per sequence
  // Forward 7: two decode tokens and the late prompt in one pass.
  BOOST_REQUIRE_GE(forwards.size(), 7u);
  BOOST_TEST(forwards[6].sequences == 3);
  BOOST_TEST(forwards[6].prefill_sequences == 1);
  BOOST_TEST(forwards[6].rows == static_cast<int64_t>(2 + text_prompt(kTexts[2]).size()));
  c.check_consistent();
}

BOOST_AUTO_TEST_CASE(an_image_is_prefilled_in_one_forward_whatever_the_chunk) {
  const int64_t H = model().config().hidden;
  const auto img = random_image(12, 3);
  const PromptInput p = build_multimodal_prompt(
      tok(), {{"user", {{ChatPart::Kind::Image, {}}, {ChatPart::Kind::Text, "What is shown?"}}}},
      std::span(&img, 1), H);
  size_t block_begin = p.size(), block_end = 0;
  for (size_t i = 0; i < p.size(); ++i)
    if (p.block_ids[i] >= 0) block_begin = std::min(block_begin, i), block_end = i + 1;
  BOOST_REQUIRE_EQUAL(block_end - block_begin, 12u);

  Collector c;
  std::vector<ForwardInfo> forwards;
  SchedulerOptions o = options(2, 4);  // 4 < 12 image tokens
  o.on_forward = [&](const ForwardInfo& f) { forwards.push_back(f); };
  BatchScheduler s(model(), tok(), o);
  s.submit(c.request(1, p, 16, kNoStop));
  drain(s);
  const auto& r = c.result(1);
  BOOST_TEST(r.ok());
  // Chunks of 4 up to the block, then the whole block in one forward (it starts a chunk).
  bool whole_block = false;
  for (const auto& f : forwards) whole_block |= f.rows == 12;
  BOOST_TEST(whole_block, "no forward carried the 12 image tokens together");
  // Unchunked (the whole prompt in one forward) and chunked at 4 give the same tokens.
  const auto whole = solo_tokens(p, 16, kNoStop);
  BOOST_TEST(r.tokens == whole);
  BOOST_TEST(solo_tokens(p, 16, kNoStop, 4) == whole);

  // The same image prompt beside a text request: still one block per forward, same tokens.
  Collector c2;
  BatchScheduler s2(model(), tok(), options(2, 4));
  s2.submit(c2.request(1, text_prompt(kTexts[2]), 16, kNoStop));
  s2.submit(c2.request(2, p, 16, kNoStop));
  drain(s2);
  BOOST_TEST(c2.result(2).tokens == whole);
  BOOST_TEST(c2.result(1).tokens == solo_tokens(text_prompt(kTexts[2]), 16, kNoStop));
  c.check_consistent();
  c2.check_consistent();
}

BOOST_AUTO_TEST_CASE(deadlines_end_requests_with_their_partial_text_and_block_nobody) {
  Collector c;
  BatchScheduler s(model(), tok(), options(4, 512));
  auto past = c.request(1, text_prompt(kTexts[0]), 50, kNoStop);
  auto soon = c.request(2, text_prompt(kTexts[1]), 400, kNoStop);
  auto normal = c.request(3, text_prompt(kTexts[3]), 16, kNoStop);
  // The deadline is checked when a step starts and after its forward: `soon` is admitted by the
  // first step (which starts well within 300 ms) and keeps at least that forward's token.
  const auto now = SteadyClock::now();
  past.deadline = now - 1s;
  soon.deadline = now + 300ms;
  s.submit(std::move(past));
  s.submit(std::move(soon));
  s.submit(std::move(normal));
  for (int i = 0; i < 5; ++i) s.step();
  std::this_thread::sleep_until(now + 300ms);
  drain(s);

  const auto& p = c.result(1);
  BOOST_TEST(p.status == GenerationStatus::Deadline);
  BOOST_TEST(p.text.empty());
  BOOST_TEST(p.first_forward == 0u);  // never reached the engine

  const auto& d = c.result(2);
  BOOST_TEST(d.status == GenerationStatus::Deadline);
  BOOST_TEST_MESSAGE("deadline request kept " << d.tokens.size() << " tokens: `" << d.text << "`");
  BOOST_TEST(!d.tokens.empty());
  BOOST_TEST(d.tokens.size() < 400u);
  const auto alone =
      solo_tokens(text_prompt(kTexts[1]), static_cast<int>(d.tokens.size()), kNoStop);
  BOOST_TEST(d.tokens == alone);  // what it kept is the prefix of its full answer

  const auto& ok = c.result(3);
  BOOST_TEST(ok.status == GenerationStatus::MaxTokens);
  BOOST_TEST(ok.tokens == solo_tokens(text_prompt(kTexts[3]), 16, kNoStop));

  const SchedulerStats st = s.stats();
  BOOST_TEST(st.deadline_in_queue == 1u);
  BOOST_TEST(st.deadline_running == 1u);
  BOOST_TEST(st.finished[size_t(GenerationStatus::Deadline)] == 2u);
  c.check_consistent();
}

BOOST_AUTO_TEST_CASE(live_work_drops_the_oldest_under_pressure_file_work_never) {
  Collector c;
  SchedulerOptions o = options(1, 512);
  o.live_queue_limits = {{"cam", 2}};
  BatchScheduler s(model(), tok(), o);
  s.submit(c.request(100, text_prompt(kTexts[0]), 8, kNoStop));  // file work keeps the slot busy
  BOOST_REQUIRE(s.step());
  BOOST_REQUIRE_EQUAL(s.active(), 1u);
  for (uint64_t id = 1; id <= 5; ++id) {
    auto r = c.request(id, text_prompt(kTexts[id]), 4, kNoStop);
    r.stream = "cam";
    r.live = true;
    s.submit(std::move(r));
  }
  BOOST_TEST(s.pending() == 2u);
  // Five file requests on top: never dropped, and they do not push live work out either.
  for (uint64_t id = 11; id <= 15; ++id)
    s.submit(c.request(id, text_prompt(kTexts[id % 6]), 4, kNoStop));
  BOOST_TEST(s.pending() == 7u);
  BOOST_TEST(s.pending_file() == 5u);
  SchedulerStats st = s.stats();
  BOOST_TEST(st.dropped_pressure == 3u);
  BOOST_TEST(st.pending_live == 2u);
  drain(s);

  for (uint64_t id = 1; id <= 3; ++id) {
    const auto& r = c.result(id);
    BOOST_TEST(r.status == GenerationStatus::Dropped, "live request " << id);
    BOOST_TEST(r.tokens.empty());
    BOOST_TEST(r.first_forward == 0u);
  }
  for (uint64_t id : {4, 5, 11, 12, 13, 14, 15, 100}) {
    const auto& r = c.result(id);
    BOOST_TEST(r.status == GenerationStatus::MaxTokens, "request " << id);
  }
  st = s.stats();
  BOOST_TEST(st.finished[size_t(GenerationStatus::Dropped)] == 3u);
  BOOST_TEST(st.finished[size_t(GenerationStatus::MaxTokens)] == 8u);
  BOOST_TEST(st.submitted == 11u);
  BOOST_TEST(st.max_sequences_per_forward == 1u);
  c.check_consistent();
}

// The live limit is per stream: a flood on one camera drops that camera's own oldest requests and
// never the pending work of another camera, nor file work queued under the same stream name.
BOOST_AUTO_TEST_CASE(a_flood_on_one_stream_drops_only_that_streams_oldest_requests) {
  Collector c;
  SchedulerOptions o = options(1, 512);
  o.live_queue_limits = {{"a", 2}, {"b", 2}};
  o.default_live_queue_limit = 1;  // stream "c" is not listed
  BatchScheduler s(model(), tok(), o);
  const auto submit = [&](uint64_t id, const std::string& stream, bool live) {
    auto r = c.request(id, text_prompt(kTexts[id % 6]), 3, kNoStop);
    r.stream = stream;
    r.live = live;
    s.submit(std::move(r));
  };
  submit(100, "file", false);  // keeps the only slot busy: everything below stays queued
  BOOST_REQUIRE(s.step());
  BOOST_REQUIRE_EQUAL(s.active(), 1u);

  submit(1, "b", true);    // B's one pending request, the oldest in the queue
  submit(50, "a", false);  // file work under A's name: neither dropped nor counted as A's
  for (uint64_t id = 11; id <= 16; ++id) submit(id, "a", true);  // the flood: 6 on a limit of 2
  submit(21, "c", true);
  submit(22, "c", true);  // over the default limit of 1: C's older one goes
  SchedulerStats st = s.stats();
  BOOST_TEST(st.dropped_pressure == 4u + 1u);
  BOOST_TEST(st.pending == 1u + 1u + 2u + 1u);
  BOOST_TEST(st.pending_live == 4u);
  BOOST_TEST(st.pending_file == 1u);
  drain(s);

  std::map<std::string, int> dropped;
  for (uint64_t id : {1, 11, 12, 13, 14, 15, 16, 21, 22, 50, 100}) {
    const GenerationResult& r = c.result(id);
    if (r.status == GenerationStatus::Dropped) {
      ++dropped[r.stream];
      BOOST_TEST(r.first_forward == 0u, "request " << id);
    } else {
      BOOST_TEST(r.status == GenerationStatus::MaxTokens, "request " << id);
    }
  }
  BOOST_TEST(dropped.size() == 2u);  // nothing of "b", nothing of "file"
  BOOST_TEST(dropped["a"] == 4);
  BOOST_TEST(dropped["c"] == 1);
  for (uint64_t id : {11, 12, 13, 14, 21})
    BOOST_TEST(c.result(id).status == GenerationStatus::Dropped, "request " << id);
  for (uint64_t id : {1, 15, 16, 22, 50})
    BOOST_TEST(c.result(id).status == GenerationStatus::MaxTokens, "request " << id);
  st = s.stats();
  BOOST_TEST(st.finished[size_t(GenerationStatus::Dropped)] == 5u);
  BOOST_TEST(st.dropped_pressure == 5u);
  BOOST_TEST(st.finished[size_t(GenerationStatus::MaxTokens)] == 6u);
  c.check_consistent();

  SchedulerOptions zero = options(1, 512);
  zero.live_queue_limits = {{"a", 0}};
  BOOST_CHECK_THROW(BatchScheduler(model(), tok(), zero), EngineError);
  zero.live_queue_limits.clear();
  zero.default_live_queue_limit = 0;
  BOOST_CHECK_THROW(BatchScheduler(model(), tok(), zero), EngineError);
}

BOOST_AUTO_TEST_CASE(kv_estimate_is_the_cache_footprint_and_bounds_admission) {
  const Gemma4Config& cfg = model().config();
  for (int64_t n : {1, 10, 16, 17, 100}) {
    KvCache cache(cfg);
    cache.reserve_and_advance(n);  // one resize from empty: capacity == what n positions need
    BOOST_TEST(KvCache::bytes_for(cfg, n) == cache.bytes(), "positions " << n);
  }
  // A budget for two of these requests: three submitted, at most two run at once.
  const PromptInput p = text_prompt(kTexts[1]);
  const size_t one = KvCache::bytes_for(cfg, static_cast<int64_t>(p.size()) + 20);
  Collector c;
  SchedulerOptions o = options(4, 512);
  o.kv_budget_bytes = 2 * one + one / 2;
  BatchScheduler s(model(), tok(), o);
  for (uint64_t id = 1; id <= 3; ++id) s.submit(c.request(id, p, 20, kNoStop));
  // Needs more than the whole budget: rejected at once rather than queued forever.
  s.submit(c.request(4, text_prompt(kTexts[2]), 2000, kNoStop));
  BOOST_REQUIRE(s.step());
  BOOST_TEST(s.active() == 2u);
  BOOST_TEST(s.stats().kv_reserved_bytes == 2 * one);
  drain(s);
  BOOST_TEST(s.stats().max_sequences_per_forward == 2u);
  BOOST_TEST(c.result(3).first_forward == c.result(1).last_forward + 1);  // took the freed slot
  BOOST_TEST(c.result(3).tokens == c.result(1).tokens);
  const auto& big = c.result(4);
  BOOST_TEST(big.status == GenerationStatus::Error);
  BOOST_TEST(big.error.find("more than the whole budget") != std::string::npos, big.error);
  // What the caches really held: each is reserved at admission (KvCache::reserve) to exactly
  // its estimate, so the peak is the two running requests' estimates, no growth slack.
  BOOST_TEST_MESSAGE("kv peak " << s.stats().kv_used_peak_bytes << " B, estimate " << one
                                << " B per request");
  BOOST_TEST(s.stats().kv_used_peak_bytes == 2 * one);
  c.check_consistent();
}

BOOST_AUTO_TEST_CASE(bad_requests_finish_with_an_error_naming_the_request) {
  Collector c;
  BatchScheduler s(model(), tok(), options(2, 512));
  PromptInput outside = text_prompt("hi");
  outside.tokens[3] = 512;
  s.submit(c.request(1, outside, 4));
  s.submit(c.request(2, PromptInput{}, 4));
  PromptInput too_long = text_prompt("hi");
  s.submit(c.request(3, too_long, 5000));
  s.submit(c.request(4, text_prompt("hi"), 3, kNoStop));
  drain(s);
  BOOST_TEST(c.result(1).error.find("request 1 (s1/describe): token id 512 at prompt position 3 is "
                                    "outside the vocabulary (size 512)") != std::string::npos,
             c.result(1).error);
  BOOST_TEST(c.result(2).error.find("request 2 (s2/describe): empty prompt") != std::string::npos);
  BOOST_TEST(c.result(3).error.find("exceeds the model's context of 4096") != std::string::npos,
             c.result(3).error);
  for (uint64_t id : {1, 2, 3}) BOOST_TEST(c.result(id).status == GenerationStatus::Error);
  BOOST_TEST(c.result(4).status == GenerationStatus::MaxTokens);  // the good one is unaffected
  BOOST_CHECK_THROW(BatchScheduler(model(), tok(), options(0, 512)), EngineError);
  c.check_consistent();
}

BOOST_AUTO_TEST_CASE(shutdown_cancels_queued_and_running_requests_once) {
  Collector c;
  {
    BatchScheduler s(model(), tok(), options(1, 512));
    s.submit(c.request(1, text_prompt(kTexts[0]), 50, kNoStop));
    s.submit(c.request(2, text_prompt(kTexts[1]), 50, kNoStop));
    s.step();
    s.step();
  }  // the destructor cancels both
  BOOST_TEST(c.result(1).status == GenerationStatus::Cancelled);
  BOOST_TEST(c.result(1).tokens.size() == 2u);  // partial text kept
  BOOST_TEST(c.result(2).status == GenerationStatus::Cancelled);
  BOOST_TEST(c.result(2).first_forward == 0u);
  c.check_consistent();
}

BOOST_AUTO_TEST_CASE(submit_from_other_threads_while_a_thread_steps) {
  Collector c;
  int nested_step_errors = 0;
  BatchScheduler s(model(), tok(), options(3, 8));
  std::jthread engine([&](std::stop_token st) { s.run(st); });
  // Two producers, 5 requests each, spaced so that they arrive while others decode.
  auto produce = [&](uint64_t first) {
    for (uint64_t id = first; id < first + 5; ++id) {
      auto r = c.request(id, text_prompt(kTexts[id % 6]), 8, kNoStop);
      if (id == 1)
        r.on_partial = [&, inner = r.on_partial](const TokenDelta& d) {
          inner(d);
          // The engine rule (one step at a time) is enforced, not assumed.
          try {
            s.step();
          } catch (const EngineError&) {
            ++nested_step_errors;
          }
        };
      s.submit(std::move(r));
      (void)s.stats();
      std::this_thread::sleep_for(3ms);
    }
  };
  std::thread p1(produce, 1), p2(produce, 21);
  p1.join();
  p2.join();
  {
    std::unique_lock lock(c.mu);
    BOOST_REQUIRE(c.cv.wait_for(lock, 60s, [&] {
      return c.seen.size() == 10 && [&] {
        for (auto& [id, v] : c.seen)
          if (v.done_calls == 0) return false;
        return true;
      }();
    }));
  }
  engine.request_stop();
  engine.join();
  for (uint64_t id : {1, 2, 3, 4, 5, 21, 22, 23, 24, 25}) {
    const auto& r = c.result(id);
    BOOST_TEST(r.status == GenerationStatus::MaxTokens, "request " << id);
    BOOST_TEST(r.tokens == solo_tokens(text_prompt(kTexts[id % 6]), 8, kNoStop), "request " << id);
  }
  BOOST_TEST(nested_step_errors > 0);
  BOOST_TEST(s.stats().submitted == 10u);
  c.check_consistent();
}

// ---- Streaming prefill (open requests)

namespace {

// A transcribe-shaped prompt: text, `frames` audio soft tokens, text after them.
PromptInput audio_prompt(int64_t frames, uint32_t seed) {
  MediaEmbedding a = random_image(frames, seed);
  a.kind = MediaEmbedding::Kind::Audio;
  return build_multimodal_prompt(
      tok(),
      {{"user", {{ChatPart::Kind::Audio, {}}, {ChatPart::Kind::Text, "Transcribe the audio."}}}},
      std::span(&a, 1), model().config().hidden);
}

// log_softmax of a logits row, in double.
std::vector<double> log_probs(std::span<const float> logits) {
  const double top = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float v : logits) sum += std::exp(v - top);
  std::vector<double> out;
  out.reserve(logits.size());
  for (float v : logits) out.push_back(v - top - std::log(sum));
  return out;
}

// Records every logits row of request `r` as log-probs.
void record_log_probs(GenerationRequest& r, std::vector<std::vector<double>>& rows) {
  r.on_logits = [&rows](std::span<const float> l) { rows.push_back(log_probs(l)); };
}

double max_abs_diff(const std::vector<std::vector<double>>& a,
                    const std::vector<std::vector<double>>& b) {
  BOOST_REQUIRE_EQUAL(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    BOOST_REQUIRE_EQUAL(a[i].size(), b[i].size());
    for (size_t j = 0; j < a[i].size(); ++j) d = std::max(d, std::abs(a[i][j] - b[i][j]));
  }
  return d;
}

// `r` made open (streaming prefill), its closed prompt at most `capacity` tokens.
GenerationRequest opened(GenerationRequest r, size_t capacity) {
  r.open = true;
  r.open_prompt_tokens = static_cast<int64_t>(capacity);
  return r;
}

}  // namespace

// The contract of streaming prefill: a prompt given in pieces as they arrive, prefilled between
// other sequences' decode steps, gives the log-probs and greedy tokens of the same prompt given
// whole. Bound: 1e-5 on every log-prob of every sampled row, the bound test_gemma4_text sets
// between a sequence run alone and batched (rows are computed independently; only the forwards'
// grouping differs here).
BOOST_AUTO_TEST_CASE(an_open_prompt_prefilled_in_pieces_equals_the_whole_prompt) {
  const PromptInput whole = audio_prompt(40, 11);
  size_t audio_begin = whole.size(), audio_end = 0;
  for (size_t i = 0; i < whole.size(); ++i)
    if (whole.soft_index[i] >= 0) audio_begin = std::min(audio_begin, i), audio_end = i + 1;
  BOOST_REQUIRE_EQUAL(audio_end - audio_begin, 40u);
  constexpr int kMaxNew = 12;

  // The reference: the whole prompt at once, beside two text requests.
  std::vector<std::vector<double>> ref;
  Collector c0;
  {
    BatchScheduler s(model(), tok(), options(3, 512));
    auto r = c0.request(1, whole, kMaxNew, kNoStop);
    record_log_probs(r, ref);
    s.submit(std::move(r));
    s.submit(c0.request(2, text_prompt(kTexts[0]), 30, kNoStop));
    s.submit(c0.request(3, text_prompt(kTexts[4]), 30, kNoStop));
    drain(s);
  }
  BOOST_REQUIRE_EQUAL(ref.size(), static_cast<size_t>(kMaxNew));
  BOOST_TEST(c0.result(1).tokens == solo_tokens(whole, kMaxNew, kNoStop));

  // Pieces of 1, 7 and 25 audio tokens (the last piece also carries the text after the audio),
  // with prefill chunks of 512 and 5; one piece is appended every other step, so the open request
  // both waits and catches up, while the two text requests decode in the same forwards.
  for (const size_t piece : {size_t{1}, size_t{7}, size_t{25}})
    for (const int chunk : {512, 5}) {
      Collector c;
      std::vector<std::vector<double>> rows;
      std::vector<ForwardInfo> forwards;
      SchedulerOptions o = options(3, chunk);
      o.open_backlog_tokens = 0;  // every piece joins the next forward, beside the decoding
      o.on_forward = [&](const ForwardInfo& f) { forwards.push_back(f); };
      BatchScheduler s(model(), tok(), o);
      auto r = opened(c.request(1, whole.slice(0, audio_begin), kMaxNew, kNoStop), whole.size());
      record_log_probs(r, rows);
      s.submit(std::move(r));
      s.submit(c.request(2, text_prompt(kTexts[0]), 30, kNoStop));
      s.submit(c.request(3, text_prompt(kTexts[4]), 30, kNoStop));
      size_t at = audio_begin;
      for (int step = 0; at < whole.size(); ++step) {
        if (step % 2 == 1) {
          const size_t end = at + piece >= audio_end ? whole.size() : at + piece;
          BOOST_REQUIRE(s.append(1, whole.slice(at, end), end == whole.size()));
          at = end;
        }
        s.step();
      }
      BOOST_TEST(!s.append(1, whole.slice(0, 1), true), "a closed request took a piece");
      drain(s);
      const std::string tag =
          "pieces of " + std::to_string(piece) + ", chunks of " + std::to_string(chunk);
      const GenerationResult& res = c.result(1);
      BOOST_TEST(res.status == GenerationStatus::MaxTokens, tag << ": " << res.error);
      BOOST_TEST(res.tokens == c0.result(1).tokens, tag);
      BOOST_TEST(res.prompt_tokens == static_cast<int64_t>(whole.size()), tag);
      const double d = max_abs_diff(rows, ref);
      BOOST_TEST_MESSAGE(tag << ": max |Δ log-prob| " << d);
      BOOST_TEST(d <= 1e-5, tag << ": max |Δ log-prob| " << d);
      BOOST_TEST(c.result(2).tokens == c0.result(2).tokens, tag);
      BOOST_TEST(c.result(3).tokens == c0.result(3).tokens, tag);
      const SchedulerStats st = s.stats();
      BOOST_TEST(st.open_requests == 1u);
      // All but the closing piece's tokens (and the token held back) went in while it was open.
      BOOST_TEST(st.tokens_prefilled_open >= audio_end - audio_begin - piece, tag);
      BOOST_TEST(st.mixed_forwards > 0u, tag);
      c.check_consistent();
    }
}

BOOST_AUTO_TEST_CASE(an_open_request_waits_for_pieces_without_holding_up_the_others) {
  const PromptInput whole = audio_prompt(10, 12);
  Collector c;
  BatchScheduler s(model(), tok(), options(2, 512));
  auto r = opened(c.request(1, whole.slice(0, 3), 4, kNoStop), whole.size());
  s.submit(std::move(r));
  s.submit(c.request(2, text_prompt(kTexts[1]), 6, kNoStop));
  BOOST_TEST(!s.append(7, whole.slice(3, 4), false), "a piece for an unknown request was taken");
  // The text request runs to its end while the open one has nothing more to prefill.
  drain(s);
  BOOST_TEST(c.done() == 1u);
  BOOST_TEST(c.result(2).tokens == solo_tokens(text_prompt(kTexts[1]), 6, kNoStop));
  BOOST_TEST(s.active() == 1u);
  // Two tokens of three went in while open (the third is held back for the closing piece).
  BOOST_TEST(s.stats().tokens_prefilled_open == 2u);
  BOOST_TEST(!s.step(), "a step with only a waiting open request did something");
  const auto t_close = SteadyClock::now();
  BOOST_REQUIRE(s.append(1, whole.slice(3, whole.size()), true));
  drain(s);
  const double elapsed_ms =
      std::chrono::duration<double, std::milli>(SteadyClock::now() - t_close).count();
  BOOST_TEST(c.result(1).tokens == solo_tokens(whole, 4, kNoStop));
  // close_ms: closing piece → prompt prefilled, inside the time the test waited; only for the
  // open request. It ran one forward for the closing prefill, so it is at least that forward.
  BOOST_TEST(c.result(1).close_ms > 0.0);
  BOOST_TEST(c.result(1).close_ms <= elapsed_ms);
  BOOST_TEST(c.result(1).close_ms < c.result(1).prefill_ms + 1e3);
  BOOST_TEST(c.result(2).close_ms < 0.0);
  // An empty closing piece is enough: the held-back token starts the decode.
  Collector c2;
  BatchScheduler s2(model(), tok(), options(2, 512));
  auto r2 = opened(c2.request(1, whole, 4, kNoStop), whole.size());
  s2.submit(std::move(r2));
  drain(s2);
  BOOST_REQUIRE(s2.append(1, PromptInput{}, true));
  drain(s2);
  BOOST_TEST(c2.result(1).tokens == solo_tokens(whole, 4, kNoStop));
  c.check_consistent();
  c2.check_consistent();
}

// An open request's pieces wait while another request decodes, until open_backlog_tokens of
// them are waiting: then they join the forward. Alone, it prefills what it has at once.
BOOST_AUTO_TEST_CASE(an_open_request_yields_to_due_work_until_its_backlog_is_long) {
  const PromptInput whole = audio_prompt(20, 14);
  Collector c;
  SchedulerOptions o = options(2, 512);
  o.open_backlog_tokens = 8;
  BatchScheduler s(model(), tok(), o);
  s.submit(opened(c.request(1, whole.slice(0, 4), 4, kNoStop), whole.size()));
  s.submit(c.request(2, text_prompt(kTexts[1]), 12, kNoStop));
  s.step();  // admits both: the text prompt prefills, the open one (3 tokens available) waits
  s.step();
  BOOST_TEST(s.stats().tokens_prefilled_open == 0u);
  BOOST_REQUIRE(s.append(1, whole.slice(4, 10), false));  // 9 available: over the limit
  s.step();
  BOOST_TEST(s.stats().tokens_prefilled_open == 9u);
  BOOST_REQUIRE(s.append(1, whole.slice(10, 12), false));  // 2 more wait for the text request
  s.step();
  BOOST_TEST(s.stats().tokens_prefilled_open == 9u);
  drain(s);  // the text request ends; then the open one prefills its 2 alone
  BOOST_TEST(c.result(2).tokens == solo_tokens(text_prompt(kTexts[1]), 12, kNoStop));
  BOOST_TEST(s.stats().tokens_prefilled_open == 11u);
  BOOST_REQUIRE(s.append(1, whole.slice(12, whole.size()), true));
  drain(s);
  BOOST_TEST(c.result(1).tokens == solo_tokens(whole, 4, kNoStop));
  c.check_consistent();
}

BOOST_AUTO_TEST_CASE(open_requests_end_on_bad_pieces_deadlines_and_drops) {
  const PromptInput whole = audio_prompt(10, 13);
  Collector c;
  SchedulerOptions o = options(1, 512);
  o.default_live_queue_limit = 1;
  BatchScheduler s(model(), tok(), o);
  auto open = [&](uint64_t id, size_t capacity) {
    auto r = opened(c.request(id, whole.slice(0, 3), 4, kNoStop), capacity);
    r.stream = "cam";
    r.live = true;
    return r;
  };
  // A bound below the tokens already given: refused at submit, naming the request.
  s.submit(open(1, 2));
  // Pieces beyond open_prompt_tokens: an error once taken; later pieces are refused.
  s.submit(open(2, 5));
  s.step();
  BOOST_REQUIRE(s.append(2, whole.slice(3, 6), false));
  s.step();
  BOOST_TEST(!s.append(2, whole.slice(6, 7), false));
  // Live and queued behind nothing: 3 runs; 4 and then 5 queue on the one slot, and 5 drops 4
  // (the stream's queue holds one).
  s.submit(open(3, whole.size()));
  s.step();
  s.submit(open(4, whole.size()));
  s.submit(open(5, whole.size()));
  s.step();
  BOOST_TEST(!s.append(4, whole.slice(3, 4), false), "a dropped request took a piece");
  BOOST_TEST(s.append(5, whole.slice(3, 4), false), "a queued open request refused a piece");
  // A deadline ends an open request that is waiting for pieces.
  auto r6 = opened(c.request(6, whole.slice(0, 3), 4, kNoStop), whole.size());
  r6.deadline = SteadyClock::now() + 30ms;
  BatchScheduler s6(model(), tok(), options(1, 512));
  s6.submit(std::move(r6));
  s6.step();
  std::this_thread::sleep_for(40ms);
  s6.step();
  BOOST_TEST(!s6.append(6, whole.slice(3, 4), false), "an expired request took a piece");

  BOOST_TEST(c.result(1).status == GenerationStatus::Error);
  BOOST_TEST(c.result(1).error.find("request 1 (cam/describe)") != std::string::npos,
             c.result(1).error);
  BOOST_TEST(c.result(1).error.find("open_prompt_tokens") != std::string::npos);
  BOOST_TEST(c.result(2).status == GenerationStatus::Error);
  BOOST_TEST(c.result(2).error.find("exceed open_prompt_tokens (5)") != std::string::npos,
             c.result(2).error);
  BOOST_TEST(c.result(4).status == GenerationStatus::Dropped);
  BOOST_TEST(c.result(6).status == GenerationStatus::Deadline);
  s.cancel_all();
  BOOST_TEST(c.result(3).status == GenerationStatus::Cancelled);
  BOOST_TEST(c.result(5).status == GenerationStatus::Cancelled);
  BOOST_TEST(!s.append(5, whole.slice(3, 4), false), "a cancelled request took a piece");
  c.check_consistent();
}

// The engine thread sleeps while its only request waits for pieces, and wakes for each.
BOOST_AUTO_TEST_CASE(pieces_from_another_thread_wake_the_engine) {
  const PromptInput whole = audio_prompt(30, 14);
  Collector c;
  BatchScheduler s(model(), tok(), options(2, 512));
  std::jthread engine([&](std::stop_token st) { s.run(st); });
  auto r = opened(c.request(1, whole.slice(0, 2), 6, kNoStop), whole.size());
  s.submit(std::move(r));
  for (size_t at = 2; at < whole.size();) {
    std::this_thread::sleep_for(2ms);
    const size_t end = std::min(whole.size(), at + 4);
    BOOST_REQUIRE(s.append(1, whole.slice(at, end), end == whole.size()));
    at = end;
  }
  {
    std::unique_lock lock(c.mu);
    BOOST_REQUIRE(c.cv.wait_for(lock, 60s, [&] { return c.seen.contains(1); }));
  }
  engine.request_stop();
  engine.join();
  BOOST_TEST(c.result(1).tokens == solo_tokens(whole, 6, kNoStop));
  BOOST_TEST(s.stats().tokens_prefilled_open > 0u);
  c.check_consistent();
}

// cancel(): a queued request ends at once, a running one at the next step (its slot goes to the
// next request); the deadline given with a closing piece replaces the open request's.
BOOST_AUTO_TEST_CASE(cancel_and_the_closing_deadline) {
  const PromptInput whole = audio_prompt(10, 15);
  Collector c;
  BatchScheduler s(model(), tok(), options(1, 512));
  auto open = opened(c.request(1, whole.slice(0, 3), 4, kNoStop), whole.size());
  s.submit(std::move(open));
  s.submit(c.request(2, text_prompt(kTexts[1]), 4, kNoStop));
  s.submit(c.request(3, text_prompt(kTexts[3]), 4, kNoStop));
  s.step();                 // 1 runs (and waits for pieces); 2 and 3 queue
  BOOST_TEST(s.cancel(3));  // queued: ends at once
  BOOST_TEST(!s.cancel(3));
  BOOST_TEST(!s.cancel(99));
  BOOST_TEST(s.cancel(1));  // running: ends at the next step, and 2 takes its slot
  s.step();
  BOOST_TEST(c.result(1).status == GenerationStatus::Cancelled);
  BOOST_TEST(c.result(3).status == GenerationStatus::Cancelled);
  BOOST_TEST(!s.append(1, whole.slice(3, 4), false), "a cancelled request took a piece");
  drain(s);
  BOOST_TEST(c.result(2).tokens == solo_tokens(text_prompt(kTexts[1]), 4, kNoStop));
  BOOST_TEST(!s.cancel(2), "a finished request was cancelled");

  // Running: the closing piece's deadline (already past) ends it with Deadline at the next step.
  auto r4 = opened(c.request(4, whole.slice(0, 3), 4, kNoStop), whole.size());
  s.submit(std::move(r4));
  s.step();
  BOOST_REQUIRE(s.append(4, whole.slice(3, whole.size()), true, SteadyClock::now()));
  s.step();
  BOOST_TEST(c.result(4).status == GenerationStatus::Deadline);
  // Queued: the new deadline applies in the queue.
  BatchScheduler s2(model(), tok(), options(1, 512));
  s2.submit(c.request(5, text_prompt(kTexts[2]), 30, kNoStop));
  auto r6 = opened(c.request(6, whole.slice(0, 3), 4, kNoStop), whole.size());
  s2.submit(std::move(r6));
  s2.step();
  BOOST_REQUIRE(s2.append(6, whole.slice(3, whole.size()), true, SteadyClock::now()));
  s2.step();
  BOOST_TEST(c.result(6).status == GenerationStatus::Deadline);
  BOOST_TEST(c.result(6).first_forward == 0u);
  drain(s2);
  c.check_consistent();
}
