#pragma once
// `rawflow run`: the whole pipeline for one configuration, a oneTBB flow graph wired in one place
// (Pipeline::Impl::build_graph in pipeline/graph.cpp; the picture is in docs/architecture.md):
//
//   source[s] ──► framing[s] ──► projection ──► decoder ──► result_order ──► results ──► sink:*
//   async_node     multifunction  multifunction  async_node   multifunction    broadcast   function
//   FFmpeg thread  windows, gaps  embedders +    scheduler    finals in order               ZeroMQ,
//   per stream     per stream     prompt         thread       per stream+task               JSONL,
//                                                                                          stdout
// (framing's gap/error events go to `results`; the projection's errors to `result_order`.)
//
// Blocking work stays off TBB's workers: each source reads on its own thread and feeds its
// gateway; the engine's forwards run on the scheduler's thread, which feeds the decoder's gateway.
// The node bodies are in nodes/, one file each, testable without the graph.
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nodes/result_sink.h"
#include "pipeline/config.h"
#include "pipeline/graph_map.h"

namespace rawflow::pipeline {

class MetricsRegistry;

struct RunSummary {
  int64_t requests = 0, finals = 0, errors = 0, gaps = 0;
  int64_t audio_frames_in = 0, audio_frames_used = 0;  // over all streams
  int64_t video_frames_in = 0, video_frames_used = 0;
  int64_t forwards = 0, sequences_in_forwards = 0;  // over the engine's forward calls
  double max_sequences_per_forward = 0;
  bool stopped = false;           // by `stop`, not because every file ended
  int64_t cancelled_at_stop = 0;  // requests unfinished when the grace period ended
  double mean_sequences_per_forward() const {
    return forwards > 0 ? static_cast<double>(sequences_in_forwards) / forwards : 0;
  }
  // Busy time of the projection node and of the engine's forwards, and of that the time both
  // were busy at once (OverlapMeter).
  double projection_s = 0, forward_s = 0, overlap_s = 0;
};

// What a caller adds to a run configured by YAML (`rawflow batch`).
struct PipelineExtras {
  // Sinks after the configured ones (name, sink); they see every event.
  std::vector<std::pair<std::string, std::unique_ptr<nodes::ResultSink>>> sinks;
  // At most this many sources read at once, in stream order; the next starts when one ends
  // (0: all at once). Streams not started when a stop comes get no events.
  size_t max_active_sources = 0;
  // Called once the run's metrics registry exists, before /metrics serves it: the caller adds its
  // own series (batch progress). The registry lives as long as the Pipeline.
  std::function<void(MetricsRegistry&)> add_metrics;
};

class Pipeline {
 public:
  // Loads the engine, opens the sinks and builds the graph; nothing flows before run().
  explicit Pipeline(PipelineConfig cfg, PipelineExtras extras = {});
  ~Pipeline();
  // Runs until every file stream has ended and its work is done, or until `stop` becomes true
  // (live streams run until then). After a stop the work in flight may finish for
  // engine.shutdown_grace_s, or until `hurry` (a second signal) becomes true; then the rest is
  // cancelled. Returns what happened.
  RunSummary run(const std::atomic<bool>& stop, const std::atomic<bool>* hurry = nullptr);
  // The nodes and edges build_graph() made.
  const GraphMap& graph_map() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rawflow::pipeline
