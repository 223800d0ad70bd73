#include "nodes/framing.h"

#include <algorithm>
#include <iterator>

namespace rawflow::nodes {

using pipeline::ResultEvent;

void WallClockAnchors::on_media(double t, SystemClock::time_point arrived) {
  const SystemClock::time_point origin =
      arrived - std::chrono::duration_cast<SystemClock::duration>(std::chrono::duration<double>(t));
  if (reanchor_ || anchors_.empty()) {
    reanchor_ = false;
    if (anchors_.size() == kMaxAnchors) anchors_.erase(anchors_.begin());
    anchors_.push_back({t, origin});
  } else {
    anchors_.back().origin = std::min(anchors_.back().origin, origin);
  }
}

std::optional<WallClockAnchors::SystemClock::time_point> WallClockAnchors::at(double t) const {
  if (anchors_.empty()) return std::nullopt;
  auto it = std::upper_bound(anchors_.begin(), anchors_.end(), t,
                             [](double v, const Anchor& a) { return v < a.from_t; });
  const Anchor& a = it == anchors_.begin() ? *it : *std::prev(it);
  return a.origin +
         std::chrono::duration_cast<SystemClock::duration>(std::chrono::duration<double>(t));
}

Framing::Framing(const PipelineConfig& cfg, size_t stream, pipeline::StreamHandles& handles,
                 pipeline::RunTally& tally, std::string model)
    : cfg_(cfg),
      stream_(stream),
      live_(cfg.streams[stream].kind == StreamKind::Live),
      metrics_(handles.metrics),
      ledger_(handles.ledger),
      tally_(tally),
      model_(std::move(model)),
      windows_(cfg, stream) {}

FramingOutput Framing::operator()(const pipeline::SourceUnit& u) {
  metrics_.queue_windows.add(-1);
  FramingOutput out;
  if (const auto* v = std::get_if<pipeline::VideoUnit>(&u.body)) {
    if (live_) anchors_.on_media(v->t, u.arrived);
    windows_.on_video(v->image, v->t);
  } else if (const auto* a = std::get_if<pipeline::AudioUnit>(&u.body)) {
    if (live_) anchors_.on_media(a->t, u.arrived);
    windows_.on_audio(a->samples);
  } else if (const auto* gap = std::get_if<pipeline::GapUnit>(&u.body)) {
    on_gap(*gap, out);
  } else if (const auto* err = std::get_if<pipeline::ErrorUnit>(&u.body)) {
    on_error(*err, out);
  } else if (std::holds_alternative<pipeline::LostUnit>(u.body)) {
    windows_.on_lost();
  } else {
    windows_.on_end();
  }
  publish_window_counts();
  out.early = windows_.take_early();
  out.requests = windows_.take();
  for (pipeline::MediaRequest& r : out.requests) {
    r.start_utc = media_utc(r.start_s);
    r.media_complete = u.arrived_steady;
  }
  if (!out.requests.empty()) {
    ledger_.made(static_cast<int64_t>(out.requests.size()));
    tally_.requests += static_cast<int64_t>(out.requests.size());
  }
  if (const auto* end = std::get_if<pipeline::EndUnit>(&u.body); end && ledger_.end(end->ok))
    out.events.push_back(pipeline::end_event(cfg_.streams[stream_].name, model_, end->ok));
  return out;
}

void Framing::on_gap(const pipeline::GapUnit& gap, FramingOutput& out) {
  if (live_) anchors_.on_gap();
  metrics_.gaps.inc();
  metrics_.gap_seconds.inc(gap.seconds);
  ResultEvent e = make_event(ResultEvent::Kind::Gap, cfg_.streams[stream_].name, "", "");
  e.media_start_s = windows_.timeline_time();
  e.media_start_utc = media_utc(e.media_start_s);
  windows_.on_gap(gap.seconds);
  e.media_end_s = windows_.timeline_time();
  e.text = gap.why;
  out.events.push_back(std::move(e));
  ++tally_.gaps;
}

void Framing::on_error(const pipeline::ErrorUnit& err, FramingOutput& out) {
  ResultEvent e = make_event(ResultEvent::Kind::Error, cfg_.streams[stream_].name, "", "");
  e.error = err.message;
  out.events.push_back(std::move(e));
  ++tally_.errors;
}

// The windows count frames (in, and used once each); the metrics get what changed since the last
// unit.
void Framing::publish_window_counts() {
  const pipeline::WindowStats& now = windows_.stats();
  pipeline::WindowStats& was = published_;
  const auto add = [](pipeline::Counter& c, int64_t from, int64_t to) {
    if (to != from) c.inc(static_cast<double>(to - from));
  };
  add(metrics_.video_frames_in, was.video_frames_in, now.video_frames_in);
  add(metrics_.video_frames_used, was.video_frames_used, now.video_frames_used);
  add(metrics_.audio_frames_in, was.audio_frames_in, now.audio_frames_in);
  add(metrics_.audio_frames_used, was.audio_frames_used, now.audio_frames_used);
  was = now;
}

std::string Framing::media_utc(double t) const {
  if (!live_) return {};
  const auto wall = anchors_.at(t);
  return wall ? pipeline::utc_iso8601(*wall) : std::string();
}

}  // namespace rawflow::nodes
