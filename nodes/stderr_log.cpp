#include "nodes/stderr_log.h"

#include <ostream>

#include "nodes/stdout_sink.h"

namespace rawflow::nodes {

StderrLog::StderrLog(std::ostream& out, std::string prefix)
    : out_(&out), prefix_(std::move(prefix)) {}

void StderrLog::publish(const pipeline::ResultEvent& e) {
  using Kind = pipeline::ResultEvent::Kind;
  if (e.kind != Kind::Error && !(e.kind == Kind::End && !e.complete)) return;
  const std::string line = prefix_ + format_text_line(e);
  std::lock_guard lock(mutex_);
  if (closed_) return;
  *out_ << line << '\n' << std::flush;
}

void StderrLog::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
}

}  // namespace rawflow::nodes
