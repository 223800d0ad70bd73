#include "nodes/source.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "media/input.h"
#include "media/media_error.h"

namespace rawflow::nodes {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

Source::Source(const rawflow::StreamConfig& cfg, double video_sample_fps, SourceEvents events)
    : cfg_(cfg), sample_fps_(video_sample_fps), ev_(std::move(events)) {}

Source::~Source() { stop(); }

void Source::start() {
  thread_ = std::thread([this] { run(); });
}

void Source::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

bool Source::sleep_unless_stopped(double seconds) {
  const auto until = Clock::now() + std::chrono::duration<double>(seconds);
  while (!stop_ && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return !stop_;
}

void Source::run() {
  const bool live = cfg_.kind == rawflow::StreamKind::Live;
  double timeline_offset = 0;
  double delay = cfg_.reconnect.initial_delay_s;
  int failures = 0;
  // Set while media is missing: from the end of a connection until the next one delivers.
  std::optional<Clock::time_point> lost_at;
  for (;;) {
    bool ended_normally = false;
    bool got_media = false;
    try {
      const int64_t before = counters_.video_frames + counters_.audio_samples;
      ended_normally = read_connection(timeline_offset, lost_at);
      got_media = counters_.video_frames + counters_.audio_samples > before;
    } catch (const media::MediaError& e) {
      ++counters_.errors;
      if (ev_.error) ev_.error(e.what());
    }
    if (stop_) break;
    if (!live) {
      if (ev_.end) ev_.end(ended_normally);
      return;
    }
    // A live input that ends, fails or stalls is reconnected; a connection that delivered media
    // resets the backoff.
    if (!lost_at) lost_at = Clock::now();
    if (got_media) {
      failures = 0;
      delay = cfg_.reconnect.initial_delay_s;
    } else if (++failures >= cfg_.reconnect.max_attempts && cfg_.reconnect.max_attempts > 0) {
      if (ev_.error)
        ev_.error("stream `" + cfg_.name + "`: giving up after " + std::to_string(failures) +
                  " failed connection attempts");
      if (ev_.end) ev_.end(false);
      return;
    }
    if (!sleep_unless_stopped(delay)) break;
    delay = std::min(delay * cfg_.reconnect.multiplier, cfg_.reconnect.max_delay_s);
    ++counters_.reconnects;
  }
  if (ev_.end) ev_.end(false);
}

bool Source::read_connection(double& timeline_offset,
                             std::optional<std::chrono::steady_clock::time_point>& lost_at) {
  media::InputOptions opt;
  opt.want_video = cfg_.video.enabled;
  opt.want_audio = cfg_.audio.enabled;
  opt.rtsp_transport = cfg_.rtsp_transport == rawflow::RtspTransport::Udp ? "udp" : "tcp";
  opt.open_timeout_s = cfg_.watchdog.open_timeout_s;
  opt.read_timeout_s = cfg_.watchdog.read_timeout_s;
  opt.video_min_interval_s = sample_fps_ > 0 ? 1.0 / sample_fps_ : 0;
  opt.cancel = &stop_;
  media::MediaInput in(cfg_.url, opt);
  // The connection's first pts is time 0 of this connection on the stream timeline.
  std::optional<double> first_pts;
  double last_t = 0;
  // One gap per outage, reported when media flows again, with the wall-clock time it lasted.
  auto resumed = [&] {
    if (!lost_at) return;
    const double lost = seconds_between(*lost_at, Clock::now());
    lost_at.reset();
    timeline_offset += lost;
    if (ev_.gap) ev_.gap(lost, "reconnected after a loss of input");
  };
  for (;;) {
    if (ev_.wait_for_room) ev_.wait_for_room();
    std::optional<media::MediaEvent> e = in.next();
    if (!e) return true;
    if (!std::holds_alternative<media::EndOfStream>(*e)) resumed();
    if (auto* v = std::get_if<media::VideoFrame>(&*e)) {
      if (!first_pts) first_pts = v->pts_s;
      last_t = std::max(last_t, v->pts_s - *first_pts);
      ++counters_.video_frames;
      if (ev_.video) ev_.video(std::move(v->image), timeline_offset + (v->pts_s - *first_pts));
    } else if (auto* a = std::get_if<media::AudioChunk>(&*e)) {
      if (!first_pts) first_pts = a->pts_s;
      last_t = std::max(last_t,
                        a->pts_s - *first_pts + static_cast<double>(a->samples.size()) / 16000.0);
      counters_.audio_samples += static_cast<int64_t>(a->samples.size());
      if (ev_.audio) ev_.audio(std::move(a->samples));
    } else {
      const auto& end = std::get<media::EndOfStream>(*e);
      timeline_offset += last_t;
      if (end.reason == media::EndReason::EndOfInput) return true;
      if (end.reason != media::EndReason::Interrupted) {
        ++counters_.errors;
        if (ev_.error)
          ev_.error("stream `" + cfg_.name + "`: " + media::end_reason_name(end.reason) +
                    (end.message.empty() ? "" : ": " + end.message));
      }
      return false;
    }
  }
}

}  // namespace rawflow::nodes
