#pragma once
// `rawflow run`'s diagnostics on stderr: every error event, and a stream that ended incomplete, as
// one readable line each (format_text_line), whatever outputs are configured — a run whose only
// output is a JSONL file or ZeroMQ still tells the person who started it why a stream failed.
#include <iosfwd>
#include <mutex>
#include <string>

#include "nodes/result_sink.h"

namespace rawflow::nodes {

class StderrLog final : public ResultSink {
 public:
  // Lines go to `out` (std::cerr in rawflow run), each prefixed with `prefix` ("rawflow run: ").
  StderrLog(std::ostream& out, std::string prefix);
  void publish(const pipeline::ResultEvent& e) override;
  void close() override;

 private:
  std::ostream* out_;
  const std::string prefix_;
  std::mutex mutex_;
  bool closed_ = false;
};

}  // namespace rawflow::nodes
