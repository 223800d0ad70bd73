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
  const size_t stream = o.request.stream;
  Queue& q = queues_[{stream, o.request.task}];
  if (o.request.sequence != q.next) {
    q.held.emplace(o.request.sequence, std::move(o.event));
    return out;
  }
  release(stream, std::move(o.event), out);
  ++q.next;
  for (auto it = q.held.begin(); it != q.held.end() && it->first == q.next; it = q.held.erase(it)) {
    release(stream, std::move(it->second), out);
    ++q.next;
  }
  return out;
}

size_t ResultOrder::held() const {
  size_t n = 0;
  for (const auto& [key, q] : queues_) n += q.held.size();
  return n;
}

void ResultOrder::release(size_t stream, ResultEvent e, std::vector<ResultEvent>& out) {
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
