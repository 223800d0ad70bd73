#pragma once
// One input's transcript stitched from its transcribe finals, and written as subtitles.
//
// Transcribe windows overlap (`overlap_s`) so that no word is cut at a boundary; the price is that
// the words spoken in the overlap come back twice, at the end of one window's text and the start
// of the next. The model gives no word times, so the overlap is resolved on the text: the longest
// run of equal words (compared without case and surrounding punctuation) between the end of the
// previous window's text and the start of the next is kept once — the previous text up to the end
// of the run, the next from just after it. The previous window's words after the run were cut by
// its boundary and come whole in the next; the next window's words before the run were heard
// only in part. A single common word counts only where it ends the one text and starts the
// other: elsewhere a lone "the" is no evidence. Without a match nothing is dropped (a word may
// then appear twice, never go missing).
//
// Cues: each window's (stitched) text, from where the previous cue ends to the middle of its
// overlap with the next window, so cues never overlap; windows with no text make no cue.
#include <string>
#include <vector>

namespace rawflow::pipeline {

struct Cue {
  double start_s = 0, end_s = 0;
  std::string text;
};

class TranscriptStitcher {
 public:
  // The next window's final, in media order (media_start non-decreasing).
  void add(double media_start_s, double media_end_s, const std::string& text);
  std::vector<Cue> cues() const;
  // The words kept, one cue per line.
  std::string text() const;

 private:
  struct Window {
    double start_s, end_s;
    std::vector<std::string> words;
  };
  std::vector<Window> windows_;
};

// SubRip (`1\n00:00:01,500 --> 00:00:04,000\ntext\n\n`) and WebVTT (`WEBVTT` header, `.` for
// the milliseconds) renderings of the cues.
std::string to_srt(const std::vector<Cue>& cues);
// Plain text: one cue per line (what TranscriptStitcher::text() gives).
std::string to_text(const std::vector<Cue>& cues);
std::string to_vtt(const std::vector<Cue>& cues);

}  // namespace rawflow::pipeline
