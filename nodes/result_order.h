#pragma once
// The result order node: finals (and errors) of one stream's task leave in the order their
// requests were made, even when the scheduler finishes a later window first; partials are not
// held back. A final also closes its request: the run's tally learns of it at once, the stream's
// ledger once the final has been put to the sinks (settle()), so that a stream's `end` event —
// made by whichever of this node and the framing node sees its last request close — always
// follows its last final.
//
// Why not one tbb::flow::sequencer_node: it orders one sequence, and a single sequence over all
// streams would hold every stream's results behind the slowest request of any of them. Order is
// needed per (stream, task) only, each numbered from 0 by the framing node (RequestInfo::sequence).
//
// A final's latency is measured here, as it is released: from its media's completion to this
// moment (ResultEvent::latency_ms and the stream and task's rawflow_request_latency_seconds), so a
// final held behind a slower one counts its wait.
//
// Graph use: a serial multifunction_node between the decoder (and the projection node's errors)
// and the sinks.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/messages.h"
#include "pipeline/run_tally.h"
#include "pipeline/stream_handles.h"

namespace rawflow::nodes {

class ResultOrder {
 public:
  // References are kept. `streams[i]` belongs to stream index i.
  ResultOrder(std::vector<pipeline::StreamHandles*> streams, pipeline::RunTally& tally);

  // The events that may leave now, in order.
  std::vector<pipeline::ResultEvent> operator()(pipeline::Outcome o);
  // After the events of operator() were put: closes their requests in the streams' ledgers, and
  // returns the `end` event of each stream whose last request that was.
  std::vector<pipeline::ResultEvent> settle();
  // Finals waiting for an earlier one (all streams).
  size_t held() const;

 private:
  struct Queue {
    uint64_t next = 0;                           // the sequence number to release next
    std::map<uint64_t, pipeline::Outcome> held;  // finished early, by sequence number
  };
  void release(pipeline::Outcome o, std::vector<pipeline::ResultEvent>& out);

  std::vector<pipeline::StreamHandles*> streams_;
  pipeline::RunTally& tally_;
  std::map<std::pair<size_t, size_t>, Queue> queues_;  // by (stream, task)
  struct Released {
    size_t stream;
    std::string name, model;
  };
  std::vector<Released> unsettled_;  // released by operator(), not yet in the ledgers
};

}  // namespace rawflow::nodes
