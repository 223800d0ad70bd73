#include "nodes/stdout_sink.h"

#include <cstdio>
#include <iostream>

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
             one_line(e.stats_json.empty() ? "{}" : e.stats_json);
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
