#include "pipeline/batch_scheduler.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "model/error.h"
#include "model/gemma4/chat.h"
#include "model/gemma4/kv_cache.h"

namespace rawflow::pipeline {

namespace {

double ms_between(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

GenerationResult result_of(const GenerationRequest& r) {
  GenerationResult res;
  res.id = r.id;
  res.stream = r.stream;
  res.task = r.task;
  res.prompt_tokens = static_cast<int64_t>(r.prompt.size());
  return res;
}

// The prompt length a request's KV reservation and context check count: an open request's bound.
int64_t prompt_capacity(const GenerationRequest& r) {
  return r.open ? r.open_prompt_tokens : static_cast<int64_t>(r.prompt.size());
}

std::string request_name(const GenerationRequest& r) {
  return "request " + std::to_string(r.id) + " (" + r.stream + "/" + r.task + ")";
}

// What one sequence does with its logits row: the next token, or why it ends.
struct Outcome {
  bool done = false;
  GenerationStatus status = GenerationStatus::Stop;
  std::string error;
};

}  // namespace

std::string_view to_string(GenerationStatus s) {
  switch (s) {
    case GenerationStatus::Stop:
      return "stop";
    case GenerationStatus::MaxTokens:
      return "max_tokens";
    case GenerationStatus::Deadline:
      return "deadline";
    case GenerationStatus::Dropped:
      return "dropped";
    case GenerationStatus::Error:
      return "error";
    case GenerationStatus::Cancelled:
      return "cancelled";
  }
  return "unknown";
}

// A request waiting for a slot.
struct BatchScheduler::Queued {
  GenerationRequest req;
  std::vector<int32_t> stops;
  size_t kv_estimate = 0;
};

// A running request: its cache, sampler and text so far.
struct BatchScheduler::Sequence {
  Sequence(Queued q, const Gemma4Text& model, const Tokenizer& tok)
      : req(std::move(q.req)),
        stops(std::move(q.stops)),
        kv_estimate(q.kv_estimate),
        cache(model.config()),
        sampler(req.sampling),
        detok(tok),
        result(result_of(req)) {
    result.kv_estimate_bytes = kv_estimate;
    // Allocated once, at the size admission counted: the budget holds exactly.
    cache.reserve(prompt_capacity(req) + std::max(0, req.max_new_tokens));
  }
  GenerationRequest req;
  std::vector<int32_t> stops;
  size_t kv_estimate;
  KvCache cache;
  Sampler sampler;
  StreamingDetokenizer detok;
  GenerationResult result;
  size_t prefilled = 0;      // prompt tokens in the cache
  size_t chunk_end = 0;      // prompt end of the chunk in the current forward
  int32_t next_token = -1;   // the last sampled token, fed by the next decode step
  bool awaiting = req.open;  // an open request whose closing piece has not been taken yet
  SteadyClock::time_point closed_at{};  // when its closing piece was appended
  bool prefilling() const { return awaiting || prefilled < req.prompt.size(); }
  // Prompt tokens that may be prefilled now: an open prompt holds its last token back (see
  // GenerationRequest::open).
  size_t available() const {
    const size_t n = req.prompt.size();
    return awaiting && n > 0 ? n - 1 : n;
  }
};

// An open request's pieces, appended by any thread and taken into its prompt by the stepping one.
struct BatchScheduler::OpenPrompt {
  std::vector<PromptInput> pieces;
  bool closed = false;                              // the last piece has been appended
  SteadyClock::time_point closed_at{};              // when
  std::optional<SteadyClock::time_point> deadline;  // to replace the running request's
};

// A request finished outside a forward (rejected, dropped, expired in the queue, cancelled).
struct BatchScheduler::Notice {
  std::function<void(const GenerationResult&)> on_done;
  GenerationResult result;
};

BatchScheduler::BatchScheduler(const Gemma4Text& model, const Tokenizer& tokenizer,
                               SchedulerOptions opt)
    : model_(model), tok_(tokenizer), opt_(std::move(opt)), default_stops_(stop_ids(tok_.vocab())) {
  if (opt_.max_batch < 1)
    throw EngineError("scheduler: max_batch must be at least 1, got " +
                      std::to_string(opt_.max_batch));
  if (opt_.prefill_chunk < 1)
    throw EngineError("scheduler: prefill_chunk must be at least 1, got " +
                      std::to_string(opt_.prefill_chunk));
  // A limit of 0 would drop every live request of the stream before it could start.
  if (opt_.default_live_queue_limit < 1)
    throw EngineError("scheduler: default_live_queue_limit must be at least 1");
  for (const auto& [stream, limit] : opt_.live_queue_limits)
    if (limit < 1)
      throw EngineError("scheduler: live_queue_limits of stream '" + stream +
                        "' must be at least 1");
  stats_.forwards_by_sequences.assign(static_cast<size_t>(opt_.max_batch) + 1, 0);
}

BatchScheduler::~BatchScheduler() {
  try {
    cancel_all();
  } catch (...) {
    // A destructor must not throw; cancel_all() only throws when misused while stepping.
  }
}

std::string BatchScheduler::check_prompt(const PromptInput& p, const std::string& who) const {
  const Gemma4Config& cfg = model_.config();
  if (p.soft_index.size() != p.size() || p.block_ids.size() != p.size())
    return who + "prompt has " + std::to_string(p.size()) + " tokens but " +
           std::to_string(p.soft_index.size()) + " soft indices and " +
           std::to_string(p.block_ids.size()) + " block ids";
  for (size_t i = 0; i < p.size(); ++i) {
    if (p.tokens[i] < 0 || p.tokens[i] >= cfg.vocab_size)
      return who + "token id " + std::to_string(p.tokens[i]) + " at prompt position " +
             std::to_string(i) + " is outside the vocabulary (size " +
             std::to_string(cfg.vocab_size) + ")";
    if (p.soft_index[i] >= p.soft_rows())
      return who + "prompt position " + std::to_string(i) + " uses soft row " +
             std::to_string(p.soft_index[i]) + " of " + std::to_string(p.soft_rows());
  }
  if (p.soft_rows() > 0 && p.hidden != cfg.hidden)
    return who + "soft rows are " + std::to_string(p.hidden) +
           " wide, the model's hidden size is " + std::to_string(cfg.hidden);
  return {};
}

std::string BatchScheduler::check_request(const GenerationRequest& r) const {
  const Gemma4Config& cfg = model_.config();
  const PromptInput& p = r.prompt;
  const std::string who = request_name(r) + ": ";
  if (p.tokens.empty() && !r.open) return who + "empty prompt";
  if (std::string bad = check_prompt(p, who); !bad.empty()) return bad;
  if (r.open && r.open_prompt_tokens < std::max<int64_t>(1, static_cast<int64_t>(p.size())))
    return who + "open_prompt_tokens (" + std::to_string(r.open_prompt_tokens) +
           ") is less than the " + std::to_string(std::max<size_t>(1, p.size())) +
           " tokens its prompt has or needs";
  if (r.max_new_tokens < 0)
    return who + "max_new_tokens is negative (" + std::to_string(r.max_new_tokens) + ")";
  const int64_t length = prompt_capacity(r) + r.max_new_tokens;
  if (length > cfg.context_length)
    return who + "prompt (" + std::to_string(prompt_capacity(r)) + ") + max_new_tokens (" +
           std::to_string(r.max_new_tokens) + ") exceeds the model's context of " +
           std::to_string(cfg.context_length) + " tokens";
  return {};
}

void BatchScheduler::submit(GenerationRequest req) {
  const auto now = SteadyClock::now();
  if (req.created == SteadyClock::time_point{}) req.created = now;
  PromptInput& p = req.prompt;
  if (p.soft_index.empty()) p.soft_index.assign(p.size(), -1);
  if (p.block_ids.empty()) p.block_ids.assign(p.size(), -1);

  std::string error = check_request(req);
  const size_t estimate =
      KvCache::bytes_for(model_.config(), prompt_capacity(req) + std::max(0, req.max_new_tokens));
  if (error.empty() && opt_.kv_budget_bytes > 0 && estimate > opt_.kv_budget_bytes)
    error = request_name(req) + ": its KV cache needs " + std::to_string(estimate) +
            " bytes, more than the whole budget of " + std::to_string(opt_.kv_budget_bytes);
  {
    std::lock_guard lock(mutex_);
    ++stats_.submitted;
    if (error.empty() && req.open && open_.contains(req.id))
      error = request_name(req) + ": an open request with this id is already taking pieces";
    if (!error.empty()) {
      GenerationResult res = result_of(req);
      res.status = GenerationStatus::Error;
      res.error = std::move(error);
      res.queue_ms = ms_between(req.created, now);
      ++stats_.finished[static_cast<size_t>(GenerationStatus::Error)];
      notices_.push_back({std::move(req.on_done), std::move(res)});
    } else {
      auto q = std::make_unique<Queued>();
      q->stops = req.stop_ids.empty() ? default_stops_ : req.stop_ids;
      q->kv_estimate = estimate;
      if (req.open) {
        ++stats_.open_requests;
        open_[req.id];
      }
      const bool live = req.live;
      const std::string stream = req.stream;
      q->req = std::move(req);
      queue_.push_back(std::move(q));
      if (live) drop_oldest_live_locked(stream, notices_);
    }
    work_arrived_ = true;
    publish_gauges_locked();
  }
  wake_.notify_all();
}

bool BatchScheduler::append(uint64_t id, PromptInput piece, bool last,
                            std::optional<SteadyClock::time_point> deadline) {
  {
    std::lock_guard lock(mutex_);
    const auto it = open_.find(id);
    if (it == open_.end() || it->second.closed) return false;
    if (piece.soft_index.empty()) piece.soft_index.assign(piece.size(), -1);
    if (piece.block_ids.empty()) piece.block_ids.assign(piece.size(), -1);
    it->second.pieces.push_back(std::move(piece));
    it->second.closed = last;
    if (last) it->second.closed_at = SteadyClock::now();
    if (deadline) {
      // A queued request's deadline is checked at admission: change it there too.
      it->second.deadline = deadline;
      for (auto& q : queue_)
        if (q->req.id == id) q->req.deadline = *deadline;
    }
    work_arrived_ = true;
  }
  wake_.notify_all();
  return true;
}

bool BatchScheduler::cancel(uint64_t id) {
  std::vector<Notice> none;
  {
    std::lock_guard lock(mutex_);
    const auto it = std::find_if(queue_.begin(), queue_.end(),
                                 [&](const std::unique_ptr<Queued>& q) { return q->req.id == id; });
    if (it != queue_.end()) {
      end_queued_locked(**it, GenerationStatus::Cancelled, SteadyClock::now(), notices_);
      queue_.erase(it);
      publish_gauges_locked();
    } else if (running_ids_.contains(id)) {
      cancels_.insert(id);
    } else {
      return false;
    }
    work_arrived_ = true;
  }
  wake_.notify_all();
  return true;
}

// A queued request that ends without running (dropped, expired, cancelled): its notice and count,
// and the pieces it would have taken. The caller removes it from queue_.
void BatchScheduler::end_queued_locked(Queued& q, GenerationStatus status,
                                       SteadyClock::time_point now, std::vector<Notice>& notices) {
  GenerationResult res = result_of(q.req);
  res.status = status;
  res.queue_ms = ms_between(q.req.created, now);
  notices.push_back({std::move(q.req.on_done), std::move(res)});
  open_.erase(q.req.id);
  ++stats_.finished[static_cast<size_t>(status)];
}

size_t BatchScheduler::live_queue_limit(std::string_view stream) const {
  const auto it = opt_.live_queue_limits.find(stream);
  return it == opt_.live_queue_limits.end() ? opt_.default_live_queue_limit : it->second;
}

// Only `stream`'s own live requests are counted and dropped: the limit is per stream, so the
// pending work of the other streams is never what makes room.
void BatchScheduler::drop_oldest_live_locked(std::string_view stream,
                                             std::vector<Notice>& notices) {
  const auto droppable = [&](const std::unique_ptr<Queued>& q) {
    return q->req.live && q->req.stream == stream;
  };
  size_t queued = static_cast<size_t>(std::count_if(queue_.begin(), queue_.end(), droppable));
  const size_t limit = live_queue_limit(stream);
  const auto now = SteadyClock::now();
  for (auto it = queue_.begin(); queued > limit && it != queue_.end();) {
    if (!droppable(*it)) {
      ++it;
      continue;
    }
    end_queued_locked(**it, GenerationStatus::Dropped, now, notices);
    ++stats_.dropped_pressure;
    it = queue_.erase(it);
    --queued;
  }
}

void BatchScheduler::publish_gauges_locked() {
  stats_.pending = queue_.size();
  stats_.pending_live = 0;
  for (const auto& q : queue_) stats_.pending_live += q->req.live;
  stats_.pending_file = stats_.pending - stats_.pending_live;
}

void BatchScheduler::admit(SteadyClock::time_point now, std::vector<Notice>& notices) {
  std::vector<std::unique_ptr<Queued>> admitted;
  {
    std::lock_guard lock(mutex_);
    for (auto it = queue_.begin(); it != queue_.end();) {
      if ((*it)->req.deadline > now) {
        ++it;
        continue;
      }
      end_queued_locked(**it, GenerationStatus::Deadline, now, notices);
      ++stats_.deadline_in_queue;
      it = queue_.erase(it);
    }
    // First come, first served: a request that does not fit the budget waits at the head of the
    // queue rather than being overtaken forever by smaller ones.
    while (!queue_.empty() && running_.size() + admitted.size() < size_t(opt_.max_batch)) {
      const size_t need = queue_.front()->kv_estimate;
      if (opt_.kv_budget_bytes > 0 && kv_reserved_ + need > opt_.kv_budget_bytes) break;
      kv_reserved_ += need;
      running_ids_.insert(queue_.front()->req.id);
      admitted.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    publish_gauges_locked();
  }
  for (auto& q : admitted)
    running_.push_back(std::make_unique<Sequence>(std::move(*q), model_, tok_));
}

void BatchScheduler::deliver(std::vector<Notice>& notices) {
  for (Notice& n : notices) {
    if (!n.on_done) continue;
    try {
      n.on_done(n.result);
    } catch (...) {
      std::lock_guard lock(mutex_);
      ++stats_.callback_errors;
    }
  }
}

void BatchScheduler::partial(Sequence& s, std::string text) {
  if (text.empty()) return;
  s.result.text += text;
  if (!s.req.on_partial) return;
  TokenDelta d{s.req.id, std::move(text), static_cast<int64_t>(s.result.tokens.size())};
  try {
    s.req.on_partial(d);
  } catch (...) {
    std::lock_guard lock(mutex_);
    ++stats_.callback_errors;
  }
}

void BatchScheduler::finish(size_t index, GenerationStatus status, std::string error) {
  std::unique_ptr<Sequence> s = std::move(running_[index]);
  running_.erase(running_.begin() + static_cast<ptrdiff_t>(index));
  kv_reserved_ -= s->kv_estimate;
  // Bytes held back for an incomplete character are emitted (U+FFFD) so that the partials always
  // add up to the final text.
  partial(*s, s->detok.flush());
  GenerationResult& res = s->result;
  res.status = status;
  res.error = std::move(error);
  res.generated_tokens = static_cast<int64_t>(res.tokens.size());
  res.prompt_tokens = static_cast<int64_t>(s->req.prompt.size());  // an open one's grew
  if (res.first_forward == 0) res.queue_ms = ms_between(s->req.created, SteadyClock::now());
  {
    std::lock_guard lock(mutex_);
    if (s->awaiting) open_.erase(s->req.id);
    running_ids_.erase(s->req.id);
    cancels_.erase(s->req.id);
    ++stats_.finished[static_cast<size_t>(status)];
    if (status == GenerationStatus::Deadline) ++stats_.deadline_running;
    stats_.active = running_.size();
    stats_.kv_reserved_bytes = kv_reserved_;
  }
  std::vector<Notice> done;
  done.push_back({std::move(s->req.on_done), std::move(res)});
  s.reset();  // the cache is freed before the callback runs
  deliver(done);
}

// Moves the pieces appended since the last step into the running open requests' prompts. A
// queued request's pieces wait in open_ until it is admitted.
void BatchScheduler::take_pieces() {
  struct Taken {
    size_t index;
    std::vector<PromptInput> pieces;
    bool closed;
    SteadyClock::time_point closed_at;
  };
  std::vector<Taken> taken;
  {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < running_.size(); ++i) {
      if (!running_[i]->awaiting) continue;
      const auto it = open_.find(running_[i]->req.id);
      if (it == open_.end() || (it->second.pieces.empty() && !it->second.closed)) continue;
      taken.push_back({i, std::move(it->second.pieces), it->second.closed, it->second.closed_at});
      it->second.pieces.clear();
      if (it->second.deadline) running_[i]->req.deadline = *it->second.deadline;
      if (it->second.closed) open_.erase(it);
    }
  }
  std::vector<std::pair<size_t, std::string>> failed;
  for (Taken& t : taken) {
    Sequence& s = *running_[t.index];
    const std::string who = request_name(s.req) + ": ";
    std::string error;
    for (const PromptInput& piece : t.pieces) {
      error = check_prompt(piece, who + "appended piece: ");
      if (error.empty() &&
          static_cast<int64_t>(s.req.prompt.size() + piece.size()) > s.req.open_prompt_tokens)
        error = who + "its pieces exceed open_prompt_tokens (" +
                std::to_string(s.req.open_prompt_tokens) + ")";
      if (!error.empty()) break;
      s.req.prompt.append(piece);
    }
    if (error.empty() && t.closed) {
      s.awaiting = false;
      s.closed_at = t.closed_at;
      if (s.req.prompt.size() == 0) error = who + "empty prompt";
    }
    if (!error.empty()) failed.emplace_back(t.index, std::move(error));
  }
  // From the back, so that the indices of the others stay valid.
  for (auto it = failed.rbegin(); it != failed.rend(); ++it)
    finish(it->first, GenerationStatus::Error, std::move(it->second));
}

void BatchScheduler::take_cancels() {
  std::set<uint64_t> ids;
  {
    std::lock_guard lock(mutex_);
    ids.swap(cancels_);
  }
  for (size_t i = running_.size(); i-- > 0;)
    if (ids.contains(running_[i]->req.id)) finish(i, GenerationStatus::Cancelled);
}

void BatchScheduler::expire_running(SteadyClock::time_point now) {
  for (size_t i = running_.size(); i-- > 0;)
    if (running_[i]->req.deadline <= now) finish(i, GenerationStatus::Deadline);
}

bool BatchScheduler::run_forward() {
  std::vector<SequenceChunk> chunks;
  std::vector<size_t> in_forward;  // running_ index of each chunk
  chunks.reserve(running_.size());
  ForwardInfo info;
  // Work whose result is due now: every running request but the open ones decodes or prefills.
  const bool due =
      std::any_of(running_.begin(), running_.end(), [](const auto& s) { return !s->awaiting; });
  for (size_t i = 0; i < running_.size(); ++i) {
    Sequence& s = *running_[i];
    if (s.prefilling()) {
      // An open request prefills what has arrived; with nothing new it waits (not in the forward),
      // and with a short backlog it waits for work that is due.
      const size_t available = s.available();
      if (s.prefilled >= available) continue;
      if (s.awaiting && due && available - s.prefilled < opt_.open_backlog_tokens) continue;
      s.chunk_end = s.req.prompt.prefill_cut(
          s.prefilled, std::min(static_cast<size_t>(opt_.prefill_chunk), available - s.prefilled));
      if (s.chunk_end > available) continue;  // a block not all there yet
      const LogitsWanted want = !s.awaiting && s.chunk_end == s.req.prompt.size()
                                    ? LogitsWanted::Last
                                    : LogitsWanted::None;
      chunks.push_back(s.req.prompt.chunk(&s.cache, s.prefilled, s.chunk_end, want));
      ++info.prefill_sequences;
    } else {
      chunks.push_back({&s.cache, {s.next_token}, {}, {}, LogitsWanted::Last});
    }
    in_forward.push_back(i);
    info.rows += static_cast<int64_t>(chunks.back().tokens.size());
  }
  if (chunks.empty()) return false;
  info.sequences = static_cast<int>(chunks.size());

  const auto t0 = SteadyClock::now();
  uint64_t index = 0;
  {
    std::lock_guard lock(mutex_);
    index = stats_.forwards + 1;
  }
  for (size_t i : in_forward) {
    GenerationResult& r = running_[i]->result;
    if (r.first_forward == 0) {
      r.first_forward = index;
      r.queue_ms = ms_between(running_[i]->req.created, t0);
    }
  }
  ForwardResult out;
  try {
    out = model_.forward(chunks, opt_.forward);
  } catch (const std::exception& e) {
    // The caches of this forward may be half written: every sequence in it ends.
    const std::string what = std::string("forward failed: ") + e.what();
    for (size_t k = in_forward.size(); k-- > 0;)
      finish(in_forward[k], GenerationStatus::Error,
             request_name(running_[in_forward[k]]->req) + ": " + what);
    return true;
  }
  const auto t1 = SteadyClock::now();
  info.seconds = std::chrono::duration<double>(t1 - t0).count();
  const double dt_ms = info.seconds * 1e3;

  std::vector<Outcome> outcomes(running_.size());
  uint64_t prefilled = 0, prefilled_open = 0, generated = 0;
  size_t kv_used = 0;
  for (const auto& sp : running_) kv_used += sp->cache.bytes();
  for (size_t k = 0; k < in_forward.size(); ++k) {
    const size_t i = in_forward[k];
    Sequence& s = *running_[i];
    s.result.last_forward = index;
    if (s.prefilling()) {
      prefilled += s.chunk_end - s.prefilled;
      if (s.awaiting) {
        prefilled_open += s.chunk_end - s.prefilled;
        s.result.prompt_tokens_prefilled_open += static_cast<int64_t>(s.chunk_end - s.prefilled);
      }
      s.prefilled = s.chunk_end;
      s.result.prefill_ms += dt_ms;
      if (s.req.open && !s.awaiting && s.prefilled == s.req.prompt.size())
        s.result.close_ms = ms_between(s.closed_at, t1);
    } else {
      s.result.decode_ms += dt_ms;
    }
    const std::vector<float>& logits = out.logits[k];
    if (logits.empty()) continue;
    const size_t before = s.result.tokens.size();
    outcomes[i] = [&]() -> Outcome {
      if (s.req.max_new_tokens == 0) return {true, GenerationStatus::MaxTokens, {}};
      if (s.req.on_logits) {
        try {
          s.req.on_logits(logits);
        } catch (...) {
          std::lock_guard lock(mutex_);
          ++stats_.callback_errors;
        }
      }
      int32_t token;
      try {
        token = s.sampler.sample(logits);
      } catch (const std::exception& e) {
        return {true, GenerationStatus::Error, request_name(s.req) + ": sampling: " + e.what()};
      }
      if (std::find(s.stops.begin(), s.stops.end(), token) != s.stops.end())
        return {true, GenerationStatus::Stop, {}};
      s.result.tokens.push_back(token);
      partial(s, s.detok.push(token));
      s.next_token = token;
      if (static_cast<int64_t>(s.result.tokens.size()) >= s.req.max_new_tokens)
        return {true, GenerationStatus::MaxTokens, {}};
      return {};
    }();
    generated += s.result.tokens.size() - before;
  }
  {
    std::lock_guard lock(mutex_);
    ++stats_.forwards;
    stats_.sequences_in_forwards += static_cast<uint64_t>(info.sequences);
    stats_.max_sequences_per_forward =
        std::max<uint64_t>(stats_.max_sequences_per_forward, static_cast<uint64_t>(info.sequences));
    ++stats_.forwards_by_sequences[static_cast<size_t>(info.sequences)];
    if (info.prefill_sequences > 0 && info.prefill_sequences < info.sequences)
      ++stats_.mixed_forwards;
    stats_.tokens_prefilled += prefilled;
    stats_.tokens_prefilled_open += prefilled_open;
    stats_.tokens_generated += generated;
    stats_.forward_seconds += info.seconds;
    stats_.kv_used_bytes = kv_used;
    stats_.kv_used_peak_bytes = std::max(stats_.kv_used_peak_bytes, kv_used);
  }
  if (opt_.on_forward) {
    try {
      opt_.on_forward(info);
    } catch (...) {
      std::lock_guard lock(mutex_);
      ++stats_.callback_errors;
    }
  }
  for (size_t i = running_.size(); i-- > 0;)
    if (outcomes[i].done) finish(i, outcomes[i].status, std::move(outcomes[i].error));
  return true;
}

bool BatchScheduler::step() {
  {
    std::lock_guard lock(mutex_);
    if (stepping_)
      throw EngineError(
          "scheduler: step() called while another step() runs (one thread drives "
          "the engine)");
    stepping_ = true;
  }
  struct ClearStepping {
    BatchScheduler* self;
    ~ClearStepping() {
      std::lock_guard lock(self->mutex_);
      self->stepping_ = false;
      self->stats_.active = self->running_.size();
      self->stats_.kv_reserved_bytes = self->kv_reserved_;
      size_t used = 0;
      for (const auto& s : self->running_) used += s->cache.bytes();
      self->stats_.kv_used_bytes = used;
    }
  } clear{this};

  const auto now = SteadyClock::now();
  std::vector<Notice> notices;
  {
    std::lock_guard lock(mutex_);
    notices.swap(notices_);
    work_arrived_ = false;
  }
  const size_t running_before = running_.size();
  expire_running(now);
  admit(now, notices);
  deliver(notices);
  take_cancels();
  take_pieces();
  bool did = !notices.empty() || running_.size() != running_before;
  if (run_forward()) {
    expire_running(SteadyClock::now());
    did = true;
  }
  return did;
}

void BatchScheduler::run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    if (step()) continue;
    // Nothing could run: nothing to do, or every slot held by an open request waiting for
    // pieces (and the queue waiting for a slot). Sleep until something arrives or a deadline.
    auto until = SteadyClock::time_point::max();
    for (const auto& s : running_) until = std::min(until, s->req.deadline);
    std::unique_lock lock(mutex_);
    for (const auto& q : queue_) until = std::min(until, q->req.deadline);
    const auto ready = [&] { return work_arrived_; };
    if (until == SteadyClock::time_point::max())
      wake_.wait(lock, stop, ready);
    else
      wake_.wait_until(lock, stop, until, ready);
  }
}

void BatchScheduler::cancel_all() {
  std::vector<Notice> notices;
  {
    std::lock_guard lock(mutex_);
    if (stepping_) throw EngineError("scheduler: cancel_all() called while step() runs");
    notices.swap(notices_);
    const auto now = SteadyClock::now();
    for (auto& q : queue_) {
      end_queued_locked(*q, GenerationStatus::Cancelled, now, notices);
    }
    queue_.clear();
    publish_gauges_locked();
  }
  deliver(notices);
  for (size_t i = running_.size(); i-- > 0;) finish(i, GenerationStatus::Cancelled);
}

size_t BatchScheduler::pending() const {
  std::lock_guard lock(mutex_);
  return stats_.pending;
}

size_t BatchScheduler::pending_file() const {
  std::lock_guard lock(mutex_);
  return stats_.pending_file;
}

size_t BatchScheduler::active() const {
  std::lock_guard lock(mutex_);
  return stats_.active;
}

SchedulerStats BatchScheduler::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace rawflow::pipeline
