#pragma once
// Turns one stream's decoded units into requests, per task (the "windows/tasks" stage of the
// data path): transcribe takes `audio_window_s` of audio every `interval_s` (the hop); describe
// and prompt take `frames_per_request` frames spread over each `interval_s` of media plus the last
// `audio_window_s` of audio. Times are on the stream's own timeline: seconds of media since the
// stream started, continuous across reconnects (a gap advances it by its duration).
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "media/image.h"
#include "model/gemma4/audio_frames.h"
#include "pipeline/config.h"

namespace rawflow::pipeline {

// What identifies a request on its way through the graph, and what its events report. The
// projection and decoder nodes carry it on (messages.h) after the media are gone.
struct RequestInfo {
  uint64_t id = 0;
  size_t stream = 0;  // index into PipelineConfig::streams
  size_t task = 0;    // index into PipelineConfig::tasks
  // Per (stream, task), from 0 and without holes: the order its final results leave in.
  uint64_t sequence = 0;
  // The stream's overflow is drop_oldest (live streams by default): the projection node and the
  // scheduler may drop the request when the stream's queue is full.
  bool droppable = false;
  double start_s = 0, end_s = 0;  // media time covered
  std::string start_utc;          // live streams: wall clock at start_s (framing node); else ""
  std::chrono::steady_clock::time_point created;
  // When the unit that completed its media (or ended its window early) reached the graph: where
  // its final's latency_ms starts (framing node). Unset: no latency is reported.
  std::chrono::steady_clock::time_point media_complete{};
};

struct MediaRequest : RequestInfo {
  std::vector<media::RgbImage> frames;  // in time order
  std::vector<double> frame_times;
  std::vector<float> audio;        // 16 kHz mono, [start, end) of the audio part
  int64_t audio_first_sample = 0;  // timeline sample index of audio[0]
  // A transcribe window whose audio went ahead in AudioPieces: their window_start; else −1.
  int64_t window_start = -1;
  int64_t streamed_samples = 0;  // of the window's audio from window_start, in those pieces
};

// Early prefill of a transcribe window that is still open (TaskConfig::streaming_prefill_s): its
// audio so far in pieces of whole 40 ms frames from the window's start, so that the decoder can
// prefill them before the window closes (BatchScheduler's open requests). A window is keyed by
// (stream, task, window_start); its pieces come before its request (MediaRequest::window_start),
// and a window that had pieces but ends without a request (silence gate, a remainder too short to
// be worth one, a restart after a gap or loss, the end of a file) is abandoned.
struct AudioPiece {
  size_t stream = 0;
  size_t task = 0;
  int64_t window_start = 0;  // timeline sample of the window's first sample
  int64_t first_sample =
      0;  // timeline sample of samples[0]: window_start + a whole number of frames
  std::vector<float> samples;  // whole 640-sample frames
};
struct AbandonedWindow {
  size_t stream = 0;
  size_t task = 0;
  int64_t window_start = 0;
};
using EarlyPrefill = std::variant<AudioPiece, AbandonedWindow>;

// Units that went into requests, each counted once however many requests share it
// (docs/metrics.md). Audio frames are the 640-sample frames of the received audio (gaps excluded),
// numbered from the stream's start; a frame is used when one of its samples is in a request.
struct WindowStats {
  int64_t audio_frames_in = 0;    // 640-sample frames received (the last one may be partial)
  int64_t audio_frames_used = 0;  // of those, put into at least one request
  int64_t video_frames_in = 0;    // frames the source delivered (after its sampling)
  int64_t video_frames_used = 0;  // of those, put into at least one request
  int64_t silent_skipped = 0;     // requests the silence gate skipped
  int64_t empty_skipped = 0;      // describe intervals without a frame
};

// Which units (numbered in arrival order) went into at least one request, counting each once:
// requests may share units and be made out of order (tasks with different windows fire at
// different times). Memory stays bounded through forget_below().
class UsedUnits {
 public:
  // Marks units [begin, end); returns how many of them were not marked before.
  int64_t mark(int64_t begin, int64_t end);
  // A promise that no later mark() reaches below `n`: the bookkeeping there is released.
  void forget_below(int64_t n);
  int64_t count() const { return count_; }
  size_t ranges() const { return ranges_.size(); }

 private:
  std::map<int64_t, int64_t> ranges_;  // begin → end: disjoint, neither overlapping nor touching
  int64_t count_ = 0;
};

class StreamWindows {
 public:
  StreamWindows(const PipelineConfig& cfg, size_t stream_index);

  void on_audio(const std::vector<float>& samples);
  // `t` is the frame's time on the stream timeline (see StreamTimeline in the source).
  void on_video(const media::RgbImage& image, double t);
  // A live source stopped delivering: the windows open now are closed as they are and made into
  // requests at once, not when the source comes back; the next ones start where media resumes.
  void on_lost();
  // The source lost `seconds` of media: pending windows are closed as they are (if on_lost() has
  // not), the timeline moves.
  void on_gap(double seconds);
  // End of a file: the last partial windows become requests (audio zero-padded by the embedder).
  void on_end();

  // Requests made since the last call, in the order they were made.
  std::vector<MediaRequest> take();
  // Early-prefill pieces and abandoned windows since the last call, in order. A window's pieces
  // were all taken by an earlier call than its request or abandonment.
  std::vector<EarlyPrefill> take_early();
  const WindowStats& stats() const { return stats_; }
  // Seconds of audio received so far on the timeline (gaps included).
  double audio_time() const { return static_cast<double>(total_) / kRate; }
  // Where the stream is on the timeline: the audio clock, or for a stream without audio the
  // latest video frame (gaps included).
  double timeline_time() const { return received_ > 0 ? audio_time() : video_time_; }

 private:
  static constexpr int64_t kRate = kAudioSampleRate;
  struct HeldFrame {
    double t = 0;
    int64_t index = 0;  // arrival number, for counting each frame once
    media::RgbImage image;
  };
  struct TaskState {
    size_t task = 0;
    const TaskConfig* cfg = nullptr;
    int64_t next_start = 0;               // transcribe: timeline sample index of the next window
    int64_t covered_end = 0;              // transcribe: end of the last window made (0: none yet)
    double next_at = 0;                   // describe/prompt: end of the current interval
    uint64_t made = 0;                    // requests made: the next one's sequence number
    std::vector<HeldFrame> frames;        // kept for the current interval
    int64_t piece = 0;                    // transcribe: samples per early-prefill piece; 0 = off
    std::map<int64_t, int64_t> streamed;  // open window's start → end of its pieces so far
  };

  // A transcribe window's remainder, closed by a gap or the end of a file, gets a request only
  // when it holds at least this much audio that no earlier window covered: a 0.1 s tail, or
  // the part of an overlapping window its predecessor already transcribed, is not worth a
  // forward and would repeat words. A stream's first window always does (a short file).
  static constexpr int64_t kMinRemainder = kRate / 2;
  bool remainder_wanted(const TaskState& t) const;
  void close_open_windows();
  // Every task's next window starts at the timeline's current end (after a gap or a loss).
  void restart_windows();
  void fire_transcribe(TaskState& t, int64_t end);
  void stream_pieces(TaskState& t);
  // The windows that had pieces and will get no request: abandoned.
  void abandon_streamed(TaskState& t);
  void fire_interval(TaskState& t);
  void take_audio(MediaRequest& r, int64_t begin, int64_t end);
  bool passes_gate(const TaskConfig& t, const std::vector<float>& audio) const;
  void trim_audio();
  void count_audio_used(int64_t begin, int64_t end);
  int64_t oldest_held_frame() const;

  const PipelineConfig& cfg_;
  size_t stream_;
  bool droppable_;
  std::vector<TaskState> tasks_;
  std::deque<float> buf_;  // timeline samples [buf_first_, total_)
  int64_t buf_first_ = 0;
  int64_t total_ = 0;                 // timeline samples (gaps included)
  bool media_since_restart_ = false;  // audio or video arrived since restart_windows()
  double video_time_ = 0;             // the latest video frame's time, moved on by gaps
  int64_t received_ = 0;  // samples received (gaps excluded): total_ − received_ = gap samples
  UsedUnits audio_used_;  // received-audio frame numbers
  UsedUnits video_used_;  // video frame arrival numbers
  std::vector<MediaRequest> out_;
  std::vector<EarlyPrefill> early_;
  WindowStats stats_;
};

// Process-wide request ids (unique, increasing).
uint64_t next_request_id();

}  // namespace rawflow::pipeline
