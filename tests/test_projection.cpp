// The projection node (nodes/projection.*) on its own, on the synthesized `tiny` model and its
// embedders: a request's media become the prompt the one-shot commands would build for the same
// media and prompt text (media/media_turn.h), a live stream's projection queue is bounded by
// dropping its oldest request, and a request that cannot be embedded becomes an error outcome.
// Prompts are compared for equality: both sides run the same code on the same input.
#define BOOST_TEST_MODULE test_projection
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "media/media_turn.h"
#include "model/gemma4/gemma4_mmproj.h"
#include "nodes/projection.h"
#include "tests/test_models.h"

using namespace rawflow;
using namespace rawflow::pipeline;

namespace {

struct Fixture {
  Fixture()
      : files(test::tiny_model_files_with_mmproj(5, "test_projection")),
        model(load_model(files.first)),
        mmproj(Gemma4Mmproj::open(files.second)),
        vision(*mmproj),
        audio(*mmproj),
        cfg(load_config_string(
            "streams:\n"
            "  - {name: cam, url: 'rtsp://127.0.0.1:8554/cam', tasks: [transcribe, describe],\n"
            "     queue: {max_pending_requests: 2}}\n"
            "  - {name: file, url: clip.mkv, tasks: [transcribe], queue: {max_pending_requests: "
            "2}}\n"
            "tasks:\n  - {kind: transcribe}\n  - {kind: describe, frames_per_request: 2,\n"
            "     image_budget: 70}\n"
            "engine: {model: " +
                files.first + ", mmproj: " + files.second +
                "}\n"
                "outputs: {stdout: {}}\n",
            "t.yaml")),
        cam(metrics.for_stream("cam")),
        file(metrics.for_stream("file")),
        projection(cfg, *model.tokenizer, model.text->config().hidden, {&vision, &audio},
                   {&cam, &file}, "tiny") {}

  std::pair<std::string, std::string> files;
  LoadedModel model;
  std::unique_ptr<Gemma4Mmproj> mmproj;
  Gemma4VisionEmbedder vision;
  Gemma4AudioEmbedder audio;
  PipelineConfig cfg;
  MetricsRegistry registry;
  PipelineMetrics metrics{registry};
  StreamHandles cam, file;
  nodes::Projection projection;
};

std::vector<float> tone(double seconds) {
  std::vector<float> s(static_cast<size_t>(seconds * 16000));
  for (size_t i = 0; i < s.size(); ++i) s[i] = 0.3f * std::sin(0.07f * static_cast<float>(i));
  return s;
}

media::RgbImage picture(int w, int h, uint8_t shade) {
  media::RgbImage img;
  img.width = w, img.height = h;
  img.rgb.resize(static_cast<size_t>(w) * h * 3);
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = static_cast<uint8_t>(shade + i % 7);
  return img;
}

MediaRequest request(size_t stream, size_t task, bool droppable) {
  MediaRequest r;
  r.id = next_request_id();
  r.stream = stream;
  r.task = task;
  r.droppable = droppable;
  r.start_s = 4, r.end_s = 6;
  return r;
}

void expect_same(const PromptInput& a, const PromptInput& b) {
  BOOST_TEST(a.tokens == b.tokens, boost::test_tools::per_element());
  BOOST_TEST(a.soft_index == b.soft_index, boost::test_tools::per_element());
  BOOST_TEST(a.block_ids == b.block_ids, boost::test_tools::per_element());
  BOOST_TEST(a.soft == b.soft, boost::test_tools::per_element());
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(audio_requests_get_the_prompt_transcribe_builds, Fixture) {
  file.ledger.made(1);
  MediaRequest r = request(1, 0, false);
  r.audio = tone(2.0);
  auto out = projection(r);
  BOOST_TEST_REQUIRE(std::holds_alternative<DecodeJob>(out));
  const DecodeJob& job = std::get<DecodeJob>(out);
  BOOST_TEST(job.request.id == r.id);
  // What `rawflow transcribe` builds for the same samples and prompt (cli/multimodal.cpp).
  media::MediaTurn turn;
  turn.add_text(cfg.tasks[0].prompt);
  media::AudioClip clip;
  clip.samples = tone(2.0);
  turn.add_audio(audio, clip);
  expect_same(job.prompt, turn.prompt(*model.tokenizer, model.text->config().hidden));
  BOOST_TEST(job.prompt.soft.size() == 50u * model.text->config().hidden);  // 2 s = 50 frames
}

BOOST_FIXTURE_TEST_CASE(frames_become_a_video_with_stamped_frames, Fixture) {
  cam.ledger.made(1);
  MediaRequest r = request(0, 1, true);
  r.frames = {picture(320, 180, 10), picture(320, 180, 90)};
  r.frame_times = {61.0, 62.5};
  auto out = projection(r);
  BOOST_TEST_REQUIRE(std::holds_alternative<DecodeJob>(out));
  media::MediaTurn turn;
  turn.add_video(vision, {{picture(320, 180, 10), 61.0, 0}, {picture(320, 180, 90), 62.5, 1}}, 70);
  turn.add_text(cfg.tasks[1].prompt);
  expect_same(std::get<DecodeJob>(out).prompt,
              turn.prompt(*model.tokenizer, model.text->config().hidden));
  const std::string text = model.tokenizer->decode(std::get<DecodeJob>(out).prompt.tokens);
  BOOST_TEST(text.find("01:01") != std::string::npos);
  BOOST_TEST(text.find("01:02") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(a_live_stream_drops_its_oldest_request_when_its_queue_is_full, Fixture) {
  // Four requests wait; the cap is 2: the two oldest are dropped as they are taken.
  cam.ledger.made(4);
  std::vector<bool> dropped;
  for (int i = 0; i < 4; ++i) {
    MediaRequest r = request(0, 0, true);
    r.audio = tone(0.5);
    auto out = projection(r);
    dropped.push_back(std::holds_alternative<Outcome>(out));
    if (dropped.back()) {
      const ResultEvent& e = std::get<Outcome>(out).event;
      BOOST_TEST((e.kind == ResultEvent::Kind::Error));
      BOOST_TEST(e.request_id == r.id);
      BOOST_TEST(e.error.find("dropped") == 0u);
    }
  }
  BOOST_TEST(dropped == (std::vector<bool>{true, true, false, false}),
             boost::test_tools::per_element());
  BOOST_TEST(cam.metrics.requests_dropped_queue_full.value() == 2);
  BOOST_TEST(cam.metrics.queue_projection.value() == 0);
  // A file stream's requests are never dropped, however many wait.
  file.ledger.made(5);
  MediaRequest r = request(1, 0, false);
  r.audio = tone(0.5);
  BOOST_TEST(std::holds_alternative<DecodeJob>(projection(r)));
}

BOOST_FIXTURE_TEST_CASE(media_that_cannot_be_embedded_become_an_error_outcome, Fixture) {
  nodes::Projection blind(cfg, *model.tokenizer, model.text->config().hidden, {nullptr, &audio},
                          {&cam, &file}, "tiny");
  cam.ledger.made(1);
  MediaRequest r = request(0, 1, true);
  r.frames = {picture(64, 64, 0)};
  r.frame_times = {1.0};
  auto out = blind(r);
  BOOST_TEST_REQUIRE(std::holds_alternative<Outcome>(out));
  const Outcome& o = std::get<Outcome>(out);
  BOOST_TEST(o.request.sequence == r.sequence);
  BOOST_TEST(o.event.stream == "cam");
  BOOST_TEST(o.event.task == "describe");
  BOOST_TEST(o.event.media_start_s == 4.0);
  BOOST_TEST(o.event.error.find("vision") != std::string::npos);
}
