#pragma once
// The decoder node: a DecodeJob becomes a GenerationRequest of its task (sampling, token limit,
// deadline, droppable when its stream is live) on the batch scheduler, which decodes every
// stream's requests together on its own thread (continuous batching, pipeline/batch_scheduler.h).
// The request's partials and its final (or error) come back as Outcomes through `emit`, on the
// scheduler's thread, and `done` runs once after the last of them. The node also keeps the
// per-task series (latency, tokens) and counts the requests that ended unfinished.
//
// Streaming prefill: a window's first PrefillPiece opens an engine request (BatchScheduler's open
// requests) that its later pieces extend, and the window's DecodeJob brings the closing piece and
// the request's identity (RequestInfo), which the engine request's outcomes carry from then on.
// An engine request that ends before its window's DecodeJob (dropped under pressure, an error)
// is reported when that job arrives; an abandoned window's request is cancelled silently.
//
// Graph use: the body of a serial async_node (a window's pieces reach the engine in order) whose
// gateway `emit` puts into (the gateway reserves the graph from submission to `done`, so
// wait_for_all waits for the engine). After close(), jobs are finished at once as cancelled and
// pieces are dropped: the engine has stopped.
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
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

  // `emit` and `done` must stay valid until `done` has run. Calls must not overlap.
  void operator()(pipeline::DecoderWork work, Emit emit, std::function<void()> done);
  // From now on jobs are cancelled without reaching the scheduler. Call before the scheduler's
  // cancel_all(), so that no job slips in after it.
  void close();

 private:
  struct OpenWindow;
  using WindowKey = std::tuple<size_t, size_t, int64_t>;  // stream, task, window_start

  void submit_job(pipeline::DecodeJob job, Emit emit, std::function<void()> done);
  void close_window(pipeline::DecodeJob job, Emit emit, std::function<void()> done);
  void take_piece(pipeline::PrefillPiece piece, Emit emit, std::function<void()> done);
  // The request's GenerationRequest of its task, without prompt and callbacks.
  pipeline::GenerationRequest request_of(size_t stream, size_t task, bool droppable) const;
  // A request's partial outcome (new text).
  void emit_partial(const pipeline::RequestInfo& r, const pipeline::TokenDelta& d,
                    const Emit& emit) const;
  // A request ended: its series, then its final (or error) outcome.
  void report(const pipeline::RequestInfo& r, const pipeline::GenerationResult& res,
              const Emit& emit);
  // Ends a job that never reached the scheduler as cancelled.
  void cancel_unsubmitted(const pipeline::DecodeJob& job, const Emit& emit);
  pipeline::Outcome final_of(const pipeline::RequestInfo& r,
                             const pipeline::GenerationResult& res) const;

  const PipelineConfig& cfg_;
  pipeline::BatchScheduler& scheduler_;
  std::vector<pipeline::StreamHandles*> streams_;
  std::string model_;
  std::mutex mu_;  // submissions against close(); windows_
  bool closed_ = false;
  std::map<WindowKey, std::shared_ptr<OpenWindow>>
      windows_;  // opened, neither closed nor abandoned
};

}  // namespace rawflow::nodes
