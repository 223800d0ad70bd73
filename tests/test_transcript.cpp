// The stitched transcript of overlapping transcribe windows (pipeline/transcript.h): words spoken
// in an overlap appear once, nothing outside it is dropped, a lone common word away from the seam
// is not taken as the overlap, and the subtitles are well-formed SubRip and WebVTT.
#define BOOST_TEST_MODULE test_transcript
#include <boost/test/unit_test.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "pipeline/transcript.h"

using namespace rawflow::pipeline;

namespace {

// Cuts `words` (one per second of speech) into windows of `window` seconds starting every
// `window - overlap`, each hearing the words whose second lies in it; `cut` extra seconds of a
// word at each edge are heard in part, which the model writes as a fragment ("wor").
std::string stitched(const std::vector<std::string>& words, int window, int overlap,
                     bool fragments) {
  TranscriptStitcher t;
  const int n = static_cast<int>(words.size());
  for (int start = 0; start < n; start += window - overlap) {
    std::string text;
    for (int i = start; i < std::min(n, start + window); ++i) text += words[i] + " ";
    if (fragments && start + window < n) text += words[start + window].substr(0, 2);
    t.add(start, std::min(n, start + window), text);
    if (start + window >= n) break;
  }
  return t.text();
}

std::string flat(const std::string& lines) {
  std::istringstream in(lines);
  std::string out;
  for (std::string w; in >> w;) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(words_in_the_overlap_appear_once) {
  std::vector<std::string> words;
  for (int i = 0; i < 40; ++i) words.push_back(std::string(1, 'w').append(std::to_string(i)));
  std::string all;
  for (const auto& w : words) {
    if (!all.empty()) all += ' ';
    all += w;
  }
  for (int overlap : {1, 2, 3})
    BOOST_TEST(flat(stitched(words, 10, overlap, false)) == all, "overlap " << overlap);
  // A fragment of the next word at a window's end is dropped with the seam.
  BOOST_TEST(flat(stitched(words, 10, 2, true)) == all);
}

BOOST_AUTO_TEST_CASE(repeated_words_and_case_and_punctuation) {
  TranscriptStitcher t;
  t.add(0, 10, "A red car turns left. The door");
  t.add(8, 18, "the door, is open and the car waits");
  BOOST_TEST(flat(t.text()) == "A red car turns left. The door is open and the car waits");
}

BOOST_AUTO_TEST_CASE(a_lone_common_word_away_from_the_seam_is_not_the_overlap) {
  TranscriptStitcher t;
  t.add(0, 10, "the car is red");
  t.add(8, 18, "a bus and the person");  // "the" in both, but not where they meet
  BOOST_TEST(flat(t.text()) == "the car is red a bus and the person");
  TranscriptStitcher u;
  u.add(0, 10, "turn left");
  u.add(8, 18, "left and stop");  // one word, exactly at the seam
  BOOST_TEST(flat(u.text()) == "turn left and stop");
}

BOOST_AUTO_TEST_CASE(windows_without_overlap_or_text_are_kept_as_they_are) {
  TranscriptStitcher t;
  t.add(0, 10, "one two");
  t.add(10, 20, "two three");  // back to back: no overlap to resolve
  t.add(20, 30, "");
  t.add(30, 40, "four");
  BOOST_TEST(flat(t.text()) == "one two two three four");
  const auto cues = t.cues();
  BOOST_REQUIRE_EQUAL(cues.size(), 3u);
  BOOST_TEST(cues[2].start_s == 30.0);
}

BOOST_AUTO_TEST_CASE(cues_meet_in_the_middle_of_each_overlap) {
  TranscriptStitcher t;
  t.add(0, 30, "alpha beta");
  t.add(28, 58, "beta gamma delta");
  t.add(56, 70.5, "delta epsilon");
  const auto c = t.cues();
  BOOST_REQUIRE_EQUAL(c.size(), 3u);
  BOOST_TEST(c[0].start_s == 0.0);
  BOOST_TEST(c[0].end_s == 29.0);
  BOOST_TEST(c[1].start_s == 29.0);
  BOOST_TEST(c[1].end_s == 57.0);
  BOOST_TEST(c[2].end_s == 70.5);
  BOOST_TEST(c[0].text == "alpha beta");
  BOOST_TEST(c[1].text == "gamma delta");
  BOOST_TEST(c[2].text == "epsilon");
  BOOST_TEST(to_srt(c) ==
             "1\n00:00:00,000 --> 00:00:29,000\nalpha beta\n\n"
             "2\n00:00:29,000 --> 00:00:57,000\ngamma delta\n\n"
             "3\n00:00:57,000 --> 00:01:10,500\nepsilon\n\n");
  BOOST_TEST(to_vtt(c) ==
             "WEBVTT\n\n00:00:00.000 --> 00:00:29.000\nalpha beta\n\n"
             "00:00:29.000 --> 00:00:57.000\ngamma delta\n\n"
             "00:00:57.000 --> 00:01:10.500\nepsilon\n\n");
}

BOOST_AUTO_TEST_CASE(hours_in_timestamps) {
  BOOST_TEST(to_srt({{3723.25, 3725.0, "x"}}) == "1\n01:02:03,250 --> 01:02:05,000\nx\n\n");
}
