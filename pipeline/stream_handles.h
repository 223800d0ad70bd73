#pragma once
// What the nodes of one stream share: its metric series, resolved once so that no unit looks a
// series up by name, and its request ledger. Made by the graph builder for every stream before
// any unit flows (so /metrics shows real zeros from the start); the nodes keep references.
#include <cstddef>
#include <map>

#include "pipeline/metrics.h"
#include "pipeline/request_ledger.h"

namespace rawflow::pipeline {

struct StreamHandles {
  explicit StreamHandles(StreamMetrics m)
      : metrics(m), ledger(metrics.queue_requests, metrics.queue_projection) {}
  StreamMetrics metrics;
  std::map<size_t, TaskMetrics> tasks;  // by task index, for the tasks the stream runs
  RequestLedger ledger;
};

}  // namespace rawflow::pipeline
