#include "nodes/result_order.h"

namespace rawflow::nodes {

using pipeline::ResultEvent;

ResultOrder::ResultOrder(std::vector<pipeline::StreamHandles*> streams, pipeline::RunTally& tally)
    : streams_(std::move(streams)), tally_(tally) {}

std::vector<ResultEvent> ResultOrder::operator()(pipeline::Outcome o) {
  std::vector<ResultEvent> out;
  if (!o.is_final()) {
    out.push_back(std::move(o.event));
    return out;
  }
  Queue& q = queues_[{o.request.stream, o.request.task}];
  if (o.request.sequence != q.next) {
    const uint64_t sequence = o.request.sequence;
    q.held.emplace(sequence, std::move(o));
    return out;
  }
  release(std::move(o), out);
  ++q.next;
  for (auto it = q.held.begin(); it != q.held.end() && it->first == q.next; it = q.held.erase(it)) {
    release(std::move(it->second), out);
    ++q.next;
  }
  return out;
}

size_t ResultOrder::held() const {
  size_t n = 0;
  for (const auto& [key, q] : queues_) n += q.held.size();
  return n;
}

void ResultOrder::release(pipeline::Outcome o, std::vector<ResultEvent>& out) {
  ResultEvent& e = o.event;
  const size_t stream = o.request.stream;
  if (e.kind == ResultEvent::Kind::Final &&
      o.request.media_complete != std::chrono::steady_clock::time_point{}) {
    const std::chrono::duration<double> latency =
        std::chrono::steady_clock::now() - o.request.media_complete;
    e.latency_ms = latency.count() * 1e3;
    const auto& tasks = streams_[stream]->tasks;
    if (const auto it = tasks.find(o.request.task); it != tasks.end())
      it->second.request_latency.observe(latency.count());
  }
  ++(e.kind == ResultEvent::Kind::Final ? tally_.finals : tally_.errors);
  unsettled_.push_back({stream, e.stream, e.model});
  out.push_back(std::move(e));
}

std::vector<ResultEvent> ResultOrder::settle() {
  std::vector<ResultEvent> ends;
  for (Released& r : unsettled_) {
    pipeline::RequestLedger& ledger = streams_[r.stream]->ledger;
    if (ledger.finished()) ends.push_back(pipeline::end_event(r.name, r.model, ledger.complete()));
  }
  unsettled_.clear();
  return ends;
}

}  // namespace rawflow::nodes
