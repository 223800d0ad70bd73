#pragma once
// One configured stream's input: FFmpeg demux + decode on the source's own thread (network waits
// never block a TBB worker), reconnecting live inputs with exponential backoff, and reporting each
// loss as a gap. Video frames are placed on the stream timeline (seconds since the stream began,
// continuous across reconnects); audio arrives as 16 kHz mono samples in order.
#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "media/image.h"
#include "pipeline/config.h"

namespace rawflow::nodes {

struct SourceEvents {
  std::function<void(media::RgbImage&& image, double timeline_s)> video;
  std::function<void(std::vector<float>&& samples)> audio;
  // Media was lost for `seconds` (wall clock, from the end of a connection until the next one
  // delivered): one call per outage, made when media flows again.
  std::function<void(double seconds, const std::string& why)> gap;
  // A problem worth an error event (open failure, decode errors); the source keeps trying.
  std::function<void(const std::string& message)> error;
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
};

class Source {
 public:
  Source(const rawflow::StreamConfig& cfg, double video_sample_fps, SourceEvents events);
  ~Source();  // stops and joins
  void start();
  void stop();  // interrupts a blocking read; returns once the thread ended
  const SourceCounters& counters() const { return counters_; }

 private:
  void run();
  // Reads one connection until it ends; returns true when the input ended normally (EOF).
  bool read_connection(double& timeline_offset,
                       std::optional<std::chrono::steady_clock::time_point>& lost_at);
  bool sleep_unless_stopped(double seconds);

  rawflow::StreamConfig cfg_;
  double sample_fps_;
  SourceEvents ev_;
  SourceCounters counters_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace rawflow::nodes
