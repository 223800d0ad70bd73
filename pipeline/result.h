#pragma once
// What the pipeline publishes: one event per partial text, final text, gap, error or stats report,
// shared by every sink (ZeroMQ, JSONL, stdout). The JSON form is versioned; docs/results.md is its
// reference.
#include <chrono>
#include <cstdint>
#include <string>

namespace rawflow::pipeline {

inline constexpr int kResultSchemaVersion = 1;

struct ResultEvent {
  enum class Kind { Partial, Final, Gap, Error, Stats, End };
  Kind kind = Kind::Final;
  std::string stream;        // configured stream name
  std::string task;          // configured task name ("" for stream-level gap/error/stats)
  uint64_t request_id = 0;   // unique per process; partials and the final of a request share it
  std::string text;          // partial: the new text since the last partial; final: the whole text
  double media_start_s = 0;  // media time range the request covers (gap: the missing range)
  double media_end_s = 0;
  // Live streams: the wall clock at which media_start was received (ISO-8601 UTC); "" otherwise.
  std::string media_start_utc;
  std::string wall_utc;  // ISO-8601 UTC with milliseconds, when the event was made
  std::string model;     // model name (general.name or file name)
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double queue_ms = 0;    // request made → first forward that includes it
  double prefill_ms = 0;  // its prompt's forwards
  double decode_ms = 0;   // its decode steps
  double close_ms = -1;   // streamed prompts: closing piece → prompt prefilled; < 0: none
  // Final: its request's media complete (the unit that completed it reached the graph) → the
  // final released to the sinks. < 0: not measured (not a final, or no media time).
  double latency_ms = -1;
  std::string error;       // kind Error: what went wrong, where
  std::string stats_json;  // kind Stats: a JSON object with the counters (already serialized)
  // kind End: the source read its input to the end (false: it could not be opened, or failed)
  bool complete = false;
};

// An event of `kind` made now (wall_utc), about `stream` and `task` ("" for stream-level events).
ResultEvent make_event(ResultEvent::Kind kind, std::string stream, std::string task,
                       std::string model);
// The stream's `end` event: its last, after every final and error of its requests.
ResultEvent end_event(std::string stream, std::string model, bool complete);
const char* kind_name(ResultEvent::Kind k);
// The schema-versioned JSON object (one line, no trailing newline).
std::string to_json(const ResultEvent& e);
// Topic for ZeroMQ: the scheme with {stream} and {task} substituted (task "" → "_").
std::string topic_for(const std::string& scheme, const ResultEvent& e);
// As ISO-8601 UTC with milliseconds ("2026-12-01T13:56:10.123Z").
std::string utc_iso8601(std::chrono::system_clock::time_point t);
std::string utc_now_iso8601();

}  // namespace rawflow::pipeline
