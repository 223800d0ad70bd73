#include "nodes/decoder.h"

#include <chrono>
#include <cstdio>

namespace rawflow::nodes {

using pipeline::GenerationResult;
using pipeline::GenerationStatus;
using pipeline::Outcome;
using pipeline::ResultEvent;
using Clock = std::chrono::steady_clock;

namespace {

// The request never took part in a forward.
bool never_ran(const GenerationResult& r) { return r.prefill_ms == 0 && r.generated_tokens == 0; }

// Requests that ended without running to their end, by why (rawflow_dropped_total).
void count_unfinished(pipeline::StreamMetrics& m, const GenerationResult& r) {
  if (r.status == GenerationStatus::Dropped) m.requests_dropped_queue_full.inc();
  if (r.status == GenerationStatus::Deadline && never_ran(r)) m.requests_dropped_deadline.inc();
  if (r.status == GenerationStatus::Cancelled) m.requests_dropped_shutdown.inc();
}

// Why a request ended without its final, in words (the error event's text after the request).
std::string why_unfinished(const GenerationResult& r, const TaskConfig& task) {
  char deadline[96];
  std::snprintf(
      deadline, sizeof deadline, "the deadline of %g s passed %s", task.deadline_s,
      never_ran(r) ? "before its first forward" : "while it ran (its text so far is kept)");
  switch (r.status) {
    case GenerationStatus::Dropped:
      return "dropped: the stream's queue of waiting requests was full "
             "(queue.max_pending_requests)";
    case GenerationStatus::Deadline:
      return deadline;
    case GenerationStatus::Cancelled:
      return "cancelled: the run stopped before it finished";
    case GenerationStatus::Error:
      return r.error.empty() ? "failed" : r.error;
    case GenerationStatus::Stop:
    case GenerationStatus::MaxTokens:
      break;
  }
  return std::string(to_string(r.status));
}

}  // namespace

Decoder::Decoder(const PipelineConfig& cfg, pipeline::BatchScheduler& scheduler,
                 std::vector<pipeline::StreamHandles*> streams, std::string model)
    : cfg_(cfg), scheduler_(scheduler), streams_(std::move(streams)), model_(std::move(model)) {}

void Decoder::operator()(pipeline::DecodeJob job, Emit emit, std::function<void()> done) {
  const pipeline::RequestInfo info = job.request;
  const TaskConfig& task = cfg_.tasks[info.task];
  pipeline::StreamHandles& s = *streams_[info.stream];
  pipeline::GenerationRequest g;
  g.id = info.id;
  g.stream = cfg_.streams[info.stream].name;
  g.task = task.name;
  g.prompt = std::move(job.prompt);
  g.sampling = task.sampling;
  g.max_new_tokens = task.max_new_tokens;
  g.created = info.created;
  if (task.deadline_s > 0)
    g.deadline = info.created + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(task.deadline_s));
  g.live = info.droppable;
  g.on_partial = [this, info, emit](const pipeline::TokenDelta& d) {
    Outcome o = pipeline::outcome_of(cfg_, info, ResultEvent::Kind::Partial, model_);
    o.event.text = d.text;
    o.event.generated_tokens = d.generated_tokens;
    emit(std::move(o));
  };
  g.on_done = [this, info, emit, done, &s,
               &task_metrics = s.tasks.at(info.task)](const GenerationResult& res) {
    count_unfinished(s.metrics, res);
    task_metrics.prompt_tokens.inc(static_cast<double>(res.prompt_tokens));
    task_metrics.generated_tokens.inc(static_cast<double>(res.generated_tokens));
    emit(final_of(info, res));
    done();
  };
  std::unique_lock<std::mutex> lock(mu_);
  if (!closed_) {
    scheduler_.submit(std::move(g));
    return;
  }
  lock.unlock();
  GenerationResult res;
  res.id = info.id;
  res.status = GenerationStatus::Cancelled;
  res.prompt_tokens = static_cast<int64_t>(g.prompt.tokens.size());
  g.on_done(res);
}

void Decoder::close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
}

Outcome Decoder::final_of(const pipeline::RequestInfo& r, const GenerationResult& res) const {
  Outcome o = pipeline::outcome_of(
      cfg_, r, res.ok() ? ResultEvent::Kind::Final : ResultEvent::Kind::Error, model_);
  ResultEvent& e = o.event;
  e.text = res.text;
  e.prompt_tokens = res.prompt_tokens;
  e.generated_tokens = res.generated_tokens;
  e.queue_ms = res.queue_ms;
  e.prefill_ms = res.prefill_ms;
  e.decode_ms = res.decode_ms;
  if (!res.ok()) {
    char media[64];
    std::snprintf(media, sizeof media, "media %.1f\u2013%.1f s", r.start_s, r.end_s);
    e.error = "stream `" + cfg_.streams[r.stream].name + "`, request " + std::to_string(r.id) +
              " (task `" + cfg_.tasks[r.task].name + "`, " + media +
              "): " + why_unfinished(res, cfg_.tasks[r.task]);
  }
  return o;
}

}  // namespace rawflow::nodes
