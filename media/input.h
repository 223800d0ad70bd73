#pragma once
// Streaming input: pictures and sound from any libavformat URL (a file, rtsp://, http(s)://,
// udp://, pipe:) as RGB frames and 16 kHz mono chunks, with a watchdog so that a silent network
// source can never block its reader. The pipeline's sources and the one-shot decoders
// (media/decode.h) both read through this class, so there is one decode path.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "media/image.h"

namespace rawflow::media {

// Larger pictures are refused before rawflow allocates them (FFmpeg's own probe is bounded by the
// same pixel count). The pixel count is the default of InputOptions::max_picture_pixels, which a
// configuration may lower (`video.max_pixels`, `--max-pixels`).
inline constexpr int kMaxPictureSide = 16384;
inline constexpr int64_t kMaxPicturePixels = int64_t{1} << 28;
// An input with more streams is refused before FFmpeg probes them (each probed stream holds a
// decoder: 300 AAC tracks took 225 MB); a camera or a recording has a handful.
inline constexpr int kMaxStreams = 64;
// Audio outside these rates or with more channels is refused: no recording uses them, and a
// rate of 1 Hz would make a 200 kB WAV resample to 2 GB of 16 kHz samples.
inline constexpr int kMinAudioRate = 1000;
inline constexpr int kMaxAudioRate = 768000;
inline constexpr int kMaxAudioChannels = 64;

struct InputOptions {
  bool want_video = true;              // decode the best video stream, if the input has one
  bool want_audio = true;              // decode the best audio stream, if the input has one
  std::string rtsp_transport = "tcp";  // "tcp" or "udp"; used for rtsp:// and rtsps:// only
  double open_timeout_s = 10;          // watchdog budget for connect + probe (open)
  double read_timeout_s = 3;           // watchdog budget for one packet to arrive (reading)
  // Pictures with more pixels (or a side above kMaxPictureSide) are refused before they are
  // allocated: at open when the container states the size, else when the decoder learns it.
  int64_t max_picture_pixels = kMaxPicturePixels;
  double video_min_interval_s = 0;  // frames closer than this (pts) to the last converted one are
                                    // decoded but not converted to RGB and not reported
  // When set, only frames whose decode index it accepts are converted and reported.
  std::function<bool(int64_t frame_index)> keep_video_frame;
  // When set, storing true into it aborts open() and reading, like interrupt(), from any thread;
  // it lets a caller abort a MediaInput that is still being constructed.
  const std::atomic<bool>* cancel = nullptr;
};

struct VideoFrame {
  RgbImage image;
  double pts_s = 0;         // presentation time, seconds of media time (the container's clock)
  int64_t frame_index = 0;  // 0-based count of decoded frames of this stream, skipped ones included
};

// Resampled 16 kHz mono float. Chunks of one input follow each other without gaps or overlaps in
// sample order: first_sample is the running sample index (sum of the lengths of earlier chunks).
// pts_s is the media time of samples[0]; on a file it equals the first chunk's pts_s +
// first_sample / 16000 (within a sample); on a live source a jump shows a gap in the source.
struct AudioChunk {
  std::vector<float> samples;
  double pts_s = 0;
  int64_t first_sample = 0;
};

enum class EndReason {
  EndOfInput,   // the demuxer said EOF: end of a file, or a live server that closed/died
  Stalled,      // no packet within read_timeout_s (frozen link, stalled feeder)
  Interrupted,  // interrupt() or InputOptions::cancel
  Error,        // a read or decode error that ends the input; message says which
};
const char* end_reason_name(EndReason r);

struct EndOfStream {
  EndReason reason = EndReason::EndOfInput;
  std::string message;  // empty for EndOfInput; otherwise names the URL and the cause
  // Seconds from the last packet read (or the end of the open) to the end: where a live source's
  // media really stopped. About read_timeout_s for Stalled; near 0 for a server that died.
  double silent_s = 0;
};

using MediaEvent = std::variant<VideoFrame, AudioChunk, EndOfStream>;

struct StreamInfo {
  int index = 0;
  std::string kind;   // "video", "audio", "subtitle", "data", "attachment", "unknown"
  std::string codec;  // FFmpeg codec name, e.g. "h264", "aac", "png"
  int width = 0, height = 0;
  double fps = 0;  // average frame rate; 0 if unknown
  int sample_rate = 0, channels = 0;
  std::string channel_layout;        // e.g. "stereo"
  std::optional<double> duration_s;  // as the container states it
  int64_t frames = 0;                // frame count stated by the container; 0 if unknown
  bool attached_picture = false;     // cover art: never chosen as the video stream
};

struct MediaInfo {
  std::string url;
  std::string format;       // demuxer short name(s), e.g. "mov,mp4,m4a,3gp,3g2,mj2"
  std::string format_long;  // e.g. "QuickTime / MOV"
  std::optional<double> duration_s;
  double start_s = 0;
  int64_t bit_rate = 0;  // bits/s; 0 if unknown
  std::vector<StreamInfo> streams;

  // One line for the input, one per stream, for `rawflow inspect FILE`.
  std::string describe() const;
};

// One opened input. next() is called from one thread; interrupt() from any thread.
class MediaInput {
 public:
  // Opens and probes the input within options.open_timeout_s; throws MediaError naming the URL
  // (not found, empty, unreadable, not media, huge picture, no decoder, open budget exceeded).
  MediaInput(std::string url, InputOptions options = {});
  ~MediaInput();
  MediaInput(const MediaInput&) = delete;
  MediaInput& operator=(const MediaInput&) = delete;

  // The next frame or chunk; then exactly one EndOfStream; then std::nullopt forever. Frames and
  // chunks still inside the decoders are delivered before the EndOfStream whatever the reason.
  std::optional<MediaEvent> next();

  // Makes the current and every later blocking read return at once (EndReason::Interrupted).
  void interrupt();

  bool has_video() const;
  bool has_audio() const;
  // When the demuxer had opened the input, before the probe that reads its first packets: for a
  // live source the moment media started flowing again (what the probe reads is delivered
  // later, so it is not part of an outage).
  std::chrono::steady_clock::time_point opened_at() const;
  double video_fps() const;  // average frame rate of the chosen video stream; 0 if unknown
  const MediaInfo& info() const;
  const std::string& url() const;
  // Decoded video frames so far, those skipped by the options included.
  int64_t video_frames_decoded() const;
  // Packets the decoders rejected (they are skipped, as the ffmpeg CLI does) and the last reason.
  int64_t decode_errors() const;
  std::string last_decode_error() const;

  struct State;

 private:
  std::unique_ptr<State> s_;
};

// The URL with any user:password@ replaced, for messages and logs.
std::string redact_url(const std::string& url);

}  // namespace rawflow::media
