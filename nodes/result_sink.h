#pragma once
// Where results go: every output (ZeroMQ, JSONL file, stdout) takes the same events.
#include "pipeline/result.h"

namespace rawflow::nodes {

class ResultSink {
 public:
  virtual ~ResultSink() = default;
  // Hands one event on. Safe to call from several threads. Never waits on a consumer: a sink
  // that cannot keep up drops (and counts) instead. Throws only for a failure the sink cannot
  // recover from (a file that cannot be written), with what and where.
  virtual void publish(const pipeline::ResultEvent& e) = 0;
  // Delivers what is pending (bounded in time) and releases the resource. Idempotent; events
  // published after it are dropped (counted as `closed`).
  virtual void close() = 0;
};

}  // namespace rawflow::nodes
