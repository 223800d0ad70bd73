#pragma once
// The messages on the graph's edges (pipeline/graph.cpp), in data-path order:
//
//   source gateway ─SourceUnit─► framing ─FramedWork─► projection ─DecoderWork─► decoder
//   ─Outcome─► result order ─ResultEvent─► sinks
//
// (framing and projection also send ResultEvents / Outcomes for gaps, errors and drops).
#include <chrono>
#include <string>
#include <variant>
#include <vector>

#include "media/image.h"
#include "model/gemma4/multimodal_prompt.h"
#include "pipeline/result.h"
#include "pipeline/windows.h"

namespace rawflow::pipeline {

// What a source thread hands to the graph.
struct VideoUnit {
  media::RgbImage image;
  double t = 0;  // on the stream timeline
};
struct AudioUnit {
  std::vector<float> samples;  // 16 kHz mono
  double t = 0;                // the first sample's place on the timeline
};
struct GapUnit {
  double seconds = 0;
  std::string why;
};
struct EndUnit {
  bool ok = true;
};
struct ErrorUnit {
  std::string message;
};
// A live source stopped delivering (its connection ended, failed or stalled): the stream's open
// windows are closed now; the outage's length comes later, as a gap, when media flows again.
struct LostUnit {};
struct SourceUnit {
  size_t stream = 0;
  std::variant<VideoUnit, AudioUnit, GapUnit, EndUnit, ErrorUnit, LostUnit> body;
  // When the unit reached the graph: live streams place the timeline on the wall clock with it.
  std::chrono::system_clock::time_point arrived = std::chrono::system_clock::now();
  // The same moment on the steady clock, where latencies are measured from.
  std::chrono::steady_clock::time_point arrived_steady = std::chrono::steady_clock::now();
};

// What framing hands to projection: a request, or (streaming prefill) a piece of an open
// transcribe window's audio, or the news that an open window ends without a request.
using FramedWork = std::variant<MediaRequest, AudioPiece, AbandonedWindow>;

// A request's prompt, embedded and tokenized: what the decoder runs.
struct DecodeJob {
  RequestInfo request;
  PromptInput prompt;
  // A window whose audio went ahead in PrefillPieces (MediaRequest::window_start): `prompt` is
  // only its closing piece, the rest of its audio and the text after it.
  int64_t window_start = -1;
};

// Streaming prefill, projection → decoder: a piece of an open transcribe window's prompt (the
// window's first piece opens its request in the engine) or, with `abandon`, the news that the
// window ends without a request, so that its engine request is cancelled.
struct PrefillPiece {
  size_t stream = 0, task = 0;
  int64_t window_start = 0;  // the window's key with (stream, task)
  PromptInput prompt;        // the first piece: the prompt's beginning; then soft tokens only
  int64_t prompt_tokens_bound = 0;  // the closed prompt's length at most (first piece)
  bool droppable = false;           // the stream's overflow is drop_oldest
  bool abandon = false;
};

// What projection hands to the decoder.
using DecoderWork = std::variant<DecodeJob, PrefillPiece>;

// One event about a request (a partial, its final, or its error), with the request it belongs to:
// the result order node releases finals per (stream, task) in `request.sequence` order.
struct Outcome {
  RequestInfo request;
  ResultEvent event;
  bool is_final() const { return event.kind != ResultEvent::Kind::Partial; }
};

// An event of `kind` about request `r` of `cfg`, made now: its stream, task, id and media range.
inline Outcome outcome_of(const PipelineConfig& cfg, const RequestInfo& r, ResultEvent::Kind kind,
                          const std::string& model) {
  Outcome o{r, make_event(kind, cfg.streams[r.stream].name, cfg.tasks[r.task].name, model)};
  o.event.request_id = r.id;
  o.event.media_start_s = r.start_s;
  o.event.media_start_utc = r.start_utc;
  o.event.media_end_s = r.end_s;
  return o;
}

}  // namespace rawflow::pipeline
