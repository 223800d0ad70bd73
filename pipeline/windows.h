#pragma once
// Turns one stream's decoded units into requests, per task (the "windows/tasks" stage of the
// data path): transcribe takes `audio_window_s` of audio every `interval_s` (the hop); describe
// and prompt take `frames_per_request` frames spread over each `interval_s` of media plus the last
// `audio_window_s` of audio. Times are on the stream's own timeline: seconds of media since the
// stream started, continuous across reconnects (a gap advances it by its duration).
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "media/image.h"
#include "pipeline/config.h"

namespace rawflow::pipeline {

struct MediaRequest {
  uint64_t id = 0;
  size_t stream = 0;  // index into PipelineConfig::streams
  size_t task = 0;    // index into PipelineConfig::tasks
  bool live = false;
  double start_s = 0, end_s = 0;        // media time covered
  std::vector<media::RgbImage> frames;  // in time order
  std::vector<double> frame_times;
  std::vector<float> audio;        // 16 kHz mono, [start, end) of the audio part
  int64_t audio_first_sample = 0;  // timeline sample index of audio[0]
  std::chrono::steady_clock::time_point created;
};

struct WindowStats {
  int64_t audio_frames_in = 0;    // 640-sample frames received
  int64_t audio_frames_used = 0;  // 640-sample frames put into requests (counted once each)
  int64_t video_frames_in = 0;
  int64_t video_frames_used = 0;
  int64_t silent_skipped = 0;  // requests the silence gate skipped
  int64_t empty_skipped = 0;   // describe intervals without a frame
};

class StreamWindows {
 public:
  StreamWindows(const PipelineConfig& cfg, size_t stream_index);

  void on_audio(const std::vector<float>& samples);
  // `t` is the frame's time on the stream timeline (see StreamTimeline in the source).
  void on_video(const media::RgbImage& image, double t);
  // The source lost `seconds` of media: pending windows are closed as they are, the timeline moves.
  void on_gap(double seconds);
  // End of a file: the last partial windows become requests (audio zero-padded by the embedder).
  void on_end();

  // Requests made since the last call, in the order they were made.
  std::vector<MediaRequest> take();
  const WindowStats& stats() const { return stats_; }
  // Seconds of audio received so far on the timeline (gaps included).
  double audio_time() const { return static_cast<double>(total_) / kRate; }

 private:
  static constexpr int64_t kRate = 16000;
  struct TaskState {
    size_t task = 0;
    const TaskConfig* cfg = nullptr;
    int64_t next_start = 0;  // transcribe: timeline sample index of the next window
    double next_at = 0;      // describe/prompt: end of the current interval
    std::vector<std::pair<double, media::RgbImage>> frames;  // of the current interval
  };

  void fire_transcribe(TaskState& t, int64_t end);
  void fire_interval(TaskState& t);
  void take_audio(MediaRequest& r, int64_t begin, int64_t end);
  bool passes_gate(const TaskConfig& t, const std::vector<float>& audio) const;
  void trim_audio();
  void count_used(int64_t begin, int64_t end);

  const PipelineConfig& cfg_;
  size_t stream_;
  bool live_;
  std::vector<TaskState> tasks_;
  std::deque<float> buf_;  // timeline samples [buf_first_, total_)
  int64_t buf_first_ = 0;
  int64_t total_ = 0;
  int64_t used_until_ = 0;  // audio frames before this sample index were counted as used
  int64_t received_ = 0;    // samples received (gaps excluded)
  std::vector<MediaRequest> out_;
  WindowStats stats_;
};

// Process-wide request ids (unique, increasing).
uint64_t next_request_id();

}  // namespace rawflow::pipeline
