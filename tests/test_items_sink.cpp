// rawflow batch's per-input results (nodes/items_sink.*): nothing on disk before an input's end;
// at a complete end its JSONL (finals, errors, gaps — no partials or stats) and the stitched
// transcript of each transcribe task as text, SubRip and WebVTT; at an incomplete end no file and
// the reason; inputs that never ended leave nothing.
#define BOOST_TEST_MODULE test_items_sink
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "nodes/items_sink.h"
#include "pipeline/config.h"
#include "pipeline/windows.h"
#include "tests/test_models.h"

using namespace rawflow;
using namespace rawflow::pipeline;
namespace fs = std::filesystem;
using Kind = ResultEvent::Kind;

namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path d = rawflow::test::work_dir("test_items_sink/" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

ResultEvent event(Kind kind, const std::string& stream, const std::string& task, double t0,
                  double t1, const std::string& text) {
  ResultEvent e = make_event(kind, stream, task, "demo");
  e.media_start_s = t0;
  e.media_end_s = t1;
  e.text = text;
  return e;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_complete_input_gets_its_files_at_its_end_only) {
  const fs::path dir = fresh_dir("complete");
  std::map<std::string, std::string> done;
  std::map<std::string, double> reached;
  nodes::ItemsSink sink({dir.string(), {"speech"}, [&](const nodes::ItemOutcome& o) {
                           done[o.id] = o.failure;
                           reached[o.id] = o.media_s;
                         }});
  sink.publish(event(Kind::Partial, "a-1", "speech", 0, 10, "one"));
  sink.publish(event(Kind::Final, "a-1", "speech", 0, 10, "one two three"));
  sink.publish(event(Kind::Final, "a-1", "scene", 0, 10, "a red circle"));
  sink.publish(event(Kind::Gap, "a-1", "", 10, 11, "reconnected"));
  sink.publish(event(Kind::Final, "a-1", "speech", 8, 18, "three four"));
  ResultEvent stats = event(Kind::Stats, "a-1", "", 0, 0, "");
  sink.publish(stats);
  BOOST_TEST(!fs::exists(dir / "items" / "a-1.jsonl"));  // not before the end
  BOOST_TEST(done.empty());
  sink.publish(end_event("a-1", "demo", true));
  BOOST_TEST(done.at("a-1") == "");
  BOOST_TEST(reached.at("a-1") == 18.0);
  std::istringstream lines(slurp(dir / "items" / "a-1.jsonl"));
  std::vector<std::string> kinds;
  for (std::string l; std::getline(lines, l);)
    kinds.push_back(l.substr(l.find("\"kind\":\"") + 8, 3));
  BOOST_TEST(kinds == (std::vector<std::string>{"fin", "fin", "gap", "fin"}),
             boost::test_tools::per_element());
  BOOST_TEST(slurp(dir / "items" / "a-1.speech.txt") == "one two three\nfour\n");
  BOOST_TEST(slurp(dir / "items" / "a-1.speech.srt") ==
             "1\n00:00:00,000 --> 00:00:09,000\none two three\n\n"
             "2\n00:00:09,000 --> 00:00:18,000\nfour\n\n");
  BOOST_TEST(slurp(dir / "items" / "a-1.speech.vtt").rfind("WEBVTT\n\n00:00:00.000 --> ", 0) == 0u);
  BOOST_TEST(!fs::exists(dir / "items" / "a-1.scene.srt"));  // describe tasks get no subtitles
  for (const auto& f : fs::directory_iterator(dir / "items"))
    BOOST_TEST(f.path().extension() != ".tmp", f.path());
}

BOOST_AUTO_TEST_CASE(an_incomplete_input_leaves_no_file_and_says_why) {
  const fs::path dir = fresh_dir("incomplete");
  std::map<std::string, std::string> done;
  nodes::ItemsSink sink(
      {dir.string(), {"speech"}, [&](const nodes::ItemOutcome& o) { done[o.id] = o.failure; }});
  ResultEvent err = event(Kind::Error, "b-2", "", 0, 0, "");
  err.error = "stream `b-2`: b.mp4: Invalid data found when processing input";
  sink.publish(err);
  sink.publish(end_event("b-2", "demo", false));
  BOOST_TEST(done.at("b-2") == err.error);
  BOOST_TEST(fs::is_empty(dir / "items"));
  // One that ends incomplete without saying why still gets a reason.
  sink.publish(end_event("c-3", "demo", false));
  BOOST_TEST(done.at("c-3") == "the input was not read to its end");
}

BOOST_AUTO_TEST_CASE(a_complete_input_with_errors_is_done_and_passes_them_on) {
  const fs::path dir = fresh_dir("with-errors");
  std::vector<nodes::ItemOutcome> outcomes;
  nodes::ItemsSink sink(
      {dir.string(), {"speech"}, [&](const nodes::ItemOutcome& o) { outcomes.push_back(o); }});
  ResultEvent err = event(Kind::Error, "e-5", "", 0, 0, "");
  err.error = "stream `e-5`: the input has no audio stream; the tasks that need audio get nothing";
  sink.publish(err);
  sink.publish(event(Kind::Final, "e-5", "scene", 0, 4, "a red circle"));
  sink.publish(end_event("e-5", "demo", true));
  BOOST_TEST_REQUIRE(outcomes.size() == 1u);
  BOOST_TEST(outcomes[0].failure == "");
  BOOST_TEST(outcomes[0].errors == std::vector<std::string>{err.error},
             boost::test_tools::per_element());
  BOOST_TEST(outcomes[0].media_s == 4.0);
  // The error is one of its results too.
  BOOST_TEST(slurp(dir / "items" / "e-5.jsonl").find("no audio stream") != std::string::npos);
  BOOST_TEST(slurp(dir / "items" / "e-5.speech.txt") == "");
}

BOOST_AUTO_TEST_CASE(inputs_that_never_ended_leave_nothing) {
  const fs::path dir = fresh_dir("stopped");
  int calls = 0;
  nodes::ItemsSink sink({dir.string(), {"speech"}, [&](const nodes::ItemOutcome&) { ++calls; }});
  sink.publish(event(Kind::Final, "d-4", "speech", 0, 10, "words"));
  sink.close();
  sink.publish(end_event("d-4", "demo", true));  // after close: dropped
  BOOST_TEST(calls == 0);
  BOOST_TEST(fs::is_empty(dir / "items"));
}

// Issue #13's stitching proof, at the stitching layer: a 47.3 s file cut by the pipeline's own
// window planning (pipeline/windows.h) into 10 s transcribe windows overlapping by 2 s, a stub
// engine that answers each window with the words spoken in it (a word every 0.5 s; a word cut by
// the window's end is heard in part, as a fragment), and the sink's stitched files: every word
// once, in order, nothing duplicated at the seams, no fragment, cues in order and not overlapping.
BOOST_AUTO_TEST_CASE(a_file_in_windows_overlapping_by_2_s_gets_each_word_once) {
  const PipelineConfig cfg = load_config_string(
      "streams: [{name: a, url: a.wav}]\n"
      "tasks: [{name: speech, kind: transcribe, window_s: 10, overlap_s: 2}]\n"
      "engine: {model: tiny.gguf, mmproj: tiny-mmproj.gguf}\noutputs: {stdout: {}}\n",
      "t.yaml");
  StreamWindows windows(cfg, 0);
  const double length_s = 47.3;
  windows.on_audio(std::vector<float>(static_cast<size_t>(length_s * 16000), 0.1f));
  windows.on_end();
  const std::vector<MediaRequest> requests = windows.take();
  BOOST_TEST_REQUIRE(requests.size() == 6u);  // [0,10) [8,18) [16,26) [24,34) [32,42) [40,47.3)

  std::vector<std::string> spoken;  // word i lasts [0.5 i, 0.5 i + 0.4)
  for (int i = 0; 0.5 * i + 0.4 <= length_s; ++i) spoken.push_back("w" + std::to_string(i));
  const fs::path dir = fresh_dir("stitching");
  nodes::ItemsSink sink({dir.string(), {"speech"}, nullptr});
  for (const MediaRequest& r : requests) {
    std::string text;
    for (size_t i = 0; i < spoken.size(); ++i) {
      const double from = 0.5 * static_cast<double>(i), to = from + 0.4;
      if (from >= r.start_s && to <= r.end_s)
        text += spoken[i] + " ";
      else if (from >= r.start_s && from < r.end_s)
        text += spoken[i].substr(0, 1);  // cut off
    }
    sink.publish(event(Kind::Final, "a-1", "speech", r.start_s, r.end_s, text));
  }
  sink.publish(end_event("a-1", "demo", true));

  std::istringstream txt(slurp(dir / "items" / "a-1.speech.txt"));
  std::vector<std::string> got;
  for (std::string w; txt >> w;) got.push_back(w);
  BOOST_TEST(got == spoken, boost::test_tools::per_element());
  // The SubRip cues: numbered from 1, in media order, none overlapping the next.
  std::istringstream srt(slurp(dir / "items" / "a-1.speech.srt"));
  double previous_end = 0;
  int cues = 0;
  for (std::string line; std::getline(srt, line);) {
    if (line.find(" --> ") == std::string::npos) continue;
    const auto seconds = [](const std::string& t) {
      return std::stoi(t.substr(0, 2)) * 3600 + std::stoi(t.substr(3, 2)) * 60 +
             std::stod(t.substr(6, 2) + "." + t.substr(9, 3));
    };
    const double start = seconds(line.substr(0, 12)), end = seconds(line.substr(17, 12));
    BOOST_TEST(start >= previous_end - 1e-9);
    BOOST_TEST(end > start);
    previous_end = end;
    ++cues;
  }
  BOOST_TEST(cues == 6);
}
