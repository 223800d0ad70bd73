#include "nodes/stdout_sink.h"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

namespace rawflow::nodes {

namespace {

constexpr const char* kSinkName = "stdout";

std::string seconds_range(double start_s, double end_s) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f\u2013%.1fs", start_s, end_s);
  return buf;
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

// A stats event for a person: the stream's main counters in one short line (the json format and
// the other sinks carry every series).
std::string stats_summary(const std::string& stats_json) {
  const nlohmann::json j = nlohmann::json::parse(stats_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return one_line(stats_json);
  // Sum of `field` over a metric's series whose labels include `label` (all when empty).
  const auto total = [&](const char* name, const char* field = "value",
                         std::pair<const char*, const char*> label = {}) {
    double sum = 0;
    if (auto it = j.find(name); it != j.end() && it->is_array())
      for (const auto& s : *it)
        if (!label.first || s["labels"].value(label.first, "") == label.second)
          sum += s.value(field, 0.0);
    return sum;
  };
  const auto count = [&](const char* name, const char* field = "value",
                         std::pair<const char*, const char*> label = {}) {
    return static_cast<long long>(total(name, field, label));
  };
  char buf[320];
  if (!j.contains("rawflow_audio_frames_in_total")) {  // the engine's event (stream "")
    const double forwards = total("rawflow_sequences_per_forward", "count");
    const double sequences = total("rawflow_sequences_per_forward", "sum");
    std::snprintf(buf, sizeof buf, "%.0f forwards, %.2f sequences per forward, %.1f tokens/s",
                  forwards, forwards > 0 ? sequences / forwards : 0.0,
                  total("rawflow_decode_tokens_per_second"));
    return buf;
  }
  std::snprintf(buf, sizeof buf,
                "audio frames %lld in / %lld used, video frames %lld in / %lld used; %lld results, "
                "%lld dropped; %lld in flight; %lld gaps, %lld reconnects",
                count("rawflow_audio_frames_in_total"), count("rawflow_audio_frames_used_total"),
                count("rawflow_video_frames_in_total"), count("rawflow_video_frames_used_total"),
                count("rawflow_request_latency_seconds", "count"), count("rawflow_dropped_total"),
                count("rawflow_queue_depth", "value", {"queue", "requests"}),
                count("rawflow_gaps_total"), count("rawflow_reconnects_total"));
  return buf;
}

}  // namespace

std::string format_text_line(const pipeline::ResultEvent& e) {
  using Kind = pipeline::ResultEvent::Kind;
  const std::string who = e.task.empty() ? e.stream : e.stream + "/" + e.task;
  switch (e.kind) {
    case Kind::Final:
      return "[" + who + " " + seconds_range(e.media_start_s, e.media_end_s) + "] " +
             one_line(e.text);
    case Kind::Partial:
      return "[" + who + " " + seconds_range(e.media_start_s, e.media_end_s) + " partial] " +
             one_line(e.text);
    case Kind::Gap: {
      std::string line = "[" + who + " gap " + seconds_range(e.media_start_s, e.media_end_s) + "]";
      return e.text.empty() ? line : line + " " + one_line(e.text);
    }
    case Kind::Error:
      return "[" + who + " error] " + one_line(e.error);
    case Kind::Stats:
      return "[" + (who.empty() ? std::string("rawflow") : who) + " stats] " +
             stats_summary(e.stats_json.empty() ? "{}" : e.stats_json);
    case Kind::End:
      return "[" + who + (e.complete ? " end]" : " end, incomplete]");
  }
  return "[" + who + "] " + one_line(e.text);
}

StdoutSink::StdoutSink(StdoutSinkOptions options, pipeline::MetricsRegistry* metrics)
    : StdoutSink(options, std::cout, metrics) {}

StdoutSink::StdoutSink(StdoutSinkOptions options, std::ostream& out,
                       pipeline::MetricsRegistry* metrics)
    : options_(options), out_(&out) {
  pipeline::PipelineMetrics catalogue(metrics ? *metrics : own_metrics_);
  published_ = &catalogue.sink_published(kSinkName);
  dropped_closed_ = &catalogue.sink_dropped(kSinkName, "closed");
}

void StdoutSink::publish(const pipeline::ResultEvent& e) {
  if (e.kind == pipeline::ResultEvent::Kind::Partial && !options_.partials) return;
  const std::string line = options_.json ? pipeline::to_json(e) : format_text_line(e);
  std::lock_guard lock(mutex_);
  if (closed_) {
    dropped_closed_->inc();
    return;
  }
  // Flushed per line: stdout is usually a pipe or a terminal someone is watching.
  *out_ << line << '\n' << std::flush;
  published_->inc();
}

void StdoutSink::close() {
  std::lock_guard lock(mutex_);
  if (closed_) return;
  closed_ = true;
  *out_ << std::flush;
}

}  // namespace rawflow::nodes
