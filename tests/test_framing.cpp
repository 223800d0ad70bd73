// The framing node (nodes/framing.*) on its own: a stream's units in → its requests (numbered per
// task from 0, the order the result order node restores), its gap and error events, the frame
// counters, the stream's ledger and a live stream's wall clock. The windows' arithmetic itself is
// test_windows'; here the checks are on what the node adds around it. Audio is a constant tone,
// so every count is exact.
#define BOOST_TEST_MODULE test_framing
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <ctime>
#include <string>
#include <vector>

#include "nodes/framing.h"

using namespace rawflow;
using namespace rawflow::pipeline;

namespace {

PipelineConfig config(const std::string& url) {
  return load_config_string(
      "streams:\n  - name: cam\n    url: " + url +
          "\n    tasks: [transcribe, describe]\n"
          "tasks:\n  - {kind: transcribe, window_s: 2, hop_s: 1}\n"
          "  - {kind: describe, interval_s: 2, frames_per_request: 1}\n"
          "engine: {model: tiny.gguf, mmproj: tiny-mmproj.gguf}\noutputs: {stdout: {}}\n",
      "t.yaml");
}

struct Fixture {
  explicit Fixture(const std::string& url = "clip.mkv")
      : cfg(config(url)),
        handles(metrics.for_stream("cam")),
        framing(cfg, 0, handles, tally, "tiny.gguf") {}
  PipelineConfig cfg;
  MetricsRegistry registry;
  PipelineMetrics metrics{registry};
  StreamHandles handles;
  RunTally tally;
  nodes::Framing framing;
  std::vector<MediaRequest> requests;
  std::vector<ResultEvent> events;
  std::vector<EarlyPrefill> early;

  void put(SourceUnit u) {
    nodes::FramingOutput o = framing(u);
    for (auto& e : o.early) early.push_back(std::move(e));
    for (auto& r : o.requests) requests.push_back(std::move(r));
    for (auto& e : o.events) events.push_back(std::move(e));
  }
  void audio(double seconds, double t,
             std::chrono::system_clock::time_point at = std::chrono::system_clock::now()) {
    put(SourceUnit{0, AudioUnit{std::vector<float>(static_cast<size_t>(seconds * 16000), 0.1f), t},
                   at});
  }
  void frame(double t) {
    media::RgbImage img;
    img.width = img.height = 2;
    img.rgb.assign(12, 128);
    put(SourceUnit{0, VideoUnit{img, t}});
  }
  std::vector<uint64_t> sequences(size_t task) const {
    std::vector<uint64_t> s;
    for (const MediaRequest& r : requests)
      if (r.task == task) s.push_back(r.sequence);
    return s;
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(requests_are_numbered_per_task_and_counted_in_the_ledger) {
  Fixture f;
  for (int s = 0; s < 6; ++s) {
    f.frame(s + 0.5);
    f.audio(1.0, s);
  }
  f.put(SourceUnit{0, EndUnit{true}});
  // transcribe: a 2 s window every 1 s over 6 s (the end makes no [5, 6): [4, 6) has it);
  // describe: one frame per 2 s interval.
  BOOST_TEST(f.sequences(0) == (std::vector<uint64_t>{0, 1, 2, 3, 4}),
             boost::test_tools::per_element());
  BOOST_TEST(f.sequences(1) == (std::vector<uint64_t>{0, 1, 2}), boost::test_tools::per_element());
  BOOST_TEST(f.handles.ledger.in_flight() == static_cast<int64_t>(f.requests.size()));
  BOOST_TEST(f.tally.requests == static_cast<int64_t>(f.requests.size()));
  BOOST_TEST(!f.handles.ledger.done());  // ended, but nothing finished yet
  BOOST_TEST(f.events.empty());          // so the end is the result order's to report
  for (size_t i = 0; i + 1 < f.requests.size(); ++i) BOOST_TEST(!f.handles.ledger.finished());
  BOOST_TEST(f.handles.ledger.finished());  // the last one: its caller reports the end
  BOOST_TEST(f.handles.ledger.done());
  BOOST_TEST(f.handles.metrics.audio_frames_in.value() == 6 * 25);
  BOOST_TEST(f.handles.metrics.video_frames_in.value() == 6);
  BOOST_TEST(f.handles.metrics.queue_projection.value() == static_cast<double>(f.requests.size()));
  for (const MediaRequest& r : f.requests) BOOST_TEST(r.start_utc.empty());  // a file: no clock
}

BOOST_AUTO_TEST_CASE(gaps_and_errors_become_events_on_the_timeline) {
  Fixture f;
  f.audio(3.0, 0);
  f.put(SourceUnit{0, GapUnit{1.5, "reconnected"}});
  f.put(SourceUnit{0, ErrorUnit{"stream `cam`: 3 undecodable packet(s) skipped"}});
  BOOST_TEST_REQUIRE(f.events.size() == 2u);
  BOOST_TEST((f.events[0].kind == ResultEvent::Kind::Gap));
  BOOST_TEST(f.events[0].stream == "cam");
  BOOST_TEST(f.events[0].media_start_s == 3.0);
  BOOST_TEST(f.events[0].media_end_s == 4.5);
  BOOST_TEST(f.events[0].text == "reconnected");
  BOOST_TEST((f.events[1].kind == ResultEvent::Kind::Error));
  BOOST_TEST(f.events[1].error == "stream `cam`: 3 undecodable packet(s) skipped");
  // No model answered a stream's gap or error (docs/results.md: `model` is "" then).
  BOOST_TEST(f.events[0].model == "");
  BOOST_TEST(f.events[1].model == "");
  BOOST_TEST(f.tally.gaps == 1);
  BOOST_TEST(f.tally.errors == 1);
  BOOST_TEST(f.handles.metrics.gap_seconds.value() == 1.5);
}

BOOST_AUTO_TEST_CASE(a_stream_that_ends_with_nothing_in_flight_reports_its_end_at_once) {
  Fixture f;
  f.put(SourceUnit{0, ErrorUnit{"stream `cam`: clip.mkv: Invalid data found"}});
  f.put(SourceUnit{0, EndUnit{false}});
  BOOST_TEST_REQUIRE(f.events.size() == 2u);
  BOOST_TEST((f.events[1].kind == ResultEvent::Kind::End));
  BOOST_TEST(f.events[1].stream == "cam");
  BOOST_TEST(!f.events[1].complete);
  BOOST_TEST(to_json(f.events[1]).find("\"kind\":\"end\"") != std::string::npos);
  BOOST_TEST(to_json(f.events[1]).find("\"complete\":false") != std::string::npos);
  BOOST_TEST(f.handles.ledger.done());
}

BOOST_AUTO_TEST_CASE(a_lost_live_source_gets_its_open_window_processed_at_once) {
  Fixture f("rtsp://127.0.0.1:8554/cam");
  f.audio(1.5, 0);  // the transcribe window is 2 s: nothing yet
  BOOST_TEST(f.sequences(0).empty());
  f.put(SourceUnit{0, LostUnit{}});  // the camera stopped; when it returns is unknown
  BOOST_TEST_REQUIRE(f.sequences(0).size() == 1u);
  BOOST_TEST(f.requests[0].end_s == 1.5);
  BOOST_TEST(f.events.empty());  // the gap is reported when media flows again
}

BOOST_AUTO_TEST_CASE(a_live_stream_stamps_requests_with_the_wall_clock_of_their_start) {
  Fixture f("rtsp://127.0.0.1:8554/cam");
  // Timeline point 0 arrived at 12:00:00.000 UTC; 1 s chunks arrive on time, except one late.
  std::tm tm{};
  tm.tm_year = 126, tm.tm_mon = 11, tm.tm_mday = 7, tm.tm_hour = 12;
  const auto noon = std::chrono::system_clock::from_time_t(timegm(&tm));
  for (int s = 0; s < 4; ++s)
    f.audio(1.0, s, noon + std::chrono::seconds(s) + std::chrono::milliseconds(s == 2 ? 700 : 0));
  BOOST_TEST_REQUIRE(!f.requests.empty());
  for (const MediaRequest& r : f.requests) {
    const int whole = static_cast<int>(r.start_s);
    BOOST_TEST(r.start_s == whole);
    BOOST_TEST(r.start_utc == "2026-12-07T12:00:0" + std::to_string(whole) + ".000Z");
    BOOST_TEST(r.droppable);  // live streams drop their oldest work by default
  }
}

// Streaming prefill: the node hands on the windows' pieces (test_windows checks their arithmetic)
// ahead of the request that closes each window, which carries how much of it went ahead.
BOOST_AUTO_TEST_CASE(pieces_of_open_windows_come_before_their_request) {
  Fixture f;
  f.cfg.tasks[0].streaming_prefill_s = 0.4;
  nodes::Framing framing(f.cfg, 0, f.handles, f.tally, "tiny.gguf");
  std::vector<EarlyPrefill> early;
  std::vector<MediaRequest> requests;
  for (int i = 0; i < 5; ++i) {  // 2.5 s in 0.5 s units: the [0, 2) window closes in the 4th
    nodes::FramingOutput o =
        framing(SourceUnit{0, AudioUnit{std::vector<float>(8000, 0.1f), i * 0.5}});
    for (const MediaRequest& r : o.requests) {
      if (r.start_s != 0.0) continue;
      BOOST_TEST(r.window_start == 0);
      // Its pieces, all taken in earlier outputs: 0.4 s each up to 1.2 s (the audio to 1.6 s came
      // in the unit that completed the window: it goes with the request).
      int64_t ahead = 0;
      for (const EarlyPrefill& e : early)
        if (const auto* p = std::get_if<AudioPiece>(&e); p && p->window_start == 0)
          ahead += static_cast<int64_t>(p->samples.size());
      BOOST_TEST(ahead == 3 * 6400);
      BOOST_TEST(r.streamed_samples == ahead);
      requests.push_back(r);
    }
    for (auto& e : o.early) early.push_back(std::move(e));
  }
  BOOST_TEST(requests.size() == 1u);
}
