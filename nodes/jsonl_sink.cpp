#include "nodes/jsonl_sink.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace rawflow::nodes {

namespace {
constexpr const char* kSinkName = "jsonl";
}

JsonlSink::JsonlSink(JsonlSinkOptions options, pipeline::MetricsRegistry* metrics)
    : options_(std::move(options)) {
  if (options_.path.empty()) throw std::invalid_argument("jsonl output: path is empty");
  pipeline::PipelineMetrics catalogue(metrics ? *metrics : own_metrics_);
  published_ = &catalogue.sink_published(kSinkName);
  dropped_closed_ = &catalogue.sink_dropped(kSinkName, "closed");

  const std::filesystem::path parent = std::filesystem::path(options_.path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec)
    throw std::runtime_error("jsonl output " + options_.path + ": cannot create directory " +
                             parent.string() + ": " + ec.message());
  file_ = std::fopen(options_.path.c_str(), "ae");
  if (!file_) fail("cannot open for appending", errno);
  last_flush_ = std::chrono::steady_clock::now();
}

JsonlSink::~JsonlSink() {
  try {
    close();
  } catch (const std::exception&) {
    // A destructor cannot report it; close() explicitly to see flush errors.
  }
}

void JsonlSink::fail(const std::string& what, int err) const {
  throw std::runtime_error("jsonl output " + options_.path + ": " + what + ": " +
                           std::strerror(err));
}

void JsonlSink::flush_locked() {
  if (std::fflush(file_) != 0) fail("cannot write", errno);
  last_flush_ = std::chrono::steady_clock::now();
}

void JsonlSink::publish(const pipeline::ResultEvent& e) {
  if (e.kind == pipeline::ResultEvent::Kind::Partial && !options_.partials) return;
  std::string line = pipeline::to_json(e);
  line += '\n';
  std::lock_guard lock(mutex_);
  if (!file_) {
    dropped_closed_->inc();
    return;
  }
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size()) fail("cannot write", errno);
  published_->inc();
  const auto now = std::chrono::steady_clock::now();
  if (options_.flush_interval_ms <= 0 ||
      now - last_flush_ >= std::chrono::milliseconds(options_.flush_interval_ms))
    flush_locked();
}

void JsonlSink::close() {
  std::lock_guard lock(mutex_);
  if (!file_) return;
  std::FILE* f = std::exchange(file_, nullptr);
  const bool flushed = std::fflush(f) == 0;
  const int err = errno;
  const bool closed = std::fclose(f) == 0;
  if (!flushed || !closed) fail("cannot write at close", flushed ? errno : err);
}

}  // namespace rawflow::nodes
