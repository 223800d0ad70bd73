#define BOOST_TEST_MODULE test_config
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "pipeline/config.h"

using namespace rawflow;
namespace fs = std::filesystem;

namespace {

// The smallest valid configuration. Malformed cases edit its lines, so every expected location
// below can be checked against this listing (line numbers are 1-based, as in messages).
const std::vector<std::string> kBase = {
    "streams:",                    //  1
    "  - name: cam",               //  2
    "    url: clip.mkv",           //  3
    "tasks:",                      //  4
    "  - name: speech",            //  5
    "    kind: transcribe",        //  6
    "    window_s: 10",            //  7
    "  - name: scene",             //  8
    "    kind: describe",          //  9
    "    image_budget: 70",        // 10
    "engine:",                     // 11
    "  model: tiny.gguf",          // 12
    "  mmproj: tiny-mmproj.gguf",  // 13
    "outputs:",                    // 14
    "  stdout:",                   // 15
};

// kBase with `count` lines from `line` replaced by `text` (any number of lines, or none).
std::string edited(int line, int count, const std::string& text) {
  std::string out;
  for (int i = 1; i <= static_cast<int>(kBase.size()); ++i) {
    if (i == line) out += text.empty() ? "" : text + "\n";
    if (i < line || i >= line + count) out += kBase[i - 1] + "\n";
  }
  return out;
}

std::string base() { return edited(1, 0, ""); }

// The message of the ConfigError that loading throws; fails the test if nothing is thrown.
std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    load_config_string(yaml, "t.yaml", overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  BOOST_ERROR("no ConfigError for:\n" << yaml);
  return "";
}

struct BadCase {
  std::string yaml;
  std::string expected;  // a substring of the message, location included
};

const std::vector<BadCase> kBadConfigs = {
    // Unknown keys: location of the key, allowed keys in schema order, a close match.
    {edited(7, 1, "    widow_s: 10"),
     "t.yaml:7:5: unknown key 'widow_s' in tasks[0]; allowed: name, kind, window_s, hop_s, "
     "overlap_s, streaming_prefill_s, language, silence_gate, prompt, max_new_tokens, deadline_s, "
     "sampling; did you mean 'window_s'?"},
    {edited(11, 1, "engin:"),
     "t.yaml:11:1: unknown key 'engin' at the top level; allowed: version, stream_defaults, "
     "streams, tasks, engine, outputs, metrics; did you mean 'engine'?"},
    {edited(10, 1, "    image_budget: 70\n    window_s: 5"),
     "t.yaml:11:5: key 'window_s' in tasks[1] does not apply to a describe task; allowed: name, "
     "kind, interval_s, frames_per_request, image_budget, include_audio_s, prompt, "
     "max_new_tokens, deadline_s, sampling"},
    {edited(7, 1, "    window_s: 10\n    window_s: 20"),
     "t.yaml:8:5: duplicate key 'window_s' in tasks[0] (first at t.yaml:7:5)"},
    // Enumerations: location of the value, the allowed values.
    {edited(3, 1, "    url: clip.mkv\n    kind: lve"),
     "t.yaml:4:11: streams[0].kind: 'lve' is not one of live, file; did you mean 'live'?"},
    {edited(15, 1, "  stdout:\n    format: xml"),
     "t.yaml:16:13: outputs.stdout.format: 'xml' is not one of text, json"},
    {edited(10, 1, "    image_budget: 100"),
     "t.yaml:10:19: tasks[1].image_budget: 100 is not one of 70, 140, 280, 560, 1120"},
    {edited(6, 1, "    kind: transcribr"),
     "t.yaml:6:11: tasks[0].kind: 'transcribr' is not one of transcribe, describe, prompt; did "
     "you mean 'transcribe'?"},
    // Types.
    {edited(7, 1, "    window_s: ten"),
     "t.yaml:7:15: tasks[0].window_s: expected a number, got 'ten'"},
    {edited(3, 1, "    url: clip.mkv\n    audio:\n      enabled: maybe"),
     "t.yaml:5:16: streams[0].audio.enabled: expected true or false, got 'maybe'"},
    {edited(1, 3, "streams:\n  name: cam"),
     "t.yaml:2:3: streams: expected a list of streams, got a map"},
    {edited(13, 1, "  mmproj: tiny-mmproj.gguf\n  threads: [4]"),
     "t.yaml:14:12: engine.threads: expected an integer, got a list"},
    // Ranges.
    {edited(7, 1, "    window_s: 40"),
     "t.yaml:7:15: tasks[0].window_s: 40 is out of range (0, 30] (spec §4: at most 30 s = 750 "
     "audio tokens per request)"},
    {edited(13, 1, "  mmproj: tiny-mmproj.gguf\n  threads: -1"),
     "t.yaml:14:12: engine.threads: -1 is out of range [0, 4096]"},
    {"version: 2\n" + base(), "t.yaml:1:10: version: 2 is out of range [1, 1]"},
    // Required keys and empty lists.
    {edited(3, 1, ""), "t.yaml:2:5: streams[0]: missing required key 'url'"},
    {edited(6, 1, ""), "t.yaml:5:5: tasks[0]: missing required key 'kind'"},
    {edited(9, 1, "    kind: prompt"), "t.yaml:8:5: tasks[1]: missing required key 'prompt'"},
    {edited(1, 3, "streams: []"), "t.yaml:1:10: streams: at least one stream is needed"},
    {"", "t.yaml:1:1: the configuration is empty"},
    // Relations between keys.
    {edited(7, 1, "    window_s: 10\n    hop_s: 12"),
     "t.yaml:8:12: tasks[0].hop_s: 12 is larger than window_s 10"},
    {edited(7, 1, "    window_s: 10\n    streaming_prefill_s: 0.02"),
     "t.yaml:8:26: tasks[0].streaming_prefill_s: 0.02 is shorter than one 40 ms audio frame"},
    {edited(7, 1, "    window_s: 10\n    streaming_prefill_s: 10"),
     "t.yaml:8:26: tasks[0].streaming_prefill_s: 10 is not shorter than window_s 10"},
    {edited(7, 1, "    window_s: 10\n    hop_s: 5\n    overlap_s: 5"),
     "t.yaml:9:16: tasks[0].overlap_s: give hop_s or overlap_s, not both"},
    {edited(8, 1, "  - name: speech"),
     "t.yaml:8:11: tasks[1].name: duplicate task name 'speech' (also tasks[0])"},
    {edited(3, 1, "    url: clip.mkv\n  - name: cam\n    url: b.mkv"),
     "t.yaml:4:11: streams[1].name: duplicate stream name 'cam' (also streams[0])"},
    {edited(2, 1, "  - name: cam 1"),
     "t.yaml:2:11: streams[0].name: 'cam 1' is not a valid name (1 to 64 of A-Z a-z 0-9 _ -)"},
    {edited(3, 1, "    url: clip.mkv\n    tasks: [speech, scnee]"),
     "t.yaml:4:21: streams[0].tasks[1]: unknown task 'scnee'; defined tasks: speech, scene; did "
     "you mean 'scene'?"},
    {edited(3, 1, "    url: clip.mkv\n    video: {enabled: false}\n    tasks: [scene]"),
     "t.yaml:5:13: streams[0].tasks[0]: task 'scene' needs video, which is disabled on this "
     "stream"},
    {edited(3, 1, "    url: clip.mkv\n    video:\n      sample_fps: 0.05"),
     "t.yaml:5:19: streams[0].video.sample_fps: 0.05 frames per second is too few for task "
     "'scene' (1 frame(s) every 10 s); use at least 0.1"},
    {edited(3, 1, "    url: clip.mkv\n    video: {max_pixels: 0}"),
     "t.yaml:4:25: streams[0].video.max_pixels: 0 is out of range [1, 268435456]"},
    {edited(3, 1, "    url: rtsp://cam/1\n    reconnect: {initial_delay_s: 60}"),
     "t.yaml:4:16: streams[0].reconnect.max_delay_s: 30 is smaller than initial_delay_s 60"},
    {edited(7, 1, "    window_s: 10\n    sampling:\n      temperature: 0.7"),
     "t.yaml:9:20: tasks[0].sampling.temperature: has no effect while greedy is true"},
    {edited(13, 1, ""),
     "t.yaml:12:3: engine.mmproj: required, since engine.model is a GGUF file, which holds the "
     "text decoder only, and task 'speech' needs the audio embedder of an mmproj file"},
    {edited(13, 1, "  mmproj: tiny-mmproj.gguf\n  prefill_chunk: 64"),
     "t.yaml:14:18: engine.prefill_chunk: 64 is smaller than the 70-token images of task "
     "'scene'"},
    {edited(15, 1, "  zmq:\n    endpoint: tcp://localhost"),
     "t.yaml:16:15: outputs.zmq.endpoint: 'tcp://localhost' has no port; expected "
     "tcp://HOST:PORT, ipc://PATH or inproc://NAME"},
    {edited(15, 1, "  zmq:\n    endpoint: tcp://127.0.0.1:5556\n    topic: \"{camera}/{task}\""),
     "t.yaml:17:12: outputs.zmq.topic: unknown placeholder '{camera}'; allowed: {stream}, "
     "{task}, {kind}"},
    {edited(15, 1, "  stdout:\n    enabled: false"),
     "t.yaml:15:3: outputs: no output is enabled; configure at least one of zmq, jsonl, stdout"},
    {base() + "metrics:\n  http:\n    listen: localhost\n",
     "t.yaml:18:13: metrics.http.listen: 'localhost' is not HOST:PORT"},
    {edited(9, 1, "    kind: prompt\n    frames_per_request: 0\n    prompt: Anyone there?"),
     "t.yaml:8:5: tasks[1]: a prompt task needs media"},
    {"stream_defaults:\n  url: x.mkv\n" + base(),
     "t.yaml:2:3: key 'url' in stream_defaults does not apply (each stream sets its own)"},
    // YAML syntax errors keep yaml-cpp's position.
    {edited(7, 1, "    window_s: [10"),
     "t.yaml:8:9: YAML syntax error: end of sequence flow not found"},
};

BOOST_AUTO_TEST_CASE(base_config_is_valid) {
  BOOST_CHECK_NO_THROW(load_config_string(base(), "t.yaml"));
}

BOOST_AUTO_TEST_CASE(malformed_configs_name_the_place_and_the_fix) {
  BOOST_TEST(kBadConfigs.size() >= 20u);
  for (const BadCase& c : kBadConfigs) {
    const std::string message = error_of(c.yaml);
    BOOST_TEST_CONTEXT("config:\n" << c.yaml) {
      BOOST_TEST(message.find(c.expected) != std::string::npos,
                 "expected '" << c.expected << "'\n     got '" << message << "'");
    }
  }
}

// Of several problems, the one earliest in the input is reported, whatever order checks run in:
// here the engine is read after the streams, but the stream's problem comes first in the file.
BOOST_AUTO_TEST_CASE(the_earliest_problem_is_reported) {
  std::string yaml = edited(3, 1, "    url: clip.mkv\n    kind: lve");  // line 4
  yaml.replace(yaml.find("engine:"), 7, "engine:\n  threads: -1");      // line 13
  BOOST_TEST(error_of(yaml).find("t.yaml:4:11: streams[0].kind") == 0u);
  yaml.replace(yaml.find("    kind: lve\n"), 14, "");
  BOOST_TEST(error_of(yaml).find("t.yaml:12:12: engine.threads") == 0u);
  // An override is reported before the file's problems, overrides in command-line order.
  BOOST_TEST(error_of(yaml, {"engine.max_batch=0", "engine.threads=x"})
                 .find("--set engine.max_batch=0: engine.max_batch: 0 is out of range") == 0u);
}

BOOST_AUTO_TEST_CASE(defaults_are_filled_in) {
  const PipelineConfig c = load_config_string(base(), "/cfg/t.yaml");
  BOOST_TEST(c.source == "/cfg/t.yaml");
  BOOST_TEST(c.base_dir == "/cfg");
  BOOST_REQUIRE_EQUAL(c.streams.size(), 1u);
  const StreamConfig& s = c.streams[0];
  BOOST_TEST(s.name == "cam");
  BOOST_TEST(s.url == "/cfg/clip.mkv");
  BOOST_TEST((s.kind == StreamKind::File));
  BOOST_TEST((s.rtsp_transport == RtspTransport::Tcp));
  BOOST_TEST(s.reconnect.initial_delay_s == 1.0);
  BOOST_TEST(s.reconnect.max_delay_s == 30.0);
  BOOST_TEST(s.reconnect.multiplier == 2.0);
  BOOST_TEST(s.reconnect.max_attempts == 0);
  BOOST_TEST(s.watchdog.open_timeout_s == 10.0);
  BOOST_TEST(s.watchdog.read_timeout_s == 3.0);
  BOOST_TEST(s.video.enabled);
  BOOST_TEST(s.video.sample_fps == 0.1);  // describe: 1 frame per 10 s
  BOOST_TEST(s.video.max_pixels == int64_t{1} << 28);
  BOOST_TEST(s.audio.enabled);
  BOOST_TEST(s.queue.max_pending_requests == 4);
  BOOST_TEST((s.queue.overflow == Overflow::Block));  // files never drop
  BOOST_TEST(s.tasks == (std::vector<std::string>{"speech", "scene"}),
             boost::test_tools::per_element());

  BOOST_REQUIRE_EQUAL(c.tasks.size(), 2u);
  const TaskConfig& t = c.tasks[0];
  BOOST_TEST((t.kind == TaskKind::Transcribe));
  BOOST_TEST(t.audio_window_s == 10.0);
  BOOST_TEST(t.interval_s == 10.0);  // hop defaults to the window
  BOOST_TEST(t.frames_per_request == 0);
  BOOST_TEST(t.prompt == "Transcribe this audio.");
  BOOST_TEST(!t.silence_gate.enabled);
  BOOST_TEST(t.silence_gate.threshold_dbfs == -45.0);
  BOOST_TEST(t.max_new_tokens == 256);
  BOOST_TEST(t.deadline_s == 0.0);
  BOOST_TEST(t.sampling.greedy);
  BOOST_TEST(t.uses_audio());
  BOOST_TEST(!t.uses_video());
  const TaskConfig& d = c.tasks[1];
  BOOST_TEST((d.kind == TaskKind::Describe));
  BOOST_TEST(d.interval_s == 10.0);
  BOOST_TEST(d.frames_per_request == 1);
  BOOST_TEST(d.image_budget == 70);
  BOOST_TEST(d.audio_window_s == 0.0);
  BOOST_TEST(d.prompt == "Describe this image in one or two sentences.");
  BOOST_TEST(d.uses_video());
  BOOST_TEST(!d.uses_audio());
  BOOST_TEST(c.find_task("scene") == &d);
  BOOST_TEST(c.find_task("nope") == nullptr);

  BOOST_TEST(c.engine.model == "/cfg/tiny.gguf");
  BOOST_TEST(c.engine.mmproj == "/cfg/tiny-mmproj.gguf");
  BOOST_TEST(c.engine.threads == 0);
  BOOST_TEST(c.engine.kv_cache_budget_mb == 4096);
  BOOST_TEST(c.engine.max_batch == 4);
  BOOST_TEST(!c.engine.llama_bidirectional);
  BOOST_TEST(c.engine.prefill_chunk == 512);

  BOOST_TEST(c.outputs.stdout_sink.enabled);
  BOOST_TEST((c.outputs.stdout_sink.format == StdoutFormat::Text));
  BOOST_TEST(!c.outputs.stdout_sink.partials);
  BOOST_TEST(!c.outputs.zeromq.enabled);
  BOOST_TEST(!c.outputs.jsonl.enabled);
  BOOST_TEST(!c.metrics.http_enabled);
  BOOST_TEST(c.metrics.interval_s == 10.0);
}

BOOST_AUTO_TEST_CASE(resolved_values_follow_the_other_sections) {
  const PipelineConfig c =
      load_config_string(base(), "t.yaml",
                         {"streams.0.url=rtsp://10.0.0.2/cam", "tasks.1.image_budget=1120",
                          "tasks.1.frames_per_request=3", "tasks.1.interval_s=6",
                          "tasks.0.language=German", "tasks.0.overlap_s=4"});
  const StreamConfig& s = c.streams[0];
  BOOST_TEST((s.kind == StreamKind::Live));
  BOOST_TEST((s.queue.overflow == Overflow::DropOldest));  // live work drops the oldest
  BOOST_TEST(s.url == "rtsp://10.0.0.2/cam");              // URLs are not paths
  BOOST_TEST(s.video.sample_fps == 0.5);                   // 3 frames per 6 s
  BOOST_TEST(c.engine.prefill_chunk == 1120);              // an image fits one chunk
  BOOST_TEST(c.tasks[0].interval_s == 6.0);                // window 10 - overlap 4
  BOOST_TEST(c.tasks[0].prompt ==
             "Transcribe the following speech segment in German into German text.");
  BOOST_TEST(c.tasks[1].prompt == "Describe these video frames in one or two sentences.");

  // Tasks that cannot run on a stream are left out of its default list.
  const PipelineConfig audio_only =
      load_config_string(base(), "t.yaml", {"streams.0.video.enabled=false"});
  BOOST_TEST(audio_only.streams[0].tasks == (std::vector<std::string>{"speech"}),
             boost::test_tools::per_element());
  BOOST_TEST(audio_only.streams[0].video.sample_fps == 0.0);
}

BOOST_AUTO_TEST_CASE(stream_defaults_apply_to_every_stream_and_streams_override_them) {
  const std::string yaml =
      "stream_defaults:\n"
      "  rtsp_transport: udp\n"
      "  reconnect: {max_attempts: 5}\n"
      "  tasks: [speech]\n" +
      edited(3, 1,
             "    url: clip.mkv\n"
             "  - name: cam2\n"
             "    url: rtsp://h/2\n"
             "    reconnect: {max_attempts: 7}\n"
             "    tasks: [scene, speech]");
  const PipelineConfig c = load_config_string(yaml, "t.yaml");
  BOOST_REQUIRE_EQUAL(c.streams.size(), 2u);
  BOOST_TEST((c.streams[0].rtsp_transport == RtspTransport::Udp));
  BOOST_TEST(c.streams[0].reconnect.max_attempts == 5);
  BOOST_TEST(c.streams[0].reconnect.max_delay_s == 30.0);
  BOOST_TEST(c.streams[0].tasks == (std::vector<std::string>{"speech"}),
             boost::test_tools::per_element());
  BOOST_TEST((c.streams[1].rtsp_transport == RtspTransport::Udp));
  BOOST_TEST(c.streams[1].reconnect.max_attempts == 7);
  BOOST_TEST(c.streams[1].tasks == (std::vector<std::string>{"scene", "speech"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(overrides_edit_the_tree_before_validation) {
  const PipelineConfig c = load_config_string(
      base(), "t.yaml",
      {"engine.threads=4", "streams.0.url=rtsp://cam.local:554/s1", "tasks.0.window_s=20",
       "streams.0.tasks=[speech]", "streams.1.name=b", "streams.1.url=b.mkv",
       "outputs.zmq.endpoint=tcp://127.0.0.1:*", "outputs.stdout.enabled=false",
       "tasks.0.prompt=Say: what # you hear", "engine.mmproj=m.gguf", "metrics.http.listen=:0"});
  BOOST_TEST(c.engine.threads == 4);
  BOOST_TEST(c.streams[0].url == "rtsp://cam.local:554/s1");
  BOOST_TEST((c.streams[0].kind == StreamKind::Live));
  BOOST_TEST(c.streams[0].tasks == (std::vector<std::string>{"speech"}),
             boost::test_tools::per_element());
  BOOST_TEST(c.tasks[0].audio_window_s == 20.0);
  BOOST_TEST(c.tasks[0].interval_s == 20.0);
  BOOST_TEST(c.tasks[0].prompt == "Say: what # you hear");  // plain text stays text
  BOOST_REQUIRE_EQUAL(c.streams.size(), 2u);                // index == size appends
  BOOST_TEST(c.streams[1].name == "b");
  BOOST_TEST(c.outputs.zeromq.enabled);
  BOOST_TEST(c.outputs.zeromq.endpoint == "tcp://127.0.0.1:*");
  BOOST_TEST(!c.outputs.stdout_sink.enabled);
  BOOST_TEST(fs::path(c.engine.mmproj).filename() == "m.gguf");
  BOOST_TEST(c.metrics.http_enabled);
  BOOST_TEST(c.metrics.http_host == "0.0.0.0");
  BOOST_TEST(c.metrics.http_port == 0);
  // A later override wins over an earlier one.
  BOOST_TEST(load_config_string(base(), "t.yaml", {"engine.threads=2", "engine.threads=3"})
                 .engine.threads == 3);
}

BOOST_AUTO_TEST_CASE(override_errors_name_the_override) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"engine.threads=x", "--set engine.threads=x: engine.threads: expected an integer, got 'x'"},
      {"engine.thread=4",
       "--set engine.thread=4: unknown key 'thread' in engine; allowed: model, mmproj, threads, "
       "kv_cache_budget_mb, max_batch, llama_bidirectional, prefill_chunk, shutdown_grace_s; did "
       "you "
       "mean 'threads'?"},
      {"tasks.1.window_s=20",
       "--set tasks.1.window_s=20: key 'window_s' in tasks[1] does not apply to a describe task"},
      {"streams.5.url=x.mkv",
       "--set streams.5.url=x.mkv: 'streams' has 1 entries; index 5 is past the end (use 1 to add "
       "one)"},
      {"engine.model.path=x",
       "--set engine.model.path=x: 'engine.model' is 'tiny.gguf', not a map or list"},
      {"streams.x.url=y", "--set streams.x.url=y: 'streams' is a list; 'x' is not an index"},
      {"engine.threads", "--set engine.threads: expected key=value"},
      {"engine..threads=1", "--set engine..threads=1: empty key in 'engine..threads'"},
      {"tasks.0.window_s=[1", "--set tasks.0.window_s=[1: the value is not valid YAML"},
      {"streams.0.kind=lve",
       "--set streams.0.kind=lve: streams[0].kind: 'lve' is not one of live, file"},
      // Problems found by relating sections are located at the override that caused them.
      {"engine.mmproj=",
       "--set engine.mmproj=: engine.mmproj: required, since engine.model is a GGUF"},
      {"tasks.0.hop_s=11", "--set tasks.0.hop_s=11: tasks[0].hop_s: 11 is larger than window_s 10"},
      {"outputs.zmq.endpoint=udp://x:1",
       "--set outputs.zmq.endpoint=udp://x:1: outputs.zmq.endpoint: 'udp://' is not a ZeroMQ "
       "transport here"},
  };
  for (const auto& [override, expected] : cases) {
    const std::string message = error_of(base(), {override});
    BOOST_TEST(message.find(expected) == 0u,
               "expected '" << expected << "'\n     got '" << message << "'");
  }
  const std::string both =
      error_of(base(), {"tasks.0={name: speech, kind: describe}", "streams.0.video.enabled=false"});
  BOOST_TEST(both.find("--set streams.0.video.enabled=false: streams[0].video.enabled: no task can "
                       "run on this stream: task 'speech' needs video") == 0u,
             both);
}

fs::path work_dir(const std::string& name) {
  const char* w = std::getenv("RAWFLOW_TEST_WORK");
  fs::path dir = fs::path(w ? w : fs::temp_directory_path().string()) / "test_config" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write_file(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

BOOST_AUTO_TEST_CASE(relative_paths_resolve_against_the_config_directory) {
  const fs::path dir = work_dir("relative") / "sub";
  fs::create_directories(dir);
  const std::string yaml = edited(3, 1,
                                  "    url: ../media/clip.mkv\n"
                                  "  - name: abs\n"
                                  "    url: /srv/a.mkv\n"
                                  "  - name: fileurl\n"
                                  "    url: file:b.mkv\n"
                                  "  - name: cam\n"
                                  "    url: rtsp://h/x") +
                           "  jsonl:\n    path: out/r.jsonl\n";
  std::string renamed = yaml;
  renamed.replace(renamed.rfind("name: cam"), 9, "name: live");
  write_file(dir / "c.yaml", renamed);
  // From another working directory: the config's directory counts, not the current one.
  const fs::path old = fs::current_path();
  fs::current_path(fs::temp_directory_path());
  const PipelineConfig c = load_config((dir / "c.yaml").string());
  fs::current_path(old);
  const fs::path parent = dir.parent_path();
  BOOST_TEST(c.base_dir == dir.string());
  BOOST_TEST(c.streams[0].url == (parent / "media/clip.mkv").string());
  BOOST_TEST(c.streams[1].url == "/srv/a.mkv");
  BOOST_TEST(c.streams[2].url == "file:" + (dir / "b.mkv").string());
  BOOST_TEST(c.streams[3].url == "rtsp://h/x");
  BOOST_TEST(c.engine.model == (dir / "tiny.gguf").string());
  BOOST_TEST(c.engine.mmproj == (dir / "tiny-mmproj.gguf").string());
  BOOST_TEST(c.outputs.jsonl.path == (dir / "out/r.jsonl").string());

  // A string with a bare name resolves against the current directory.
  BOOST_TEST(load_config_string(base(), "t.yaml").base_dir == fs::current_path().string());

  // Error messages name the file as the caller did.
  write_file(dir / "bad.yaml", edited(7, 1, "    window_s: 0"));
  const std::string bad = (dir / "bad.yaml").string();
  try {
    load_config(bad);
    BOOST_ERROR("no error");
  } catch (const ConfigError& e) {
    BOOST_TEST(std::string(e.what()).find(bad + ":7:15: tasks[0].window_s: 0 is out of range") ==
               0u);
  }
  BOOST_CHECK_EXCEPTION(load_config((dir / "missing.yaml").string()), ConfigError,
                        [](const ConfigError& e) {
                          return std::string(e.what()).find("cannot read config file") == 0;
                        });
  // /dev/zero (endless) and a file over the limit are refused without being read whole.
  for (const std::string big : {std::string("/dev/zero"), (dir / "big.yaml").string()}) {
    if (big != "/dev/zero") write_file(big, std::string(kMaxConfigBytes + 1, '#'));
    BOOST_CHECK_EXCEPTION(load_config(big), ConfigError, [&](const ConfigError& e) {
      return std::string(e.what()) == "config file '" + big +
                                          "' is larger than 4 MiB: not a pipeline configuration "
                                          "(give the YAML file)";
    });
  }
}

BOOST_AUTO_TEST_CASE(a_malformed_network_url_is_a_config_error_that_hides_the_password) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"rtsp://u:secret@[::1", "an IPv6 host opened with '[' is not closed with ']'"},
      {"rtsp://u:secret@[::1]x/live", "after the IPv6 host ']' only ':PORT' may follow"},
      {"rtsp://u:secret@cam:55a4/live", "the port is not a number from 0 to 65535"},
      {"rtsp://cam:70000/live", "the port is not a number from 0 to 65535"},
      {"rtsp://cam]:554/live", "a '[' or ']' outside an IPv6 host"},
      {"'rtsp://ca m/live'", "the host part holds a space or a control character"},
  };
  for (const auto& [url, why] : bad) {
    const std::string message = error_of(edited(3, 1, "    url: " + url));
    BOOST_TEST(message.find("t.yaml:3:10: streams[0].url: not a valid URL: " + why) == 0u,
               url << " -> " << message);
    BOOST_TEST(message.find("secret") == std::string::npos, message);
  }
  for (const std::string good :
       {"rtsp://u:p%40ss@cam.local:554/live?x=1", "rtsp://user:p@ss@[fe80::1%25eth0]:8554/s",
        "udp://@239.0.0.1:1234", "srt://:9000?mode=listener", "http://h/a.m3u8", "rtsp://[::1]/x",
        "clip.mkv", "file:clip.mkv"})
    BOOST_CHECK_NO_THROW(load_config_string(edited(3, 1, "    url: \"" + good + "\""), "t.yaml"));
}

BOOST_AUTO_TEST_CASE(environment_variables_fill_strings_and_the_dump_hides_the_password) {
  ::setenv("RAWFLOW_TEST_CAM_PW", "s3cr$t", 1);
  ::unsetenv("RAWFLOW_TEST_UNSET");
  const PipelineConfig c = load_config_string(
      edited(3, 1, "    url: rtsp://admin:${RAWFLOW_TEST_CAM_PW}@cam.local/live?a=$$1&b=$x"),
      "t.yaml");
  BOOST_TEST(c.streams[0].url == "rtsp://admin:s3cr$t@cam.local/live?a=$1&b=$x");
  const std::string dump = dump_config(c);
  BOOST_TEST(dump.find("s3cr") == std::string::npos, dump);
  BOOST_TEST(dump.find("rtsp://***@cam.local/live") != std::string::npos, dump);
  BOOST_TEST(error_of(edited(3, 1, "    url: rtsp://admin:${RAWFLOW_TEST_UNSET}@cam/live")) ==
             "t.yaml:3:10: streams[0].url: the environment variable RAWFLOW_TEST_UNSET (in "
             "${RAWFLOW_TEST_UNSET}) is not set");
  // Not a variable reference: kept as written.
  for (const std::string kept : {"${}", "${1A}", "${A-B}", "${OPEN"})
    BOOST_TEST(load_config_string(edited(3, 1, "    url: \"clip" + kept + ".mkv\""), "/d/t.yaml")
                   .streams[0]
                   .url == "/d/clip" + kept + ".mkv");
}

BOOST_AUTO_TEST_CASE(stream_kind_is_inferred_from_the_url_scheme) {
  for (const char* live :
       {"rtsp://h/x", "RTSP://h/x", "rtsps://h", "rtmp://h/app", "http://h/a.m3u8", "https://h/x",
        "udp://239.0.0.1:1234", "srt://h:9000", "tcp://h:1"}) {
    BOOST_TEST((infer_stream_kind(live) == StreamKind::Live), live);
  }
  for (const char* file : {"clip.mkv", "/abs/clip.mkv", "file:clip.mkv", "pipe:0", "C:clip.mkv",
                           "dir/with:colon.mkv"}) {
    BOOST_TEST((infer_stream_kind(file) == StreamKind::File), file);
  }
}

std::vector<fs::path> shipped_configs() {
  const char* src = std::getenv("RAWFLOW_SOURCE_DIR");
  BOOST_REQUIRE_MESSAGE(src, "RAWFLOW_SOURCE_DIR is not set (run through ctest)");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(src) / "configs")) {
    if (e.path().extension() == ".yaml" || e.path().extension() == ".yml")
      files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

BOOST_AUTO_TEST_CASE(every_shipped_config_loads) {
  const std::vector<fs::path> files = shipped_configs();
  BOOST_TEST(files.size() >= 3u);  // demo, rtsp-cameras, archive-bulk at least
  for (const fs::path& f : files) {
    BOOST_TEST_CONTEXT(f) { BOOST_CHECK_NO_THROW(load_config(f.string())); }
  }
  const PipelineConfig demo = load_config((files.front().parent_path() / "demo.yaml").string());
  BOOST_TEST(demo.streams.size() == 1u);
  BOOST_TEST(demo.outputs.stdout_sink.enabled);
  BOOST_TEST(demo.outputs.jsonl.enabled);
}

// The dump is the effective configuration: loading it gives the same configuration back.
BOOST_AUTO_TEST_CASE(dump_round_trips) {
  std::vector<PipelineConfig> configs = {load_config_string(base(), "/cfg/t.yaml")};
  for (const fs::path& f : shipped_configs()) configs.push_back(load_config(f.string()));
  configs.push_back(
      load_config_string(base(), "/cfg/t.yaml",
                         {"tasks.0.sampling={greedy: false, temperature: 0.7, top_k: 40, seed: 7}",
                          "metrics.http.listen='[::1]:9100'"}));
  for (const PipelineConfig& c : configs) {
    const std::string once = dump_config(c);
    BOOST_TEST_CONTEXT(once) {
      std::string twice;
      BOOST_CHECK_NO_THROW(twice = dump_config(load_config_string(once, "/elsewhere/dump.yaml")));
      BOOST_TEST(twice == once);
    }
  }
  const PipelineConfig sampled = load_config_string(dump_config(configs.back()), "d.yaml");
  BOOST_TEST(!sampled.tasks[0].sampling.greedy);
  BOOST_TEST(sampled.tasks[0].sampling.temperature == 0.7f);
  BOOST_TEST(sampled.tasks[0].sampling.top_k == 40);
  BOOST_TEST(sampled.tasks[0].sampling.seed == 7u);
  BOOST_TEST(sampled.metrics.http_host == "::1");
  BOOST_TEST(sampled.metrics.http_port == 9100);
}

// docs/config.md is the reference: every key the loader knows must be documented there, as it is
// written in the tables: relative to its section or list item (`reconnect.max_attempts`).
BOOST_AUTO_TEST_CASE(every_key_is_documented) {
  const char* src = std::getenv("RAWFLOW_SOURCE_DIR");
  BOOST_REQUIRE(src);
  std::ifstream in(fs::path(src) / "docs/config.md");
  BOOST_REQUIRE_MESSAGE(in, "docs/config.md is missing");
  std::stringstream doc;
  doc << in.rdbuf();
  // The dump of a config with every section present has every key with a value; the rest are
  // input-only forms.
  const PipelineConfig full =
      load_config_string(base(), "t.yaml",
                         {"outputs.zmq.endpoint=tcp://127.0.0.1:1", "outputs.jsonl.path=r.jsonl",
                          "metrics.http.listen=:1", "tasks.0.sampling.greedy=false",
                          "tasks.1.kind=prompt", "tasks.1.prompt=p"});
  std::set<std::string> keys = {"stream_defaults", "overlap_s",      "zmq.enabled",
                                "jsonl.enabled",   "stdout.enabled", "http.enabled"};
  std::vector<std::pair<size_t, std::string>> open;  // (indent, key) of the enclosing maps
  std::istringstream lines(dump_config(full));
  for (std::string line; std::getline(lines, line);) {
    const size_t indent = line.find_first_not_of(" -");
    const size_t colon = line.find(':', indent);
    if (indent == std::string::npos || colon == std::string::npos) continue;
    while (!open.empty() && open.back().first >= indent) open.pop_back();
    open.emplace_back(indent, line.substr(indent, colon - indent));
    std::string key = open.size() == 1 ? open[0].second : "";
    for (size_t i = 1; i < open.size(); ++i) key += (i > 1 ? "." : "") + open[i].second;
    keys.insert(key);
  }
  BOOST_TEST(keys.size() > 60u);
  for (const std::string& key : keys) {
    BOOST_TEST(doc.str().find("`" + key + "`") != std::string::npos,
               "docs/config.md lacks `" << key << "`");
  }
}

}  // namespace
