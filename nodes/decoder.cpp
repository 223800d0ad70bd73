#include "nodes/decoder.h"

#include <chrono>
#include <cstdio>
#include <optional>

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

// The deadline of a request of `task` made at `created`: none when the task has none.
std::optional<Clock::time_point> deadline_of(const TaskConfig& task, Clock::time_point created) {
  if (task.deadline_s <= 0) return std::nullopt;
  return created + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(task.deadline_s));
}

}  // namespace

// A window's engine request, shared by the node and the request's callbacks.
struct Decoder::OpenWindow {
  std::mutex mu;
  uint64_t engine_id = 0;
  std::optional<pipeline::RequestInfo> info;  // bound when the window's DecodeJob comes
  std::optional<GenerationResult> ended;      // it ended before that
  bool abandoned = false;                     // no DecodeJob will come
};

Decoder::Decoder(const PipelineConfig& cfg, pipeline::BatchScheduler& scheduler,
                 std::vector<pipeline::StreamHandles*> streams, std::string model)
    : cfg_(cfg), scheduler_(scheduler), streams_(std::move(streams)), model_(std::move(model)) {}

void Decoder::operator()(pipeline::DecoderWork work, Emit emit, std::function<void()> done) {
  if (auto* piece = std::get_if<pipeline::PrefillPiece>(&work)) {
    take_piece(std::move(*piece), std::move(emit), std::move(done));
    return;
  }
  auto& job = std::get<pipeline::DecodeJob>(work);
  if (job.window_start >= 0)
    close_window(std::move(job), std::move(emit), std::move(done));
  else
    submit_job(std::move(job), std::move(emit), std::move(done));
}

pipeline::GenerationRequest Decoder::request_of(size_t stream, size_t task, bool droppable) const {
  const TaskConfig& t = cfg_.tasks[task];
  pipeline::GenerationRequest g;
  g.stream = cfg_.streams[stream].name;
  g.task = t.name;
  g.sampling = t.sampling;
  g.max_new_tokens = t.max_new_tokens;
  g.live = droppable;
  return g;
}

void Decoder::submit_job(pipeline::DecodeJob job, Emit emit, std::function<void()> done) {
  const pipeline::RequestInfo info = job.request;
  pipeline::GenerationRequest g = request_of(info.stream, info.task, info.droppable);
  g.id = info.id;
  g.prompt = std::move(job.prompt);
  g.created = info.created;
  if (auto d = deadline_of(cfg_.tasks[info.task], info.created)) g.deadline = *d;
  g.on_partial = [this, info, emit](const pipeline::TokenDelta& d) { emit_partial(info, d, emit); };
  g.on_done = [this, info, emit, done](const GenerationResult& res) {
    report(info, res, emit);
    done();
  };
  std::unique_lock<std::mutex> lock(mu_);
  if (!closed_) {
    scheduler_.submit(std::move(g));
    return;
  }
  lock.unlock();
  job.prompt = std::move(g.prompt);
  cancel_unsubmitted(job, emit);
  done();
}

// A window's first piece opens its engine request; it holds the graph (`done`) until that request
// ends. Later pieces extend it and are done at once.
void Decoder::take_piece(pipeline::PrefillPiece piece, Emit emit, std::function<void()> done) {
  const WindowKey key{piece.stream, piece.task, piece.window_start};
  std::unique_lock<std::mutex> lock(mu_);
  const auto it = windows_.find(key);
  if (closed_ || (it == windows_.end() && piece.abandon)) {
    lock.unlock();
    done();
    return;
  }
  if (piece.abandon) {
    const std::shared_ptr<OpenWindow> w = it->second;
    windows_.erase(it);
    {
      std::lock_guard<std::mutex> wl(w->mu);
      w->abandoned = true;
    }
    scheduler_.cancel(w->engine_id);
  } else if (it != windows_.end()) {
    // False when the request has ended: the window's DecodeJob reports why.
    scheduler_.append(it->second->engine_id, std::move(piece.prompt), false);
  } else {
    auto w = std::make_shared<OpenWindow>();
    w->engine_id = pipeline::next_request_id();
    windows_.emplace(key, w);
    pipeline::GenerationRequest g = request_of(piece.stream, piece.task, piece.droppable);
    g.id = w->engine_id;
    g.prompt = std::move(piece.prompt);
    g.open = true;
    g.open_prompt_tokens = piece.prompt_tokens_bound;
    g.created = Clock::now();
    // Partials come only after the closing piece, which follows the binding.
    g.on_partial = [this, w, emit](const pipeline::TokenDelta& d) {
      std::unique_lock<std::mutex> wl(w->mu);
      const pipeline::RequestInfo info = *w->info;
      wl.unlock();
      emit_partial(info, d, emit);
    };
    g.on_done = [this, w, emit, done](const GenerationResult& res) {
      std::unique_lock<std::mutex> wl(w->mu);
      if (w->info) {
        const pipeline::RequestInfo info = *w->info;
        wl.unlock();
        report(info, res, emit);
      } else if (!w->abandoned) {
        w->ended = res;
      }
      done();
    };
    scheduler_.submit(std::move(g));
    return;  // `done` runs when the engine request ends
  }
  lock.unlock();
  done();
}

void Decoder::close_window(pipeline::DecodeJob job, Emit emit, std::function<void()> done) {
  const pipeline::RequestInfo& info = job.request;
  std::unique_lock<std::mutex> lock(mu_);
  const auto it = windows_.find({info.stream, info.task, job.window_start});
  if (closed_ || it == windows_.end()) {
    const bool closed = closed_;
    lock.unlock();
    if (closed) {
      cancel_unsubmitted(job, emit);
    } else {
      GenerationResult res;
      res.id = info.id;
      res.error = "its audio pieces never reached the engine";
      report(info, res, emit);
    }
    done();
    return;
  }
  const std::shared_ptr<OpenWindow> w = it->second;
  windows_.erase(it);
  std::unique_lock<std::mutex> wl(w->mu);
  if (w->ended) {  // dropped or failed before its window closed
    const GenerationResult res = *w->ended;
    wl.unlock();
    lock.unlock();
    report(info, res, emit);
    done();
    return;
  }
  w->info = info;
  wl.unlock();
  // False when it ended meanwhile: its on_done, bound now, reports it.
  scheduler_.append(w->engine_id, std::move(job.prompt), true,
                    deadline_of(cfg_.tasks[info.task], info.created));
  lock.unlock();
  done();  // the window's first piece holds the graph until its request ends
}

void Decoder::emit_partial(const pipeline::RequestInfo& r, const pipeline::TokenDelta& d,
                           const Emit& emit) const {
  Outcome o = pipeline::outcome_of(cfg_, r, ResultEvent::Kind::Partial, model_);
  o.event.text = d.text;
  o.event.generated_tokens = d.generated_tokens;
  emit(std::move(o));
}

void Decoder::report(const pipeline::RequestInfo& r, const GenerationResult& res,
                     const Emit& emit) {
  pipeline::StreamHandles& s = *streams_[r.stream];
  pipeline::TaskMetrics& t = s.tasks.at(r.task);
  count_unfinished(s.metrics, res);
  t.prompt_tokens.inc(static_cast<double>(res.prompt_tokens));
  t.prompt_tokens_streamed.inc(static_cast<double>(res.prompt_tokens_prefilled_open));
  t.generated_tokens.inc(static_cast<double>(res.generated_tokens));
  emit(final_of(r, res));
}

void Decoder::cancel_unsubmitted(const pipeline::DecodeJob& job, const Emit& emit) {
  GenerationResult res;
  res.id = job.request.id;
  res.status = GenerationStatus::Cancelled;
  res.prompt_tokens = static_cast<int64_t>(job.prompt.tokens.size());
  report(job.request, res, emit);
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
  e.close_ms = res.close_ms;
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
