#pragma once
// The decoder node: a DecodeJob becomes a GenerationRequest of its task (sampling, token limit,
// deadline, droppable when its stream is live) on the batch scheduler, which decodes every
// stream's requests together on its own thread (continuous batching, pipeline/batch_scheduler.h).
// The request's partials and its final (or error) come back as Outcomes through `emit`, on the
// scheduler's thread, and `done` runs once after the last of them. The node also keeps the
// per-task series (latency, tokens) and counts the requests that ended unfinished.
//
// Graph use: the body of an async_node whose gateway `emit` puts into (the gateway reserves the
// graph from submission to `done`, so wait_for_all waits for the engine). After close(), jobs are
// finished at once as cancelled: the engine has stopped.
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "pipeline/batch_scheduler.h"
#include "pipeline/config.h"
#include "pipeline/messages.h"
#include "pipeline/stream_handles.h"

namespace rawflow::nodes {

class Decoder {
 public:
  using Emit = std::function<void(pipeline::Outcome)>;
  // References are kept. `streams[i]` belongs to cfg.streams[i].
  Decoder(const PipelineConfig& cfg, pipeline::BatchScheduler& scheduler,
          std::vector<pipeline::StreamHandles*> streams, std::string model);

  // `emit` and `done` must stay valid until `done` has run.
  void operator()(pipeline::DecodeJob job, Emit emit, std::function<void()> done);
  // From now on jobs are cancelled without reaching the scheduler. Call before the scheduler's
  // cancel_all(), so that no job slips in after it.
  void close();

 private:
  pipeline::Outcome final_of(const pipeline::RequestInfo& r,
                             const pipeline::GenerationResult& res) const;

  const PipelineConfig& cfg_;
  pipeline::BatchScheduler& scheduler_;
  std::vector<pipeline::StreamHandles*> streams_;
  std::string model_;
  std::mutex mu_;  // submissions against close()
  bool closed_ = false;
};

}  // namespace rawflow::nodes
