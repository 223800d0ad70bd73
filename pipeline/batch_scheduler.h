#pragma once
// The decoder's scheduler: one Gemma4Text serving every stream with continuous batching. Each
// step() is one forward pass holding one decode token of every running sequence and the next
// prompt chunk of every sequence still prefilling; a finished sequence frees its slot and KV cache
// at once and a queued request takes it at the next step. docs/scheduler.md explains the step,
// admission, the KV budget estimate, the drop policy and the stats.
//
// Threads: submit(), append(), pending(), active() and stats() may be called from any thread.
// step() and run() drive the engine and must be called from one thread at a time (the engine runs
// one forward at a time, with OpenMP inside). Every callback runs on the thread that calls step(),
// outside the scheduler's lock, so a callback may call submit() or stats().
//
// Plain C++ (no TBB): the decoder node (nodes/decoder.*) submits to it; Pipeline::run steps it.
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "model/gemma4/gemma4_text.h"
#include "model/gemma4/multimodal_prompt.h"
#include "model/gemma4/sampler.h"
#include "model/tokenizer/tokenizer.h"

namespace rawflow::pipeline {

using SteadyClock = std::chrono::steady_clock;

// New text of one request since its previous delta: valid UTF-8, never empty. The deltas of a
// request, concatenated, equal its final text.
struct TokenDelta {
  uint64_t id = 0;
  std::string text;
  int64_t generated_tokens = 0;  // so far, including the tokens behind this text
};

enum class GenerationStatus {
  Stop,       // a stop id was sampled (it is not part of the text)
  MaxTokens,  // max_new_tokens generated
  Deadline,   // the deadline passed; text holds what was generated until then (maybe nothing)
  Dropped,    // a live request dropped from the queue under pressure, never started
  Error,      // a bad request or an engine failure; `error` says what
  Cancelled,  // the scheduler shut down (cancel_all() or its destructor) before it finished
};
inline constexpr size_t kGenerationStatusCount = 6;
std::string_view to_string(GenerationStatus s);

struct GenerationResult {
  uint64_t id = 0;
  std::string stream, task;
  GenerationStatus status = GenerationStatus::Error;
  std::string text;
  std::string error;                         // Error only
  std::vector<int32_t> tokens;               // generated ids, without the stop id
  int64_t prompt_tokens = 0;                 // of the request's prompt (prefilled or not)
  int64_t prompt_tokens_prefilled_open = 0;  // of them, prefilled while the request was open
  int64_t generated_tokens = 0;              // == tokens.size()
  // Wall times. queue: request created → start of the first forward that includes it (until the
  // end for a request that never ran). prefill / decode: the forwards that carried its prompt
  // chunks / its decode tokens, each counted whole (it shared them with the other sequences).
  double queue_ms = 0, prefill_ms = 0, decode_ms = 0;
  // Open requests: from the closing piece's append() to the end of the forward that prefilled
  // the prompt's last token (a forward in flight, then the closing prefill); < 0 otherwise or
  // when it never got there. Where a streamed window's latency goes (docs/performance.md).
  double close_ms = -1;
  // Indices (SchedulerStats::forwards numbering, from 1) of its first and last forward; 0 = none.
  uint64_t first_forward = 0, last_forward = 0;
  size_t kv_estimate_bytes = 0;  // what admission reserved for it (KvCache::bytes_for)

  bool ok() const {
    return status == GenerationStatus::Stop || status == GenerationStatus::MaxTokens;
  }
};

struct GenerationRequest {
  uint64_t id = 0;
  std::string stream, task;  // carried into the result, for the node's events
  PromptInput prompt;        // soft_index / block_ids may be left empty for a text-only prompt
  SamplingParams sampling;
  int max_new_tokens = 256;
  std::vector<int32_t> stop_ids;  // empty: stop_ids() of the tokenizer's vocabulary
  // When the request was made (its queue time starts there); default: when it is submitted.
  SteadyClock::time_point created{};
  SteadyClock::time_point deadline = SteadyClock::time_point::max();  // max = none
  // Droppable work (a stream whose overflow is drop_oldest: live streams by default) may be
  // dropped from the queue when its stream's queue is full; other work never is.
  bool live = false;
  // Streaming prefill (docs/scheduler.md): an open request's `prompt` is only its beginning;
  // append() adds the rest as it arrives and the last piece closes it. Meanwhile the request is
  // admitted like any other, prefills what has arrived and keeps its slot; it decodes once closed.
  // Its last token so far is held back until the next piece, so that the closing piece always
  // brings a token whose logits start the decode. `open_prompt_tokens` bounds the closed prompt's
  // length: the KV reservation and the context check use it, and a piece beyond it is an error.
  bool open = false;
  int64_t open_prompt_tokens = 0;
  std::function<void(const TokenDelta&)> on_partial;     // optional
  std::function<void(const GenerationResult&)> on_done;  // optional; called exactly once
  // Optional: each logits row (vocabulary size) the request samples a token from, before sampling.
  std::function<void(std::span<const float>)> on_logits;
};

// One forward pass, reported to SchedulerOptions::on_forward (e.g. for a metrics histogram).
struct ForwardInfo {
  int sequences = 0;          // chunks in the forward
  int prefill_sequences = 0;  // of which prompt chunks
  int64_t rows = 0;           // tokens through the forward
  double seconds = 0;         // wall time of Gemma4Text::forward
};

struct SchedulerOptions {
  int max_batch = 4;        // sequences per forward = sequences running at once (≥ 1)
  int prefill_chunk = 512;  // prompt tokens per sequence per forward; an image block is never cut
  // An open request's tokens wait while other requests decode or prefill (their results are
  // due now; its window is still open) until this many have arrived unprefilled: then they join
  // the forward, so that the window's end never finds much left (docs/scheduler.md).
  size_t open_backlog_tokens = 128;
  size_t kv_budget_bytes = 0;  // sum of the running requests' KV estimates; 0 = no limit
  // Queued live requests per stream (GenerationRequest::stream), each ≥ 1: a live request that
  // brings its stream over the limit drops that stream's oldest queued live request, so a busy
  // stream never pushes out the work of the others. Streams not listed use the default.
  std::map<std::string, size_t, std::less<>> live_queue_limits;
  size_t default_live_queue_limit = 4;
  ForwardOptions forward;
  std::function<void(const ForwardInfo&)> on_forward;  // optional, on the stepping thread
};

// Plain numbers for the metrics layer. Counters only grow; the gauges are as of the last step or
// submit.
struct SchedulerStats {
  uint64_t submitted = 0;
  uint64_t forwards = 0;
  uint64_t sequences_in_forwards = 0;  // sum over forwards: mean = this / forwards
  uint64_t max_sequences_per_forward = 0;
  std::vector<uint64_t> forwards_by_sequences;  // [n] = forwards with n sequences, n ≤ max_batch
  uint64_t mixed_forwards = 0;  // forwards holding prompt chunks and decode tokens together
  uint64_t tokens_prefilled = 0;
  uint64_t open_requests = 0;          // submitted open (streaming prefill)
  uint64_t tokens_prefilled_open = 0;  // of tokens_prefilled: while their request was still open
  uint64_t tokens_generated = 0;
  double forward_seconds = 0;
  std::array<uint64_t, kGenerationStatusCount> finished{};  // by GenerationStatus
  uint64_t dropped_pressure = 0;                            // == finished[Dropped]
  uint64_t deadline_in_queue = 0;                           // expired before their first forward
  uint64_t deadline_running = 0;  // expired while running (partial text kept)
  uint64_t callback_errors = 0;   // exceptions thrown by callbacks (caught, counted)
  size_t active = 0;
  size_t pending = 0, pending_live = 0, pending_file = 0;
  size_t kv_reserved_bytes = 0;  // sum of the running requests' estimates
  size_t kv_used_bytes = 0;      // sum of their caches' KvCache::bytes()
  size_t kv_used_peak_bytes = 0;
};

class BatchScheduler {
 public:
  // Keeps references to `model` and `tokenizer`. Throws EngineError for bad options.
  BatchScheduler(const Gemma4Text& model, const Tokenizer& tokenizer, SchedulerOptions opt);
  // Finishes whatever is left with Cancelled (cancel_all()).
  ~BatchScheduler();
  BatchScheduler(const BatchScheduler&) = delete;
  BatchScheduler& operator=(const BatchScheduler&) = delete;

  // Queues a request; never blocks and never drops file work (the caller applies backpressure
  // with pending_file()). A live request that brings its stream's queued live requests over the
  // stream's limit drops the oldest queued live request of that stream. A bad request (empty
  // prompt, id outside the vocabulary, inconsistent soft rows, longer than the context, KV estimate
  // above the whole budget) finishes with Error. Its on_done runs on the stepping thread.
  void submit(GenerationRequest req);

  // Adds `piece` to the prompt of open request `id`; `last` closes it. `deadline`, when given,
  // replaces the request's (an open request's deadline is usually known once its media is). Any
  // thread. Returns false, discarding the piece, when `id` is not an open request waiting for
  // pieces (unknown, closed, or finished: dropped, expired, failed). A bad piece ends the request
  // with Error.
  bool append(uint64_t id, PromptInput piece, bool last,
              std::optional<SteadyClock::time_point> deadline = std::nullopt);
  // Ends request `id` with Cancelled: at once when queued, at the next step when running (its
  // cache is freed then). Any thread. Returns false when no such request is queued or running.
  bool cancel(uint64_t id);

  // One forward over the running sequences after delivering queued notices, expiring deadlines
  // and admitting queued requests. Returns false when there was nothing to do. Throws EngineError
  // when called concurrently; engine failures finish the sequences of that forward with Error.
  bool step();
  // step() until `stop` is requested, sleeping while there is nothing to do.
  void run(std::stop_token stop);
  // Finishes every queued and running request with Cancelled (on the calling thread, which must
  // not be stepping at the same time).
  void cancel_all();

  size_t pending() const;       // queued, not yet running
  size_t pending_file() const;  // of which file (never dropped) requests
  size_t active() const;        // running
  SchedulerStats stats() const;

 private:
  struct Queued;
  struct Sequence;
  struct Notice;

  struct OpenPrompt;

  void admit(SteadyClock::time_point now, std::vector<Notice>& notices);
  void take_pieces();
  void take_cancels();
  void expire_running(SteadyClock::time_point now);
  bool run_forward();  // false when no sequence had anything to run
  void finish(size_t index, GenerationStatus status, std::string error = {});
  size_t live_queue_limit(std::string_view stream) const;
  void drop_oldest_live_locked(std::string_view stream, std::vector<Notice>& notices);
  void end_queued_locked(Queued& q, GenerationStatus status, SteadyClock::time_point now,
                         std::vector<Notice>& notices);
  void deliver(std::vector<Notice>& notices);
  void publish_gauges_locked();
  void partial(Sequence& s, std::string text);
  std::string check_request(const GenerationRequest& r) const;
  std::string check_prompt(const PromptInput& p, const std::string& who) const;

  const Gemma4Text& model_;
  const Tokenizer& tok_;
  const SchedulerOptions opt_;
  const std::vector<int32_t> default_stops_;

  mutable std::mutex mutex_;  // guards queue_, notices_, stats_
  std::condition_variable_any wake_;
  std::deque<std::unique_ptr<Queued>> queue_;
  std::vector<Notice> notices_;  // finished outside a forward (dropped, rejected), not delivered
  // Open requests still taking pieces (queued or running), with the pieces not yet taken.
  std::map<uint64_t, OpenPrompt> open_;
  bool work_arrived_ = false;       // a request or piece arrived since the last step() began
  std::set<uint64_t> running_ids_;  // of running_, for cancel() from other threads
  std::set<uint64_t> cancels_;      // running requests cancel() asked to end
  SchedulerStats stats_;

  // Owned by the stepping thread.
  std::vector<std::unique_ptr<Sequence>> running_;
  size_t kv_reserved_ = 0;
  bool stepping_ = false;  // under mutex_: a second concurrent step() is an error
};

}  // namespace rawflow::pipeline
