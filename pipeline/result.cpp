#include "pipeline/result.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace rawflow::pipeline {

namespace {

// Key order in the output follows docs/results.md, so a line reads the same in every sink.
using OrderedJson = nlohmann::ordered_json;

OrderedJson stats_object(const ResultEvent& e) {
  if (e.stats_json.empty()) return OrderedJson::object();
  OrderedJson stats;
  try {
    stats = OrderedJson::parse(e.stats_json);
  } catch (const nlohmann::json::exception& err) {  // parse_error, or out_of_range for `1e506`
    throw std::invalid_argument("result event of stream '" + e.stream +
                                "': stats_json is not valid JSON: " + err.what());
  }
  if (!stats.is_object())
    throw std::invalid_argument("result event of stream '" + e.stream +
                                "': stats_json must be a JSON object, got " + stats.type_name());
  return stats;
}

// Placeholders are replaced in one pass, so a value that looks like a placeholder stays as it is.
std::string substitute(std::string_view scheme, std::string_view stream, std::string_view task,
                       std::string_view kind) {
  const std::pair<std::string_view, std::string_view> placeholders[] = {
      {"{stream}", stream}, {"{task}", task}, {"{kind}", kind}};
  std::string out;
  for (size_t i = 0; i < scheme.size();) {
    bool replaced = false;
    for (const auto& [name, value] : placeholders) {
      if (scheme.substr(i, name.size()) == name) {
        out += value;
        i += name.size();
        replaced = true;
        break;
      }
    }
    if (!replaced) out += scheme[i++];
  }
  return out;
}

}  // namespace

ResultEvent make_event(ResultEvent::Kind kind, std::string stream, std::string task,
                       std::string model) {
  ResultEvent e;
  e.kind = kind;
  e.stream = std::move(stream);
  e.task = std::move(task);
  e.wall_utc = utc_now_iso8601();
  e.model = std::move(model);
  return e;
}

ResultEvent end_event(std::string stream, std::string model, bool complete) {
  ResultEvent e = make_event(ResultEvent::Kind::End, std::move(stream), "", std::move(model));
  e.complete = complete;
  return e;
}

const char* kind_name(ResultEvent::Kind k) {
  switch (k) {
    case ResultEvent::Kind::Partial:
      return "partial";
    case ResultEvent::Kind::Final:
      return "final";
    case ResultEvent::Kind::Gap:
      return "gap";
    case ResultEvent::Kind::Error:
      return "error";
    case ResultEvent::Kind::Stats:
      return "stats";
    case ResultEvent::Kind::End:
      return "end";
  }
  return "unknown";
}

std::string to_json(const ResultEvent& e) {
  OrderedJson j;
  j["schema"] = kResultSchemaVersion;
  j["stream"] = e.stream;
  j["task"] = e.task;
  j["request_id"] = e.request_id;
  j["kind"] = kind_name(e.kind);
  j["text"] = e.text;
  j["media_start"] = e.media_start_s;
  j["media_end"] = e.media_end_s;
  if (!e.media_start_utc.empty()) j["media_start_utc"] = e.media_start_utc;
  j["wall_utc"] = e.wall_utc.empty() ? utc_now_iso8601() : e.wall_utc;
  j["model"] = e.model;
  j["tokens"] = {{"prompt", e.prompt_tokens}, {"generated", e.generated_tokens}};
  j["timing_ms"] = {{"queue", e.queue_ms}, {"prefill", e.prefill_ms}, {"decode", e.decode_ms}};
  if (e.close_ms >= 0) j["timing_ms"]["close"] = e.close_ms;
  if (e.kind == ResultEvent::Kind::Final && e.latency_ms >= 0) j["latency_ms"] = e.latency_ms;
  if (e.kind == ResultEvent::Kind::Error) j["error"] = e.error;
  if (e.kind == ResultEvent::Kind::Stats) j["stats"] = stats_object(e);
  if (e.kind == ResultEvent::Kind::End) j["complete"] = e.complete;
  // A partial may end inside a multi-byte character if the decoder cut it there; replacing the
  // bad bytes (U+FFFD) keeps every line valid JSON instead of losing the event.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string topic_for(const std::string& scheme, const ResultEvent& e) {
  return substitute(scheme, e.stream.empty() ? "_" : e.stream, e.task.empty() ? "_" : e.task,
                    kind_name(e.kind));
}

std::string utc_now_iso8601() { return utc_iso8601(std::chrono::system_clock::now()); }

std::string utc_iso8601(std::chrono::system_clock::time_point t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

}  // namespace rawflow::pipeline
