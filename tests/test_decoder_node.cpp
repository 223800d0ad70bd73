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
  Fixture()
      : cfg(load_config_string("streams:\n  - {name: cam, url: clip.mkv, tasks: [ask]}\n"
                               "tasks:\n  - {name: ask, kind: transcribe, max_new_tokens: 12}\n"
                               "engine: {model: tiny.gguf, mmproj: tiny-mmproj.gguf}\n"
                               "outputs: {stdout: {}}\n",
                               "t.yaml")),
        scheduler(*tiny().text, *tiny().tokenizer, SchedulerOptions{}),
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
  void submit(DecodeJob j) {
    decoder(
        std::move(j), [this](Outcome o) { outcomes.push_back(std::move(o)); }, [this] { ++done; });
  }
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
