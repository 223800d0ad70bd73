#pragma once
// One configured stream's input: FFmpeg demux + decode on the source's own thread (network waits
// never block a TBB worker), reconnecting live inputs with exponential backoff, and reporting each
// loss as a gap. Video frames are placed on the stream timeline (seconds since the stream began,
// continuous across reconnects); audio arrives as 16 kHz mono samples in order, kept on the same
// timeline by the gaps (StreamTimeline).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "media/image.h"
#include "model/gemma4/audio_frames.h"
#include "pipeline/config.h"

namespace rawflow::media {
class MediaInput;
}

namespace rawflow::nodes {

// The stream timeline: seconds of media since the stream's first unit, continuous across
// connections. Video frames are placed on it by their timestamps. Audio is delivered as samples
// in order, so its clock (samples delivered + gaps reported) is only right if every span of
// missing audio is reported as a gap: the outage between two connections (measured on the wall
// clock, from the last packet of one to the first unit of the next), and a jump of the audio
// timestamps within one connection (a feeder that stopped for less than the watchdog's budget,
// so no reconnect happened). One instance per stream, used by its source thread only.
class StreamTimeline {
 public:
  static constexpr int64_t kSampleRate = kAudioSampleRate;
  // Audio timestamps ahead of the audio clock by more than this are a gap. Below it: the offset
  // between the first audio and video timestamps of a connection, AAC frames (21 ms), jitter.
  static constexpr double kMaxAudioLagS = 0.25;

  // The first unit of a connection arrived, `outage_s` seconds (wall clock) after the previous
  // connection's last packet; no previous connection with media: nullopt. Returns the gap to
  // report (seconds, 0 for none): on a stream with audio it brings the audio clock to where the
  // new connection begins, so it also covers audio that ended before the video did.
  double begin_connection(std::optional<double> outage_s);
  // Time of a video frame on the timeline.
  double video(double pts_s);
  // Before an audio chunk is delivered: the gap to report first (seconds, 0 for none) when its
  // timestamp is ahead of the audio clock by more than kMaxAudioLagS. Then counts its samples.
  double audio(double pts_s, int64_t samples);

  double audio_clock_s() const { return static_cast<double>(audio_samples_) / kSampleRate; }
  // The furthest point any delivered unit reached.
  double end_s() const { return end_s_; }

 private:
  std::optional<double> first_pts_;  // of the current connection: its time `base_s_`
  double base_s_ = 0;
  double end_s_ = 0;
  int64_t audio_samples_ = 0;  // the audio clock, in samples (gaps included)
  bool has_audio_ = false;     // audio was delivered: the audio clock follows the timeline
  bool any_media_ = false;
};

struct SourceEvents {
  std::function<void(media::RgbImage&& image, double timeline_s)> video;
  // `timeline_s`: where the chunk's first sample sits on the stream timeline (the audio clock).
  std::function<void(std::vector<float>&& samples, double timeline_s)> audio;
  // `seconds` of media are missing here: the audio clock advances by them (StreamTimeline). Made
  // once per outage when media flows again, or before audio whose timestamps jumped.
  std::function<void(double seconds, const std::string& why)> gap;
  // A problem worth an error event (open failure, decode errors, a stall); the source keeps
  // trying.
  std::function<void(const std::string& message)> error;
  // Packets the decoder refused since the last call (they are skipped, as the ffmpeg CLI does),
  // with the last reason. Made at most every kDecodeErrorReportS per connection, and when it ends:
  // a corrupt feed is one report every few seconds, not one per packet.
  std::function<void(int64_t packets, const std::string& last_error)> decode_errors;
  // A live source is about to connect again (after its backoff delay).
  std::function<void()> reconnect;
  // The input delivers media (true, at a connection's first unit) or stopped delivering (false,
  // when that connection ended, failed or stalled).
  std::function<void(bool up)> up;
  // The stream is over: end of a file, or a live source that gave up (max_attempts).
  std::function<void(bool ok)> end;
  // Called before each unit is read; may block (file backpressure) until more work is wanted.
  std::function<void()> wait_for_room;
};

struct SourceCounters {
  std::atomic<int64_t> reconnects{0};
  std::atomic<int64_t> video_frames{0};
  std::atomic<int64_t> audio_samples{0};
  std::atomic<int64_t> errors{0};
  std::atomic<int64_t> decode_errors{0};
  std::atomic<int64_t> gaps{0};
};

class Source {
 public:
  static constexpr double kDecodeErrorReportS = 5.0;

  Source(const rawflow::StreamConfig& cfg, double video_sample_fps, SourceEvents events);
  ~Source();  // stops and joins
  void start();
  void stop();  // interrupts a blocking read; returns once the thread ended
  const SourceCounters& counters() const { return counters_; }

 private:
  using Clock = std::chrono::steady_clock;

  void run();
  // Reads one connection until it ends; returns true when the input ended normally (EOF).
  bool read_connection();
  bool read_units(media::MediaInput& in);
  // The input lacks a stream this source's tasks need: both (or the only one wanted) throws
  // media::MediaError; one of two is an error event, once per source.
  void check_streams(const media::MediaInput& in);
  // Hands on the decode errors `in` counted since the last report; unless `flush`, only when
  // kDecodeErrorReportS passed since then.
  void report_decode_errors(const media::MediaInput& in, bool flush);
  // The connection delivers its first unit: reports the outage before it (from the previous
  // connection's last packet to this one's open), if any.
  void connection_delivers(Clock::time_point opened_at);
  void report_gap(double seconds, const std::string& why);
  bool sleep_unless_stopped(double seconds);

  rawflow::StreamConfig cfg_;
  double sample_fps_;
  SourceEvents ev_;
  SourceCounters counters_;
  std::atomic<bool> stop_{false};
  StreamTimeline timeline_;
  // The last packet of the previous connection that delivered media, until the next one does.
  std::optional<Clock::time_point> lost_at_;
  bool up_ = false;                     // the current connection delivered media
  bool missing_reported_ = false;       // check_streams reported a missing stream
  int64_t decode_errors_reported_ = 0;  // of the current connection's MediaInput
  std::optional<Clock::time_point> last_decode_report_;
  std::thread thread_;
};

}  // namespace rawflow::nodes
