// The projection node (nodes/projection.*) on its own, on the synthesized `tiny` model and its
// embedders: a request's media become the prompt the one-shot commands would build for the same
// media and prompt text (media/media_turn.h), a live stream's projection queue is bounded by
// dropping its oldest request, and a request that cannot be embedded becomes an error outcome.
// Prompts are compared for equality: both sides run the same code on the same input.
#define BOOST_TEST_MODULE test_projection
#include <algorithm>
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

// What the projection sent on: a job, a piece, an error (or nothing).
const DecodeJob* job_in(const nodes::ProjectionOutput& o) {
  return o.work ? std::get_if<DecodeJob>(&*o.work) : nullptr;
}
const PrefillPiece* piece_in(const nodes::ProjectionOutput& o) {
  return o.work ? std::get_if<PrefillPiece>(&*o.work) : nullptr;
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
  BOOST_TEST_REQUIRE(job_in(out));
  BOOST_TEST(!out.error);
  const DecodeJob& job = *job_in(out);
  BOOST_TEST(job.request.id == r.id);
  BOOST_TEST(job.window_start == -1);
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
  BOOST_TEST_REQUIRE(job_in(out));
  media::MediaTurn turn;
  turn.add_video(vision, {{picture(320, 180, 10), 61.0, 0}, {picture(320, 180, 90), 62.5, 1}}, 70);
  turn.add_text(cfg.tasks[1].prompt);
  expect_same(job_in(out)->prompt, turn.prompt(*model.tokenizer, model.text->config().hidden));
  const std::string text = model.tokenizer->decode(job_in(out)->prompt.tokens);
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
    dropped.push_back(out.error.has_value());
    BOOST_TEST(dropped.back() != (job_in(out) != nullptr));
    if (dropped.back()) {
      const ResultEvent& e = out.error->event;
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
  BOOST_TEST(job_in(projection(r)));
}

BOOST_FIXTURE_TEST_CASE(media_that_cannot_be_embedded_become_an_error_outcome, Fixture) {
  nodes::Projection blind(cfg, *model.tokenizer, model.text->config().hidden, {nullptr, &audio},
                          {&cam, &file}, "tiny");
  cam.ledger.made(1);
  MediaRequest r = request(0, 1, true);
  r.frames = {picture(64, 64, 0)};
  r.frame_times = {1.0};
  auto out = blind(r);
  BOOST_TEST_REQUIRE(out.error.has_value());
  BOOST_TEST(!out.work);
  const Outcome& o = *out.error;
  BOOST_TEST(o.request.sequence == r.sequence);
  BOOST_TEST(o.event.stream == "cam");
  BOOST_TEST(o.event.task == "describe");
  BOOST_TEST(o.event.media_start_s == 4.0);
  BOOST_TEST(o.event.error.find("vision") != std::string::npos);
}

// Streaming prefill: a window's pieces (the first with the prompt's beginning) and its closing
// request's prompt, appended, are the prompt the request would have had whole — tokens, soft rows
// and blocks, compared for equality (bit-identical soft rows: each 40 ms frame is embedded on its
// own, whichever call it is in).
BOOST_FIXTURE_TEST_CASE(a_window_streamed_in_pieces_gets_the_prompt_it_would_get_whole, Fixture) {
  const std::vector<float> audio = tone(2.0);  // 50 frames
  const int64_t start = 16000 * 30;            // the window's place on the timeline
  const auto piece = [&](int64_t from_frame, int64_t to_frame) {
    AudioPiece p{1, 0, start, start + from_frame * 640, {}};
    p.samples.assign(audio.begin() + from_frame * 640, audio.begin() + to_frame * 640);
    return p;
  };
  PromptInput streamed;
  for (auto [from, to] : {std::pair<int64_t, int64_t>{0, 10}, {10, 11}, {11, 30}}) {
    auto out = projection(FramedWork(piece(from, to)));
    BOOST_TEST_REQUIRE(piece_in(out));
    const PrefillPiece& p = *piece_in(out);
    BOOST_TEST((p.stream == 1 && p.task == 0 && p.window_start == start && !p.abandon));
    BOOST_TEST(!p.droppable);  // a file stream's
    if (from > 0) {            // after the first piece: soft tokens only
      BOOST_TEST(p.prompt.size() == static_cast<size_t>(to - from));
    }
    streamed.append(p.prompt);
  }
  file.ledger.made(1);
  MediaRequest r = request(1, 0, false);
  r.audio = audio;
  r.audio_first_sample = start;
  r.window_start = start;
  r.streamed_samples = 30 * 640;
  auto out = projection(r);
  BOOST_TEST_REQUIRE(job_in(out));
  BOOST_TEST(job_in(out)->window_start == start);
  streamed.append(job_in(out)->prompt);

  MediaRequest whole = request(1, 0, false);
  whole.audio = audio;
  file.ledger.made(1);
  auto one_shot = projection(whole);
  BOOST_TEST_REQUIRE(job_in(one_shot));
  // Tokens, soft-row indices and blocks are equal; the soft rows agree to float rounding: oneDNN's
  // matmul (EmbedderMatmul) sums a row's products in an order that depends on how many rows the
  // call holds. Bound: 1e-5 of the row's largest magnitude (measured 6.3e-7 on Zen 4).
  const PromptInput& ref = job_in(one_shot)->prompt;
  BOOST_TEST(streamed.tokens == ref.tokens, boost::test_tools::per_element());
  BOOST_TEST(streamed.soft_index == ref.soft_index, boost::test_tools::per_element());
  BOOST_TEST(streamed.block_ids == ref.block_ids, boost::test_tools::per_element());
  BOOST_TEST_REQUIRE(streamed.soft.size() == ref.soft.size());
  const size_t h = static_cast<size_t>(ref.hidden);
  double worst = 0;
  for (size_t row = 0; row * h < ref.soft.size(); ++row) {
    float scale = 0, diff = 0;
    for (size_t i = row * h; i < (row + 1) * h; ++i) {
      scale = std::max(scale, std::abs(ref.soft[i]));
      diff = std::max(diff, std::abs(ref.soft[i] - streamed.soft[i]));
    }
    worst = std::max(worst, static_cast<double>(diff / std::max(scale, 1e-30f)));
  }
  BOOST_TEST_MESSAGE("streamed vs whole soft rows: max relative difference " << worst);
  BOOST_TEST(worst <= 1e-5);
  // The first piece's bound: the whole prompt of a full 10 s window (250 frames).
  auto first = projection(FramedWork(piece(0, 1)));
  BOOST_TEST(piece_in(first)->prompt_tokens_bound ==
             static_cast<int64_t>(job_in(one_shot)->prompt.size()) - 50 + 250);
}

BOOST_FIXTURE_TEST_CASE(an_abandoned_or_dropped_window_has_its_engine_request_cancelled, Fixture) {
  auto out = projection(FramedWork(AbandonedWindow{0, 0, 640 * 25}));
  BOOST_TEST_REQUIRE(piece_in(out));
  BOOST_TEST(piece_in(out)->abandon);
  BOOST_TEST(piece_in(out)->window_start == 640 * 25);
  BOOST_TEST(!out.error);
  // A streamed window's request dropped here: its error, and its engine request cancelled.
  cam.ledger.made(3);
  for (int i = 0; i < 3; ++i) {
    MediaRequest r = request(0, 0, true);
    r.audio = tone(1.0);
    r.window_start = r.audio_first_sample = 16000 * i;
    r.streamed_samples = 640 * 5;
    auto o = projection(r);
    if (i == 0) {
      BOOST_TEST_REQUIRE(o.error.has_value());
      BOOST_TEST(o.error->event.error.find("dropped") == 0u);
      BOOST_TEST_REQUIRE(piece_in(o));
      BOOST_TEST(piece_in(o)->abandon);
      BOOST_TEST(piece_in(o)->window_start == 0);
    } else {
      BOOST_TEST(job_in(o));
      BOOST_TEST(!o.error);
    }
  }
}

// A piece that cannot be embedded (here: no audio embedder) abandons its window in the engine; the
// window's later pieces are skipped and its request goes whole, as without streaming prefill.
BOOST_FIXTURE_TEST_CASE(a_window_whose_piece_fails_goes_whole, Fixture) {
  nodes::Projection deaf(cfg, *model.tokenizer, model.text->config().hidden, {&vision, nullptr},
                         {&cam, &file}, "tiny");
  AudioPiece p{1, 0, 0, 0, tone(0.4)};
  auto first = deaf(FramedWork(p));
  BOOST_TEST_REQUIRE(piece_in(first));
  BOOST_TEST(piece_in(first)->abandon);
  p.first_sample = 6400;
  BOOST_TEST(!deaf(FramedWork(p)).work);  // skipped
  file.ledger.made(1);
  MediaRequest r = request(1, 0, false);
  r.audio = tone(1.0);
  r.window_start = 0;
  r.streamed_samples = 12800;
  auto out = deaf(r);
  BOOST_TEST_REQUIRE(job_in(out));
  BOOST_TEST(job_in(out)->window_start == -1);
}
