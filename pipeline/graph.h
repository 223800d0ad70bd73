#pragma once
// `rawflow run`: the whole pipeline for one configuration, wired in one place (pipeline/graph.cpp):
//
//   sources (own threads) ─► windows ─► projection ─► decoder (scheduler thread) ─► outputs
//   FFmpeg decode            tasks'      embedders     continuous batching          ZeroMQ, JSONL,
//   reconnect, gaps          requests    + prompt      over all streams             stdout, metrics
//
// windows, projection and outputs are oneTBB flow-graph nodes (serial: each keeps per-stream
// order); blocking work — network reads and the engine's forwards — stays on dedicated threads.
#include <atomic>
#include <memory>

#include "pipeline/config.h"

namespace rawflow::pipeline {

struct RunSummary {
  int64_t requests = 0, finals = 0, errors = 0, gaps = 0;
  int64_t audio_frames_in = 0, audio_frames_used = 0;  // over all streams
  int64_t video_frames_in = 0, video_frames_used = 0;
  double max_sequences_per_forward = 0;
};

class Pipeline {
 public:
  explicit Pipeline(PipelineConfig cfg);
  ~Pipeline();
  // Runs until every file stream has ended and its work is done, or until `stop` becomes true
  // (live streams run until then). Returns what happened.
  RunSummary run(const std::atomic<bool>& stop);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rawflow::pipeline
