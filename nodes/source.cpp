#include "nodes/source.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

#include "media/input.h"
#include "media/media_error.h"

namespace rawflow::nodes {

// ---- StreamTimeline

double StreamTimeline::begin_connection(std::optional<double> outage_s) {
  first_pts_.reset();
  if (!any_media_) return 0;  // the stream's first media: time 0
  const double outage = std::max(0.0, outage_s.value_or(0.0));
  base_s_ = end_s_ + outage;
  end_s_ = base_s_;
  if (!has_audio_) return outage;
  // What the audio clock lacks of the new start: the outage, plus any audio that ended before the
  // video did on the previous connection.
  const int64_t skip = std::max<int64_t>(0, std::llround(base_s_ * kSampleRate) - audio_samples_);
  audio_samples_ += skip;
  return static_cast<double>(skip) / kSampleRate;
}

double StreamTimeline::video(double pts_s) {
  any_media_ = true;
  if (!first_pts_) first_pts_ = pts_s;
  const double t = base_s_ + (pts_s - *first_pts_);
  end_s_ = std::max(end_s_, t);
  return t;
}

double StreamTimeline::audio(double pts_s, int64_t samples) {
  any_media_ = true;
  has_audio_ = true;
  if (!first_pts_) first_pts_ = pts_s;
  const int64_t at = std::llround((base_s_ + (pts_s - *first_pts_)) * kSampleRate);
  int64_t skip = 0;
  // Only forward jumps are gaps; audio whose timestamps fall behind its clock (a source clock
  // going backwards) is kept in order rather than dropped.
  if (at - audio_samples_ > std::llround(kMaxAudioLagS * kSampleRate)) skip = at - audio_samples_;
  audio_samples_ += skip + samples;
  end_s_ = std::max(end_s_, audio_clock_s());
  return static_cast<double>(skip) / kSampleRate;
}

// ---- Source

namespace {

constexpr double kAudioRate = StreamTimeline::kSampleRate;

std::string seconds_text(double s) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f s", s);
  return b;
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
  double delay = cfg_.reconnect.initial_delay_s;
  int failures = 0;
  for (;;) {
    bool ended_normally = false;
    bool got_media = false;
    try {
      const int64_t before = counters_.video_frames + counters_.audio_samples;
      ended_normally = read_connection();
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
    if (ev_.reconnect) ev_.reconnect();
  }
  if (ev_.end) ev_.end(false);
}

void Source::report_gap(double seconds, const std::string& why) {
  if (seconds <= 0) return;
  ++counters_.gaps;
  if (ev_.gap) ev_.gap(seconds, why);
}

void Source::connection_delivers(Clock::time_point opened_at) {
  up_ = true;
  if (ev_.up) ev_.up(true);
  std::optional<double> outage;
  // The outage ends when the new connection opened: media flows from then, and what the probe
  // read before this first unit is delivered, not lost.
  if (lost_at_)
    outage = std::max(0.0, std::chrono::duration<double>(opened_at - *lost_at_).count());
  lost_at_.reset();
  report_gap(timeline_.begin_connection(outage),
             "reconnected after a loss of input of " + seconds_text(outage.value_or(0)));
}

bool Source::read_connection() {
  media::InputOptions opt;
  opt.want_video = cfg_.video.enabled;
  opt.want_audio = cfg_.audio.enabled;
  opt.rtsp_transport = cfg_.rtsp_transport == rawflow::RtspTransport::Udp ? "udp" : "tcp";
  opt.open_timeout_s = cfg_.watchdog.open_timeout_s;
  opt.read_timeout_s = cfg_.watchdog.read_timeout_s;
  opt.max_picture_pixels = cfg_.video.max_pixels;
  opt.video_min_interval_s = sample_fps_ > 0 ? 1.0 / sample_fps_ : 0;
  opt.cancel = &stop_;
  media::MediaInput in(cfg_.url, opt);
  check_streams(in);
  decode_errors_reported_ = 0;
  last_decode_report_.reset();
  const auto connection_over = [&] {
    report_decode_errors(in, /*flush=*/true);
    if (up_) {
      up_ = false;
      if (ev_.up) ev_.up(false);
    }
  };
  try {
    const bool ended = read_units(in);
    connection_over();
    return ended;
  } catch (...) {
    connection_over();
    throw;
  }
}

void Source::check_streams(const media::MediaInput& in) {
  const bool video_missing = cfg_.video.enabled && !in.has_video();
  const bool audio_missing = cfg_.audio.enabled && !in.has_audio();
  // Nothing a task needs: the input fails like one that cannot be opened (a live one is tried
  // again: a camera may come back with its streams).
  if ((video_missing || !cfg_.video.enabled) && (audio_missing || !cfg_.audio.enabled))
    throw media::MediaError(std::string("the input has no ") +
                            (cfg_.video.enabled && cfg_.audio.enabled ? "video or audio"
                             : cfg_.video.enabled                     ? "video"
                                                                      : "audio") +
                            " stream, which this stream's tasks need");
  // One stream of two missing: the other's tasks run; said once per source, not per reconnect.
  if (missing_reported_ || !(video_missing || audio_missing)) return;
  missing_reported_ = true;
  if (ev_.error)
    ev_.error("stream `" + cfg_.name + "`: the input has no " +
              (video_missing ? "video" : "audio") + " stream; the tasks that need " +
              (video_missing ? "video" : "audio") + " get nothing from it");
}

void Source::report_decode_errors(const media::MediaInput& in, bool flush) {
  const int64_t n = in.decode_errors() - decode_errors_reported_;
  if (n <= 0) return;
  const auto now = Clock::now();
  // The first error of a connection is reported at once; then at most every few seconds.
  if (!flush && last_decode_report_ &&
      now - *last_decode_report_ < std::chrono::duration<double>(kDecodeErrorReportS))
    return;
  decode_errors_reported_ += n;
  last_decode_report_ = now;
  counters_.decode_errors += n;
  if (ev_.decode_errors) ev_.decode_errors(n, in.last_decode_error());
}

bool Source::read_units(media::MediaInput& in) {
  bool delivered = false;
  for (;;) {
    if (ev_.wait_for_room) ev_.wait_for_room();
    std::optional<media::MediaEvent> e = in.next();
    report_decode_errors(in, /*flush=*/false);
    if (!e) return true;
    if (auto* end = std::get_if<media::EndOfStream>(&*e)) {
      // The media stopped with the last packet, not when the watchdog noticed.
      if (delivered)
        lost_at_ = Clock::now() - std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(end->silent_s));
      if (end->reason == media::EndReason::EndOfInput) return true;
      if (end->reason != media::EndReason::Interrupted) {
        ++counters_.errors;
        if (ev_.error)
          ev_.error("stream `" + cfg_.name + "`: " + media::end_reason_name(end->reason) +
                    (end->message.empty() ? "" : ": " + end->message));
      }
      return false;
    }
    if (!delivered) connection_delivers(in.opened_at());
    delivered = true;
    if (auto* v = std::get_if<media::VideoFrame>(&*e)) {
      ++counters_.video_frames;
      const double t = timeline_.video(v->pts_s);
      if (ev_.video) ev_.video(std::move(v->image), t);
    } else if (auto* a = std::get_if<media::AudioChunk>(&*e)) {
      const auto n = static_cast<int64_t>(a->samples.size());
      const double jump = timeline_.audio(a->pts_s, n);
      report_gap(jump, "no media for " + seconds_text(jump) + " (the timestamps jumped)");
      counters_.audio_samples += n;
      const double at = timeline_.audio_clock_s() - static_cast<double>(n) / kAudioRate;
      if (ev_.audio) ev_.audio(std::move(a->samples), at);
    }
  }
}

}  // namespace rawflow::nodes
