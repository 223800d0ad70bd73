// The decoder node (nodes/decoder.*) on its own, around a real BatchScheduler on the synthesized
// `tiny` model stepped by the test: a job becomes a request of its task, its partials and its
// final come back as outcomes carrying the request (the partials' texts add up to the final's),
// `done` runs once after the final, the task's series count it; after close() a job is cancelled
// at once, and counted as dropped at shutdown.
#define BOOST_TEST_MODULE test_decoder_node
#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

#include "model/gemma4/chat.h"
#include "nodes/decoder.h"
#include "tests/test_models.h"

using namespace rawflow;
using namespace rawflow::pipeline;

namespace {

const LoadedModel& tiny() { return test::tiny_model(9, "test_decoder_node"); }

struct Fixture {
  explicit Fixture(SchedulerOptions options = {})
      : cfg(load_config_string("streams:\n  - {name: cam, url: clip.mkv, tasks: [ask]}\n"
                               "tasks:\n  - {name: ask, kind: transcribe, max_new_tokens: 12}\n"
                               "engine: {model: tiny.gguf, mmproj: tiny-mmproj.gguf}\n"
                               "outputs: {stdout: {}}\n",
                               "t.yaml")),
        scheduler(*tiny().text, *tiny().tokenizer, options),
        cam(metrics.for_stream("cam")),
        decoder(cfg, scheduler, {&cam}, "tiny") {
    cam.tasks.emplace(0, metrics.for_task("cam", "ask"));
  }
  PipelineConfig cfg;
  BatchScheduler scheduler;
  MetricsRegistry registry;
  PipelineMetrics metrics{registry};
  StreamHandles cam;
  nodes::Decoder decoder;
  std::vector<Outcome> outcomes;
  int done = 0;

  DecodeJob job(uint64_t sequence) {
    DecodeJob j;
    j.request.id = next_request_id();
    j.request.sequence = sequence;
    j.request.start_s = 5, j.request.end_s = 10;
    j.request.created = std::chrono::steady_clock::now();
    j.prompt.tokens = tiny().tokenizer->encode(render_user_prompt("Say something."));
    j.prompt.soft_index.assign(j.prompt.tokens.size(), -1);
    j.prompt.block_ids.assign(j.prompt.tokens.size(), -1);
    return j;
  }
  void submit(DecoderWork w) {
    decoder(
        std::move(w), [this](Outcome o) { outcomes.push_back(std::move(o)); }, [this] { ++done; });
  }
  // Streaming prefill: piece [begin, end) of `j`'s prompt for window `start` of the stream.
  PrefillPiece piece(const DecodeJob& j, int64_t start, size_t begin, size_t end,
                     bool droppable = false) {
    PrefillPiece p;
    p.window_start = start;
    p.prompt = j.prompt.slice(begin, end);
    p.prompt_tokens_bound = static_cast<int64_t>(j.prompt.size());
    p.droppable = droppable;
    return p;
  }
  // `j` closing window `start` with the rest of its prompt from `begin`.
  DecodeJob closing(DecodeJob j, int64_t start, size_t begin) {
    j.prompt = j.prompt.slice(begin, j.prompt.size());
    j.window_start = start;
    return j;
  }
  void run() {
    while (scheduler.step()) {
    }
  }
};

// One request at a time, and one queued live request per stream: the next one drops it.
SchedulerOptions one_slot() {
  SchedulerOptions o;
  o.max_batch = 1;
  o.default_live_queue_limit = 1;
  return o;
}
struct OneSlot : Fixture {
  OneSlot() : Fixture(one_slot()) {}
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(partials_then_the_final_then_done, Fixture) {
  const DecodeJob j = job(3);
  submit(j);
  while (scheduler.step()) {
  }
  BOOST_TEST(done == 1);
  BOOST_TEST_REQUIRE(outcomes.size() >= 2u);
  std::string streamed;
  for (size_t i = 0; i + 1 < outcomes.size(); ++i) {
    BOOST_TEST(!outcomes[i].is_final());
    streamed += outcomes[i].event.text;
  }
  const Outcome& last = outcomes.back();
  BOOST_TEST(last.is_final());
  BOOST_TEST((last.event.kind == ResultEvent::Kind::Final));  // max_new_tokens or a stop
  BOOST_TEST(last.event.text == streamed);
  BOOST_TEST(last.event.generated_tokens <= 12);
  BOOST_TEST(last.event.prompt_tokens == static_cast<int64_t>(j.prompt.tokens.size()));
  for (const Outcome& o : outcomes) {
    BOOST_TEST(o.request.id == j.request.id);
    BOOST_TEST(o.request.sequence == 3u);
    BOOST_TEST(o.event.request_id == j.request.id);
    BOOST_TEST(o.event.stream == "cam");
    BOOST_TEST(o.event.task == "ask");
    BOOST_TEST(o.event.media_start_s == 5.0);
  }
  // Latency is measured where finals are released (test_result_order), not here.
  BOOST_TEST(cam.tasks.at(0).request_latency.snapshot().count == 0u);
  BOOST_TEST(cam.tasks.at(0).generated_tokens.value() == last.event.generated_tokens);
  BOOST_TEST(cam.tasks.at(0).prompt_tokens.value() == last.event.prompt_tokens);
}

BOOST_FIXTURE_TEST_CASE(after_close_jobs_are_cancelled_at_once, Fixture) {
  decoder.close();
  submit(job(0));
  BOOST_TEST(done == 1);  // without a step: the scheduler never saw it
  BOOST_TEST_REQUIRE(outcomes.size() == 1u);
  BOOST_TEST((outcomes[0].event.kind == ResultEvent::Kind::Error));
  // Which request of which stream, and why, in words.
  BOOST_TEST(outcomes[0].event.error ==
             "stream `cam`, request " + std::to_string(outcomes[0].request.id) +
                 " (task `ask`, media 5.0\u201310.0 s): cancelled: the run stopped before it "
                 "finished");
  // No final, so no latency (rawflow_request_latency_seconds times finals only).
  BOOST_TEST(cam.tasks.at(0).request_latency.snapshot().count == 0u);
  BOOST_TEST(cam.metrics.requests_dropped_shutdown.value() == 1);
  BOOST_TEST(scheduler.pending() == 0u);
}

BOOST_FIXTURE_TEST_CASE(requests_cancelled_by_the_scheduler_are_counted_as_shutdown, Fixture) {
  submit(job(0));
  submit(job(1));
  decoder.close();
  scheduler.cancel_all();
  BOOST_TEST(done == 2);
  BOOST_TEST(cam.metrics.requests_dropped_shutdown.value() == 2);
  BOOST_TEST(cam.tasks.at(0).request_latency.snapshot().count == 0u);
}

// A window's prompt in pieces, stepped between them, then its closing job: the same final as the
// whole prompt in one job (greedy), carrying the closing job's request; the first piece's `done`
// waits for the engine request, the others' run at once; the streamed tokens are counted.
BOOST_FIXTURE_TEST_CASE(a_window_in_pieces_ends_as_its_whole_prompt_would, Fixture) {
  const DecodeJob whole = job(0);
  const size_t n = whole.prompt.size();
  BOOST_TEST_REQUIRE(n >= 8u);
  submit(whole);
  run();
  BOOST_TEST_REQUIRE(outcomes.size() >= 1u);
  const Outcome reference = outcomes.back();
  BOOST_TEST((reference.event.kind == ResultEvent::Kind::Final));
  outcomes.clear();
  done = 0;

  const DecodeJob j = job(1);
  submit(piece(j, 6400, 0, 3));
  scheduler.step();
  submit(piece(j, 6400, 3, 4));
  scheduler.step();
  scheduler.step();  // nothing new: the window waits without holding anything up
  submit(piece(j, 6400, 4, n - 2));
  scheduler.step();
  BOOST_TEST(done == 2);  // the first piece's waits for its engine request
  BOOST_TEST(outcomes.empty());
  submit(closing(j, 6400, n - 2));
  run();
  BOOST_TEST(done == 4);
  BOOST_TEST_REQUIRE(!outcomes.empty());
  const Outcome& last = outcomes.back();
  BOOST_TEST(last.is_final());
  BOOST_TEST((last.event.kind == ResultEvent::Kind::Final));
  BOOST_TEST(last.event.text == reference.event.text);
  BOOST_TEST(last.event.generated_tokens == reference.event.generated_tokens);
  BOOST_TEST(last.event.prompt_tokens == static_cast<int64_t>(n));
  std::string streamed;
  for (const Outcome& o : outcomes) {
    BOOST_TEST(o.request.id == j.request.id);
    BOOST_TEST(o.request.sequence == 1u);
    if (!o.is_final()) streamed += o.event.text;
  }
  BOOST_TEST(streamed == last.event.text);
  // Prefilled while open: all but the last token so far (held back for the closing piece).
  BOOST_TEST(cam.tasks.at(0).prompt_tokens_streamed.value() == static_cast<double>(n - 3));
  BOOST_TEST(scheduler.stats().open_requests == 1u);
}

BOOST_FIXTURE_TEST_CASE(an_abandoned_window_is_cancelled_without_an_outcome, Fixture) {
  const DecodeJob j = job(0);
  submit(piece(j, 0, 0, 4));
  scheduler.step();
  PrefillPiece abandon;
  abandon.window_start = 0;
  abandon.abandon = true;
  submit(abandon);
  run();
  BOOST_TEST(done == 2);
  BOOST_TEST(outcomes.empty());
  BOOST_TEST(scheduler.active() == 0u);
  BOOST_TEST(cam.metrics.requests_dropped_shutdown.value() == 0);
  BOOST_TEST(cam.metrics.requests_dropped_queue_full.value() == 0);
  // Later pieces or an abandonment of a window that is not open change nothing.
  submit(abandon);
  BOOST_TEST(done == 3);
}

// A live window's engine request dropped from the queue before its window closed: its closing
// job reports the drop (counted once) under the window's request; the window after it runs.
BOOST_FIXTURE_TEST_CASE(a_window_dropped_while_open_is_reported_when_it_closes, OneSlot) {
  DecodeJob busy = job(0);
  submit(busy);
  scheduler.step();  // holds the only slot
  DecodeJob a = job(1), b = job(2);
  a.request.droppable = b.request.droppable = true;
  submit(piece(a, 0, 0, 4, true));
  submit(piece(b, 160000, 0, 4, true));  // the stream's second queued live request: drops a's
  run();
  BOOST_TEST(cam.metrics.requests_dropped_queue_full.value() == 0);  // reported at a's close
  submit(closing(a, 0, 4));
  submit(closing(b, 160000, 4));
  run();
  std::vector<const Outcome*> finals;
  for (const Outcome& o : outcomes)
    if (o.is_final()) finals.push_back(&o);
  BOOST_TEST_REQUIRE(finals.size() == 3u);
  BOOST_TEST(finals[0]->request.id == busy.request.id);
  BOOST_TEST(finals[1]->request.id == a.request.id);
  BOOST_TEST((finals[1]->event.kind == ResultEvent::Kind::Error));
  BOOST_TEST(finals[1]->event.error.find("dropped") != std::string::npos);
  BOOST_TEST(finals[2]->request.id == b.request.id);
  BOOST_TEST((finals[2]->event.kind == ResultEvent::Kind::Final));
  BOOST_TEST(cam.metrics.requests_dropped_queue_full.value() == 1);
  BOOST_TEST(done == 5);  // once per submission
}
