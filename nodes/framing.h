#pragma once
// The framing node of one stream: the source's units in order → the tasks' requests (audio windows
// of 40 ms frames, video frames per interval; pipeline/windows.h) and the stream's gap and error
// events. It also places a live stream's timeline on the wall clock (each request's start_utc)
// and keeps the stream's frame counters (rawflow_*_frames_{in,used}_total) up to date.
//
// Graph use: a serial multifunction_node per stream, fed by the stream's source gateway; output 0
// (early prefill, then requests) goes to the projection node, output 1 (events) to the sinks.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/config.h"
#include "pipeline/messages.h"
#include "pipeline/metrics.h"
#include "pipeline/run_tally.h"
#include "pipeline/stream_handles.h"
#include "pipeline/windows.h"

namespace rawflow::nodes {

// A live stream's timeline on the wall clock. Media cannot arrive before it is sent, and some
// arrives late (the demuxer's probe holds the first second or so back, then hands it over in a
// burst), so the best estimate of when timeline point 0 was live is the least of (arrival − t)
// over the units seen. One such origin per connection (a gap starts a new one): across a
// reconnect the timeline's gap only approximates the outage.
class WallClockAnchors {
 public:
  using SystemClock = std::chrono::system_clock;
  // A gap: the next media unit starts a new anchor.
  void on_gap() { reanchor_ = true; }
  void on_media(double t, SystemClock::time_point arrived);
  // The wall clock at timeline point `t`; nullopt before the first media.
  std::optional<SystemClock::time_point> at(double t) const;

 private:
  // Requests look back one window at most; old anchors are only kept for a while.
  static constexpr size_t kMaxAnchors = 256;
  struct Anchor {
    double from_t;                   // the connection's first timeline point
    SystemClock::time_point origin;  // wall clock of timeline point 0, as this connection runs
  };
  bool reanchor_ = true;
  std::vector<Anchor> anchors_;  // by from_t, increasing
};

struct FramingOutput {
  // Streaming prefill: pieces of open windows and abandoned windows, in order; a window's pieces
  // always come in an earlier output than its request.
  std::vector<pipeline::EarlyPrefill> early;
  std::vector<pipeline::MediaRequest> requests;  // in the order they were made
  std::vector<pipeline::ResultEvent> events;     // gap and error events
};

class Framing {
 public:
  // References are kept; the stream's ledger and `tally` learn of every request made and of the
  // end.
  Framing(const PipelineConfig& cfg, size_t stream, pipeline::StreamHandles& handles,
          pipeline::RunTally& tally, std::string model);

  FramingOutput operator()(const pipeline::SourceUnit& u);

 private:
  void on_gap(const pipeline::GapUnit& gap, FramingOutput& out);
  void on_error(const pipeline::ErrorUnit& err, FramingOutput& out);
  void publish_window_counts();
  // The wall clock at media time `t` of a live stream; "" for files and before any media.
  std::string media_utc(double t) const;

  const PipelineConfig& cfg_;
  size_t stream_;
  bool live_;
  pipeline::StreamMetrics& metrics_;
  pipeline::RequestLedger& ledger_;
  pipeline::RunTally& tally_;
  std::string model_;
  pipeline::StreamWindows windows_;
  pipeline::WindowStats published_;  // window counts already added to the metrics
  WallClockAnchors anchors_;
};

}  // namespace rawflow::nodes
