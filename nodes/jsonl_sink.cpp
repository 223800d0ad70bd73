#include "nodes/jsonl_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "nodes/write_all.h"

namespace rawflow::nodes {

namespace {
constexpr const char* kSinkName = "jsonl";
constexpr off_t kRepairScanBytes = 1 << 20;  // a result line is far shorter
}  // namespace

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
  fd_ = ::open(options_.path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot open for appending", errno);
  repair_cut_last_line();
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

// The file's last byte should be a newline; if not, the bytes after the last newline (within the
// last MiB) are a line cut short: removed, so the next line does not join it.
void JsonlSink::repair_cut_last_line() {
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) return;
  const off_t from = std::max<off_t>(0, st.st_size - kRepairScanBytes);
  std::string tail(static_cast<size_t>(st.st_size - from), '\0');
  if (::pread(fd_, tail.data(), tail.size(), from) != static_cast<ssize_t>(tail.size())) return;
  if (tail.back() == '\n') return;
  const size_t nl = tail.rfind('\n');
  if (nl == std::string::npos && from > 0) return;  // a "line" over 1 MiB: not ours to cut
  const off_t keep = nl == std::string::npos ? 0 : from + static_cast<off_t>(nl) + 1;
  if (::ftruncate(fd_, keep) != 0) fail("cannot remove a cut last line", errno);
  repaired_bytes_ = st.st_size - keep;
  std::fprintf(stderr,
               "rawflow: jsonl output %s: its last line was cut short (a run stopped while "
               "writing it): removed %lld bytes\n",
               options_.path.c_str(), static_cast<long long>(repaired_bytes_));
}

void JsonlSink::flush_locked() {
  const int err = write_all(fd_, pending_);
  pending_.clear();
  if (err) fail("cannot write", err);
  last_flush_ = std::chrono::steady_clock::now();
}

void JsonlSink::publish(const pipeline::ResultEvent& e) {
  if (e.kind == pipeline::ResultEvent::Kind::Partial && !options_.partials) return;
  std::string line = pipeline::to_json(e);
  line += '\n';
  std::lock_guard lock(mutex_);
  if (fd_ < 0) {
    dropped_closed_->inc();
    return;
  }
  pending_ += line;
  published_->inc();
  const auto now = std::chrono::steady_clock::now();
  if (options_.flush_interval_ms <= 0 ||
      now - last_flush_ >= std::chrono::milliseconds(options_.flush_interval_ms))
    flush_locked();
}

void JsonlSink::close() {
  std::lock_guard lock(mutex_);
  if (fd_ < 0) return;
  std::string error;
  try {
    flush_locked();
  } catch (const std::runtime_error& e) {
    error = e.what();
  }
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0 && error.empty()) fail("cannot write at close", errno);
  if (!error.empty()) throw std::runtime_error(error);
}

}  // namespace rawflow::nodes
