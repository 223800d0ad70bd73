#include "pipeline/transcript.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace rawflow::pipeline {
namespace {

// Words of a final's text, split on ASCII whitespace.
std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// The form two windows' words are compared in: lower case, without the punctuation around it.
std::string comparable(const std::string& w) {
  size_t b = 0, e = w.size();
  while (b < e && std::ispunct(static_cast<unsigned char>(w[b]))) ++b;
  while (e > b && std::ispunct(static_cast<unsigned char>(w[e - 1]))) --e;
  std::string out = w.substr(b, e - b);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct Run {
  size_t prev_end = 0;  // in the previous window's words: one past the run
  size_t next_end = 0;  // in the next window's words: one past the run
  size_t length = 0;
};

// The longest run of equal words between prev[from..] and next[..to) (dynamic programming over
// the two short ranges); ties go to the run latest in `prev`, nearest the boundary.
Run longest_common_run(const std::vector<std::string>& prev, size_t from,
                       const std::vector<std::string>& next, size_t to) {
  std::vector<std::string> b(to);
  for (size_t j = 0; j < to; ++j) b[j] = comparable(next[j]);
  Run best;
  std::vector<size_t> row(to + 1, 0), last(to + 1, 0);
  for (size_t i = from; i < prev.size(); ++i) {
    const std::string a = comparable(prev[i]);
    for (size_t j = 0; j < to; ++j) {
      row[j + 1] = !a.empty() && a == b[j] ? last[j] + 1 : 0;
      if (row[j + 1] > 0 && row[j + 1] >= best.length) best = {i + 1, j + 1, row[j + 1]};
    }
    std::swap(row, last);
  }
  return best;
}

std::string join(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) {
    if (!s.empty()) s += ' ';
    s += w;
  }
  return s;
}

std::string timestamp(double s, char ms_sep) {
  const auto ms = static_cast<long long>(std::llround(std::max(0.0, s) * 1000.0));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld%c%03lld", ms / 3600000, ms / 60000 % 60,
                ms / 1000 % 60, ms_sep, ms % 1000);
  return buf;
}

}  // namespace

void TranscriptStitcher::add(double media_start_s, double media_end_s, const std::string& text) {
  Window next{media_start_s, media_end_s, split_words(text)};
  if (!windows_.empty()) {
    Window& prev = windows_.back();
    const double overlap = prev.end_s - next.start_s;
    if (overlap > 0 && !prev.words.empty() && !next.words.empty()) {
      // Only the words that can lie in the overlap are searched: its share of each window's
      // words, doubled for uneven speech, and at least a few.
      const auto reach = [overlap](const Window& w) {
        const double share = overlap / std::max(1e-3, w.end_s - w.start_s);
        return std::min(
            w.words.size(),
            std::max<size_t>(4, static_cast<size_t>(
                                    std::ceil(2.0 * share * static_cast<double>(w.words.size())))));
      };
      const size_t from = prev.words.size() - reach(prev);
      const Run run = longest_common_run(prev.words, from, next.words, reach(next));
      const bool at_seam = run.prev_end == prev.words.size() && run.next_end == run.length;
      if (run.length >= 2 || (run.length == 1 && at_seam)) {
        prev.words.resize(run.prev_end);
        next.words.erase(next.words.begin(), next.words.begin() + static_cast<long>(run.next_end));
      }
    }
  }
  windows_.push_back(std::move(next));
}

// A window's cue spans from the middle of its overlap with the previous window (or its start) to
// the middle of its overlap with the next (or its end).
std::vector<Cue> TranscriptStitcher::cues() const {
  std::vector<Cue> cues;
  for (size_t i = 0; i < windows_.size(); ++i) {
    const Window& win = windows_[i];
    if (win.words.empty()) continue;
    double start = win.start_s, end = win.end_s;
    if (i > 0 && windows_[i - 1].end_s > win.start_s)
      start = (windows_[i - 1].end_s + win.start_s) / 2;
    if (i + 1 < windows_.size() && windows_[i + 1].start_s < win.end_s)
      end = (win.end_s + windows_[i + 1].start_s) / 2;
    cues.push_back({start, end, join(win.words)});
  }
  return cues;
}

std::string TranscriptStitcher::text() const { return to_text(cues()); }

std::string to_text(const std::vector<Cue>& cues) {
  std::string s;
  for (const Cue& c : cues) s += c.text + "\n";
  return s;
}

std::string to_srt(const std::vector<Cue>& cues) {
  std::string s;
  for (size_t i = 0; i < cues.size(); ++i)
    s += std::to_string(i + 1) + "\n" + timestamp(cues[i].start_s, ',') + " --> " +
         timestamp(cues[i].end_s, ',') + "\n" + cues[i].text + "\n\n";
  return s;
}

std::string to_vtt(const std::vector<Cue>& cues) {
  std::string s = "WEBVTT\n\n";
  for (const Cue& c : cues)
    s += timestamp(c.start_s, '.') + " --> " + timestamp(c.end_s, '.') + "\n" + c.text + "\n\n";
  return s;
}

}  // namespace rawflow::pipeline
