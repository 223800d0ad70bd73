#pragma once
// Results on standard output, as readable lines or as JSON lines (docs/results.md).
#include <iosfwd>
#include <mutex>
#include <string>

#include "nodes/result_sink.h"
#include "pipeline/metrics.h"

namespace rawflow::nodes {

struct StdoutSinkOptions {
  bool json = false;  // false: text lines (format_text_line); true: the JSON object per line
  bool partials = false;
};

// One readable line, no newline at the end; line breaks in the text become spaces:
//   final    `[lobby/transcribe 12.0–22.0s] text`
//   partial  `[lobby/transcribe 12.0–22.0s partial] new text`
//   gap      `[lobby gap 30.0–35.5s]`
//   error    `[lobby/describe error] message`
//   stats    `[lobby stats] {"rawflow_...": ...}`
std::string format_text_line(const pipeline::ResultEvent& e);

class StdoutSink final : public ResultSink {
 public:
  // `out` (std::cout by default) must outlive the sink. Counts go to `metrics` as
  // rawflow_sink_*{sink="stdout"} (when not null).
  explicit StdoutSink(StdoutSinkOptions options, pipeline::MetricsRegistry* metrics = nullptr);
  StdoutSink(StdoutSinkOptions options, std::ostream& out,
             pipeline::MetricsRegistry* metrics = nullptr);

  void publish(const pipeline::ResultEvent& e) override;
  void close() override;

 private:
  StdoutSinkOptions options_;
  std::ostream* out_;
  pipeline::MetricsRegistry own_metrics_;
  pipeline::Counter* published_ = nullptr;
  pipeline::Counter* dropped_closed_ = nullptr;
  std::mutex mutex_;
  bool closed_ = false;
};

}  // namespace rawflow::nodes
