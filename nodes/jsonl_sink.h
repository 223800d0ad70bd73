#pragma once
// JSONL output: one result object (docs/results.md) per line, appended to a file.
//
// Lines reach the file whole: each flush is one write() of complete lines (stdio's buffer would
// cut a line at its 4 kB boundary into two writes, and a process killed between them leaves half
// a line). A file whose last line was cut anyway (a kill -9 inside that write, a full disk) is
// repaired when the sink opens it: the partial tail is removed and said on stderr, so every line
// of the file is a complete JSON object.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "nodes/result_sink.h"
#include "pipeline/metrics.h"

namespace rawflow::nodes {

struct JsonlSinkOptions {
  std::string path;  // created with its parent directories if missing; appended to otherwise
  bool partials = false;
  // 0: flush after every line (a reader or a crash sees every result). N > 0: flush at the first
  // line at least N ms after the previous flush, and at close — for bursts of partials.
  int flush_interval_ms = 0;
};

class JsonlSink final : public ResultSink {
 public:
  // Opens the file now; std::runtime_error naming the path if it cannot be opened for appending.
  // Counts go to `metrics` as rawflow_sink_*{sink="jsonl"} (when not null).
  explicit JsonlSink(JsonlSinkOptions options, pipeline::MetricsRegistry* metrics = nullptr);
  ~JsonlSink() override;
  JsonlSink(const JsonlSink&) = delete;
  JsonlSink& operator=(const JsonlSink&) = delete;

  // Throws std::runtime_error naming the path if the line cannot be written or flushed.
  void publish(const pipeline::ResultEvent& e) override;
  void close() override;

  // Bytes of a cut last line removed when the file was opened (0: it ended with a newline).
  int64_t repaired_bytes() const { return repaired_bytes_; }

 private:
  void repair_cut_last_line();
  void flush_locked();
  [[noreturn]] void fail(const std::string& what, int err) const;

  JsonlSinkOptions options_;
  pipeline::MetricsRegistry own_metrics_;
  pipeline::Counter* published_ = nullptr;
  pipeline::Counter* dropped_closed_ = nullptr;
  std::mutex mutex_;
  int fd_ = -1;
  std::string pending_;  // complete lines not yet written
  std::chrono::steady_clock::time_point last_flush_;
  int64_t repaired_bytes_ = 0;
};

}  // namespace rawflow::nodes
