#pragma once
// `rawflow batch`'s results, one set of files per input (a stream of the run, named by the
// input's id): DIR/items/<id>.jsonl with its finals, errors and gaps (docs/results.md; no
// partials or stats), and for each transcribe task the stitched transcript
// (pipeline/transcript.h) as <id>.<task>.txt, .srt and .vtt.
//
// Nothing is written before the input's `end` event: then, if it was read to its end, each file is
// written under a temporary name, flushed to disk and renamed, the .jsonl last — its presence
// is what marks the input done, so a reader (or a resumed run) never sees half a result. An
// input that ended incomplete leaves no file; its reason goes to `on_done`.
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "nodes/result_sink.h"
#include "pipeline/transcript.h"

namespace rawflow::nodes {

// How one input ended.
struct ItemOutcome {
  std::string id;
  std::string failure;  // "" when its results were written, else why not (its errors, joined)
  // A written input's error events (e.g. a video without the audio a task needs): it is done,
  // but the user should hear of them.
  std::vector<std::string> errors;
  double media_s = 0;  // how far its media reached: the latest end of a final or gap
};

struct ItemsSinkOptions {
  std::string dir;                         // DIR: results go to DIR/items/
  std::set<std::string> transcribe_tasks;  // whose finals are stitched into subtitles
  // Called once per input at its end, from the thread that publishes the end event.
  std::function<void(const ItemOutcome&)> on_done;
};

class ItemsSink final : public ResultSink {
 public:
  explicit ItemsSink(ItemsSinkOptions options);
  // Throws std::runtime_error naming the path if a result file cannot be written.
  void publish(const pipeline::ResultEvent& e) override;
  // Inputs that have not ended are dropped: they have no results and a re-run redoes them.
  void close() override;

  // Writes `text` to `path` atomically: a temporary file in the same directory, fsync, rename.
  static void write_file_atomically(const std::string& path, const std::string& text);

 private:
  struct Item {
    std::string lines;                                                // JSONL, in publication order
    std::map<std::string, pipeline::TranscriptStitcher> transcripts;  // by task
    std::vector<std::string> errors;
    double media_s = 0;
  };
  void finish(const std::string& id, Item& item, bool complete);

  ItemsSinkOptions options_;
  std::mutex mutex_;
  std::map<std::string, Item> items_;  // by input id, until its end
  bool closed_ = false;
};

}  // namespace rawflow::nodes
