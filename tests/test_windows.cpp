// The windows/tasks stage (pipeline/windows.*): which requests a stream's units become, and the
// frames-used counts behind rawflow_{audio,video}_frames_used_total. Units are synthetic (a
// constant-level tone, 2×2 frames); every expected count is exact arithmetic on 640-sample audio
// frames at 16 kHz (25 per second), so the checks are equalities.
#define BOOST_TEST_MODULE test_windows
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "pipeline/config.h"
#include "pipeline/windows.h"

using namespace rawflow;
using namespace rawflow::pipeline;

namespace {

constexpr int kRate = 16000;
constexpr int kFramesPerSecond = kRate / 640;

// A one-stream configuration running `tasks` (YAML list items) on `url`.
PipelineConfig config(const std::string& tasks, const std::string& url = "clip.mkv",
                      const std::string& stream_extra = "") {
  const std::string yaml = "streams:\n  - name: cam\n    url: " + url + "\n" + stream_extra +
                           "tasks:\n" + tasks +
                           "engine: {model: tiny.gguf, mmproj: tiny-mmproj.gguf}\n"
                           "outputs: {stdout: {}}\n";
  return load_config_string(yaml, "t.yaml");
}

// Feeds `seconds` of audio in packets of `packet` samples (not a multiple of 640, as a decoder's
// packets are not).
void feed_audio(StreamWindows& w, double seconds, int packet = 1000) {
  const int64_t total = static_cast<int64_t>(seconds * kRate);
  for (int64_t at = 0; at < total; at += packet)
    w.on_audio(
        std::vector<float>(static_cast<size_t>(std::min<int64_t>(packet, total - at)), 0.1f));
}

media::RgbImage tiny_frame() {
  media::RgbImage img;
  img.width = img.height = 2;
  img.rgb.assign(12, 128);
  return img;
}

struct Made {
  std::vector<MediaRequest> requests;
  size_t of_task(const PipelineConfig& cfg, const std::string& name) const {
    size_t n = 0;
    for (const MediaRequest& r : requests) n += cfg.tasks[r.task].name == name;
    return n;
  }
};

Made take_all(StreamWindows& w, Made m = {}) {
  for (MediaRequest& r : w.take()) m.requests.push_back(std::move(r));
  return m;
}

}  // namespace

BOOST_AUTO_TEST_CASE(used_units_count_each_unit_once_in_any_order) {
  UsedUnits u;
  BOOST_TEST(u.mark(10, 20) == 10);
  BOOST_TEST(u.mark(0, 5) == 5);    // earlier than what is already there
  BOOST_TEST(u.mark(15, 25) == 5);  // overlaps: only 20..25 is new
  BOOST_TEST(u.mark(5, 10) == 5);   // fills the hole: one range 0..25
  BOOST_TEST(u.mark(3, 24) == 0);   // all seen
  BOOST_TEST(u.mark(30, 30) == 0);  // empty
  BOOST_TEST(u.count() == 25);
  BOOST_TEST(u.ranges() == 1u);
  BOOST_TEST(u.mark(40, 41) == 1);
  BOOST_TEST(u.mark(50, 51) == 1);
  BOOST_TEST(u.ranges() == 3u);
  u.forget_below(41);  // 0..25 and 40..41 can no longer be reached
  BOOST_TEST(u.ranges() == 1u);
  BOOST_TEST(u.count() == 27);  // forgetting never uncounts
  BOOST_TEST(u.mark(50, 52) == 1);
}

// Overlapping transcription windows (hop < window) share most of their audio; each 40 ms frame
// still counts once.
BOOST_AUTO_TEST_CASE(overlapping_windows_count_each_audio_frame_once) {
  const PipelineConfig cfg =
      config("  - {name: speech, kind: transcribe, window_s: 10, hop_s: 4}\n");
  StreamWindows w(cfg, 0);
  feed_audio(w, 30.0);
  w.on_end();
  const Made m = take_all(w);
  // Full windows [0, 10) ... [20, 30); the end of the file would close [24, 30), all of it
  // already in [20, 30): no request (StreamWindows::kMinRemainder).
  BOOST_TEST(m.requests.size() == 6u);
  BOOST_TEST(m.requests.back().start_s == 20.0);
  BOOST_TEST(w.stats().audio_frames_in == 30 * kFramesPerSecond);
  BOOST_TEST(w.stats().audio_frames_used == 30 * kFramesPerSecond);
}

// Tasks fire in config order for the same audio: here the prompt's window [7, 10) is made before
// the transcription's [5, 10) although it starts later. Every frame of [0, 30) is in a request
// and must be counted, whatever the order requests were made in.
BOOST_AUTO_TEST_CASE(audio_used_out_of_order_by_two_tasks_is_counted_once_and_fully) {
  const std::string ask =
      "  - {name: ask, kind: prompt, prompt: 'What was said?', interval_s: 10, "
      "frames_per_request: 0, include_audio_s: 3}\n";
  const std::string speech = "  - {name: speech, kind: transcribe, window_s: 5}\n";
  {
    const PipelineConfig cfg = config(ask + speech);
    StreamWindows w(cfg, 0);
    feed_audio(w, 30.0);
    w.on_end();
    const Made m = take_all(w);
    BOOST_TEST(m.of_task(cfg, "ask") == 3u);
    BOOST_TEST(m.of_task(cfg, "speech") == 6u);
    BOOST_TEST(w.stats().audio_frames_in == 750);
    BOOST_TEST(w.stats().audio_frames_used == 750);
  }
  {  // The prompt alone uses [7, 10), [17, 20), [27, 30): 3 × 3 s.
    const PipelineConfig cfg = config(ask);
    StreamWindows w(cfg, 0);
    feed_audio(w, 30.0);
    w.on_end();
    BOOST_TEST(take_all(w).requests.size() == 3u);
    BOOST_TEST(w.stats().audio_frames_in == 750);
    BOOST_TEST(w.stats().audio_frames_used == 3 * 3 * kFramesPerSecond);
  }
}

// Two describe tasks keep some of the same frames; a frame in both tasks' requests is one frame
// used. 1 frame per second for 30 s: `scene` keeps 0, 10, 20; `scene5` keeps 0, 5, ..., 25.
BOOST_AUTO_TEST_CASE(a_video_frame_shared_by_two_tasks_is_counted_once) {
  const PipelineConfig cfg = config(
      "  - {name: scene, kind: describe, interval_s: 10, image_budget: 70}\n"
      "  - {name: scene5, kind: describe, interval_s: 5, image_budget: 70}\n");
  StreamWindows w(cfg, 0);
  for (int t = 0; t < 30; ++t) w.on_video(tiny_frame(), t);
  w.on_end();
  const Made m = take_all(w);
  BOOST_TEST(m.of_task(cfg, "scene") == 3u);
  BOOST_TEST(m.of_task(cfg, "scene5") == 6u);
  size_t frames_in_requests = 0;
  for (const MediaRequest& r : m.requests) frames_in_requests += r.frames.size();
  BOOST_TEST(frames_in_requests == 9u);  // 3 frames go to both tasks...
  BOOST_TEST(w.stats().video_frames_in == 30);
  BOOST_TEST(w.stats().video_frames_used == 6);  // ...and are 3 frames used, not 6
}

// A frame a task skips (its slot is taken) is not used; one frame per request over several slots
// is. With 2 frames per 10 s interval at 1 fps: frames 0 and 5 of each interval.
BOOST_AUTO_TEST_CASE(frames_skipped_by_every_task_are_not_used) {
  const PipelineConfig cfg = config(
      "  - {name: scene, kind: describe, interval_s: 10, frames_per_request: 2, "
      "image_budget: 70}\n");
  StreamWindows w(cfg, 0);
  for (int t = 0; t < 40; ++t) w.on_video(tiny_frame(), t);
  w.on_end();
  const Made m = take_all(w);
  BOOST_REQUIRE_EQUAL(m.requests.size(), 4u);
  BOOST_TEST(m.requests[1].frame_times == std::vector<double>({10.0, 15.0}));
  BOOST_TEST(w.stats().video_frames_in == 40);
  BOOST_TEST(w.stats().video_frames_used == 8);
}

// Frames are counted on the audio received: a gap (lost media, not a multiple of 640 samples)
// moves the timeline but neither adds frames nor shifts the count of those after it.
BOOST_AUTO_TEST_CASE(audio_frames_around_a_gap_are_counted_on_what_was_received) {
  const PipelineConfig cfg = config("  - {name: speech, kind: transcribe, window_s: 2}\n");
  StreamWindows w(cfg, 0);
  feed_audio(w, 5.0);
  w.on_gap(0.0123);  // 196.8 samples → 197 on the timeline
  feed_audio(w, 5.0);
  w.on_end();
  const Made m = take_all(w);
  // [0,2) [2,4) [4,5) closed by the gap; then three more from the gap's end.
  BOOST_TEST(m.requests.size() == 6u);
  BOOST_TEST(m.requests[3].start_s == (5 * kRate + 197) / double(kRate));
  BOOST_TEST(w.stats().audio_frames_in == 10 * kFramesPerSecond);
  BOOST_TEST(w.stats().audio_frames_used == 10 * kFramesPerSecond);
}

// A live source that stops delivering closes its open windows at once (they are not held until it
// comes back, which may be never); the gap reported on its return then closes nothing more.
BOOST_AUTO_TEST_CASE(a_lost_source_closes_its_open_windows_at_once) {
  const PipelineConfig cfg = config(
      "  - {name: speech, kind: transcribe, window_s: 2}\n"
      "  - {name: ask, kind: prompt, prompt: 'What?', interval_s: 2, frames_per_request: 0, "
      "include_audio_s: 2}\n",
      "rtsp://cam/live");
  StreamWindows w(cfg, 0);
  feed_audio(w, 3.5);
  Made m = take_all(w);
  BOOST_TEST(m.requests.size() == 2u);  // [0, 2) of each task
  w.on_lost();
  m = take_all(w);
  BOOST_TEST_REQUIRE(m.requests.size() == 2u);  // [2, 3.5) of each, now
  for (const MediaRequest& r : m.requests) {
    BOOST_TEST(r.start_s == 2.0);
    BOOST_TEST(r.end_s == 3.5);
  }
  w.on_gap(4.0);  // the source is back after 4 s: nothing was open
  BOOST_TEST(take_all(w).requests.empty());
  feed_audio(w, 2.0);
  m = take_all(w);
  BOOST_TEST_REQUIRE(m.requests.size() == 2u);
  BOOST_TEST(m.requests[0].start_s == 7.5);  // windows start where media resumed
  BOOST_TEST(m.requests[0].end_s == 9.5);
  w.on_lost();  // lost again right away: no empty requests
  w.on_lost();
  BOOST_TEST(take_all(w).requests.empty());
}

// A gap or the end of a file closes a window early; its remainder is worth a request only with
// at least 0.5 s of audio no earlier window covered. A file shorter than that still gets one.
BOOST_AUTO_TEST_CASE(a_short_remainder_before_a_gap_or_the_end_is_not_a_request) {
  const PipelineConfig cfg = config("  - {name: speech, kind: transcribe, window_s: 2}\n");
  {
    StreamWindows w(cfg, 0);
    feed_audio(w, 4.11);  // [0,2) [2,4), then 0.11 s
    w.on_gap(1.0);
    feed_audio(w, 2.6);  // [5.11,7.11), then 0.6 s
    w.on_end();
    const Made m = take_all(w);
    BOOST_TEST_REQUIRE(m.requests.size() == 4u);
    BOOST_TEST(m.requests[1].end_s == 4.0);  // the 0.11 s before the gap made none
    BOOST_TEST(m.requests[2].start_s == 5.11);
    BOOST_TEST(m.requests[3].start_s == 7.11);  // 0.6 s at the end did
    BOOST_TEST(m.requests[3].end_s == 7.71);
    BOOST_TEST(w.stats().audio_frames_used < w.stats().audio_frames_in);
  }
  {
    StreamWindows w(cfg, 0);
    feed_audio(w, 0.3);  // a 0.3 s file: its one request
    w.on_end();
    BOOST_TEST(take_all(w).requests.size() == 1u);
  }
}

// Requests say whether the scheduler may drop them: the stream's overflow policy decides, not its
// kind (a live stream set to `block` waits instead of losing work).
BOOST_AUTO_TEST_CASE(requests_are_droppable_exactly_when_the_stream_drops_the_oldest) {
  const std::string task = "  - {name: speech, kind: transcribe, window_s: 1}\n";
  const auto droppable = [&](const std::string& url, const std::string& extra) {
    const PipelineConfig cfg = config(task, url, extra);
    StreamWindows w(cfg, 0);
    feed_audio(w, 1.0);
    const Made m = take_all(w);
    BOOST_REQUIRE_EQUAL(m.requests.size(), 1u);
    return m.requests[0].droppable;
  };
  BOOST_TEST(droppable("rtsp://127.0.0.1/cam", "") == true);
  BOOST_TEST(droppable("rtsp://127.0.0.1/cam", "    queue: {overflow: block}\n") == false);
  BOOST_TEST(droppable("clip.mkv", "") == false);
}

// ---- Early prefill pieces (TaskConfig::streaming_prefill_s; not a YAML key yet)

namespace {

// Audio whose every sample says where it is on the timeline, so pieces can be checked exactly.
void feed_ramp(StreamWindows& w, int64_t from, int64_t to, int packet = 1000) {
  for (int64_t at = from; at < to; at += packet) {
    std::vector<float> v(static_cast<size_t>(std::min<int64_t>(packet, to - at)));
    for (size_t i = 0; i < v.size(); ++i)
      v[i] = static_cast<float>(at + static_cast<int64_t>(i)) / 1e6f;
    w.on_audio(v);
  }
}

struct Early {
  std::map<int64_t, std::vector<const AudioPiece*>> pieces;  // by window start
  std::vector<int64_t> abandoned;
  std::vector<EarlyPrefill> all;
  void add(std::vector<EarlyPrefill> more) {
    for (auto& e : more) all.push_back(std::move(e));
    pieces.clear();
    abandoned.clear();
    for (const auto& e : all) {
      if (const auto* p = std::get_if<AudioPiece>(&e))
        pieces[p->window_start].push_back(p);
      else
        abandoned.push_back(std::get<AbandonedWindow>(e).window_start);
    }
  }
};

PipelineConfig streaming_config(const std::string& task, double piece_s) {
  PipelineConfig cfg = config(task);
  cfg.tasks[0].streaming_prefill_s = piece_s;
  return cfg;
}

}  // namespace

// A 5 s window with 1 s pieces: the first four seconds go ahead as pieces of whole frames, in
// order, each exactly the request's audio at its place; the request carries the window's key.
BOOST_AUTO_TEST_CASE(an_open_window_hands_its_audio_on_in_whole_frame_pieces) {
  const PipelineConfig cfg =
      streaming_config("  - {name: speech, kind: transcribe, window_s: 5}\n", 1.0);
  StreamWindows w(cfg, 0);
  Early e;
  std::vector<MediaRequest> reqs;
  for (int64_t at = 0; at < 12 * kRate; at += 3000) {  // packets not aligned to frames
    feed_ramp(w, at, at + 3000, 3000);
    // Every piece of a window was taken before (or with) its request.
    for (MediaRequest& r : w.take()) {
      BOOST_TEST(r.window_start == static_cast<int64_t>(r.start_s * kRate));
      BOOST_TEST(e.pieces.count(r.window_start) == 1u);
      reqs.push_back(std::move(r));
    }
    e.add(w.take_early());
  }
  BOOST_REQUIRE_EQUAL(reqs.size(), 2u);  // [0, 5) and [5, 10)
  for (const MediaRequest& r : reqs) {
    const auto& ps = e.pieces.at(r.window_start);
    BOOST_REQUIRE_EQUAL(ps.size(), 4u);
    int64_t expect = r.window_start;
    for (const AudioPiece* p : ps) {
      BOOST_TEST(p->first_sample == expect);
      BOOST_REQUIRE_EQUAL(p->samples.size(), static_cast<size_t>(kRate));  // 25 frames
      // The piece is the request's audio at the same place, sample for sample.
      const size_t off = static_cast<size_t>(p->first_sample - r.audio_first_sample);
      BOOST_TEST(std::equal(p->samples.begin(), p->samples.end(), r.audio.begin() + off));
      expect += kRate;
    }
  }
  // [10, 15) is open at 12 s: two pieces so far.
  BOOST_TEST(e.pieces.at(10 * kRate).size() == 2u);
  BOOST_TEST(e.abandoned.empty());
  // The end of the file closes it as a remainder (2 s ≥ kMinRemainder): a request, no abandon.
  w.on_end();
  const auto last = w.take();
  BOOST_REQUIRE_EQUAL(last.size(), 1u);
  BOOST_TEST(last[0].window_start == 10 * kRate);
  e.add(w.take_early());
  BOOST_TEST(e.abandoned.empty());
}

// Overlapping windows (4 s every 2 s) each get their own pieces of the shared audio; a piece size
// that is not a whole number of frames is rounded to one (0.5 s → 13 frames).
BOOST_AUTO_TEST_CASE(overlapping_windows_each_get_pieces) {
  const PipelineConfig cfg =
      streaming_config("  - {name: speech, kind: transcribe, window_s: 4, hop_s: 2}\n", 0.5);
  StreamWindows w(cfg, 0);
  feed_ramp(w, 0, 5 * kRate);
  Early e;
  e.add(w.take_early());
  const std::vector<MediaRequest> reqs = w.take();
  BOOST_REQUIRE_EQUAL(reqs.size(), 1u);  // [0, 4)
  BOOST_TEST(reqs[0].window_start == 0);
  const int64_t piece = 13 * 640;
  // [0, 4): floor(4 s / piece) = 7 pieces (the 8th would pass 4 s: the request came instead);
  // [2, 6) open at 5 s: 3 s → 5 pieces; [4, 8): 1 s → 1 piece.
  BOOST_TEST(e.pieces.at(0).size() == static_cast<size_t>(4 * kRate / piece));
  BOOST_TEST(e.pieces.at(2 * kRate).size() == static_cast<size_t>(3 * kRate / piece));
  BOOST_TEST(e.pieces.at(4 * kRate).size() == static_cast<size_t>(1 * kRate / piece));
  for (const auto& [start, ps] : e.pieces)
    for (const AudioPiece* p : ps) {
      BOOST_TEST(p->samples.size() == static_cast<size_t>(piece));
      BOOST_TEST((p->first_sample - start) % piece == 0);
      BOOST_TEST(p->samples.front() == static_cast<float>(p->first_sample) / 1e6f);
    }
}

// Windows that had pieces and get no request are abandoned: a silent window (the gate), and
// after a gap every window still open except the one the gap closes as a remainder.
BOOST_AUTO_TEST_CASE(windows_without_a_request_are_abandoned) {
  {
    const PipelineConfig cfg = streaming_config(
        "  - {name: speech, kind: transcribe, window_s: 2, silence_gate: {enabled: true}}\n", 0.5);
    StreamWindows w(cfg, 0);
    for (int i = 0; i < 48; ++i) w.on_audio(std::vector<float>(1000, 0.0f));  // 3 s of silence
    Early e;
    e.add(w.take_early());
    BOOST_TEST(w.take().empty());
    BOOST_TEST(w.stats().silent_skipped == 1);
    BOOST_TEST(e.abandoned == std::vector<int64_t>{0});
    BOOST_TEST(e.pieces.count(2 * kRate) == 1u);  // [2, 4) is open, with 1 s of pieces
  }
  {
    const PipelineConfig cfg =
        streaming_config("  - {name: speech, kind: transcribe, window_s: 4, hop_s: 2}\n", 0.5);
    StreamWindows w(cfg, 0);
    feed_ramp(w, 0, 5 * kRate);
    (void)w.take();
    Early e;
    e.add(w.take_early());
    w.on_gap(3.0);
    e.add(w.take_early());
    const auto reqs = w.take();
    // The gap closes [2, 5) as a remainder (1 s not covered by [0, 4): wanted) with its key;
    // [4, ...) had a piece and is abandoned.
    BOOST_REQUIRE_EQUAL(reqs.size(), 1u);
    BOOST_TEST(reqs[0].window_start == 2 * kRate);
    BOOST_TEST(e.abandoned == std::vector<int64_t>{4 * kRate});
  }
  {  // Off: no pieces, no keys.
    const PipelineConfig cfg = config("  - {name: speech, kind: transcribe, window_s: 2}\n");
    StreamWindows w(cfg, 0);
    feed_ramp(w, 0, 5 * kRate);
    w.on_end();
    BOOST_TEST(w.take_early().empty());
    for (const MediaRequest& r : w.take()) BOOST_TEST(r.window_start == -1);
  }
}
