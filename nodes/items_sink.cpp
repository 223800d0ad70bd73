#include "nodes/items_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "nodes/write_all.h"

namespace rawflow::nodes {
namespace {

namespace fs = std::filesystem;
using Kind = pipeline::ResultEvent::Kind;

[[noreturn]] void fail(const std::string& path, const char* what, int err) {
  throw std::runtime_error("batch results " + path + ": " + what + ": " + std::strerror(err));
}

}  // namespace

ItemsSink::ItemsSink(ItemsSinkOptions options) : options_(std::move(options)) {
  std::error_code ec;
  fs::create_directories(fs::path(options_.dir) / "items", ec);
  if (ec)
    fail((fs::path(options_.dir) / "items").string(), "cannot create the directory", ec.value());
}

void ItemsSink::write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(tmp, "cannot create", errno);
  if (const int err = write_all(fd, text)) {
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(tmp, "cannot write", err);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(tmp, "cannot flush", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(path, "cannot rename the finished file into place", err);
  }
}

void ItemsSink::publish(const pipeline::ResultEvent& e) {
  if (e.kind == Kind::Partial || e.kind == Kind::Stats || e.stream.empty()) return;
  std::lock_guard lock(mutex_);
  if (closed_) return;
  Item& item = items_[e.stream];
  if (e.kind == Kind::End) {
    finish(e.stream, item, e.complete);
    items_.erase(e.stream);
    return;
  }
  item.lines += pipeline::to_json(e) + "\n";
  if (e.kind == Kind::Error)
    item.errors.push_back(e.error);
  else
    item.media_s = std::max(item.media_s, e.media_end_s);
  if (e.kind == Kind::Final && options_.transcribe_tasks.count(e.task))
    item.transcripts[e.task].add(e.media_start_s, e.media_end_s, e.text);
}

void ItemsSink::finish(const std::string& id, Item& item, bool complete) {
  ItemOutcome outcome{id, "", {}, item.media_s};
  if (!complete) {
    for (const std::string& m : item.errors) {
      if (!outcome.failure.empty()) outcome.failure += "; ";
      outcome.failure += m;
    }
    if (outcome.failure.empty()) outcome.failure = "the input was not read to its end";
  } else {
    outcome.errors = std::move(item.errors);
    const fs::path base = fs::path(options_.dir) / "items" / id;
    for (const std::string& task : options_.transcribe_tasks) {
      const std::vector<pipeline::Cue> cues = item.transcripts[task].cues();
      const std::string stem = base.string() + "." + task;
      write_file_atomically(stem + ".txt", pipeline::to_text(cues));
      write_file_atomically(stem + ".srt", pipeline::to_srt(cues));
      write_file_atomically(stem + ".vtt", pipeline::to_vtt(cues));
    }
    write_file_atomically(base.string() + ".jsonl", item.lines);
  }
  if (options_.on_done) options_.on_done(outcome);
}

void ItemsSink::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  items_.clear();
}

}  // namespace rawflow::nodes
