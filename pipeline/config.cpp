#include "pipeline/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "pipeline/yaml_reader.h"

namespace rawflow {
namespace {

namespace fs = std::filesystem;
using namespace yaml_config;

bool ends_with_ci(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  return std::equal(suffix.begin(), suffix.end(), s.end() - suffix.size(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  });
}

// The scheme of a URL ("rtsp" in "rtsp://..."), "" for a plain path. One-letter schemes are not
// accepted so that a path like "C:..." stays a path, as libavformat treats it.
std::string url_scheme(std::string_view url) {
  const size_t colon = url.find(':');
  if (colon == std::string_view::npos || colon < 2) return "";
  const std::string_view s = url.substr(0, colon);
  const bool ok =
      std::isalpha(static_cast<unsigned char>(s[0])) && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
      });
  if (!ok) return "";
  std::string lower(s);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

// ---------------------------------------------------------------------------------------------
// The schema: one reader per section. The order of reads is the order of keys in messages.

const Choices<StreamKind> kStreamKinds = {{"live", StreamKind::Live}, {"file", StreamKind::File}};
const Choices<RtspTransport> kTransports = {{"tcp", RtspTransport::Tcp},
                                            {"udp", RtspTransport::Udp}};
const Choices<Overflow> kOverflows = {{"drop_oldest", Overflow::DropOldest},
                                      {"block", Overflow::Block}};
const Choices<TaskKind> kTaskKinds = {{"transcribe", TaskKind::Transcribe},
                                      {"describe", TaskKind::Describe},
                                      {"prompt", TaskKind::Prompt}};
const Choices<StdoutFormat> kStdoutFormats = {{"text", StdoutFormat::Text},
                                              {"json", StdoutFormat::Json}};
const std::vector<int> kImageBudgets = {70, 140, 280, 560, 1120};  // spec §3.1

constexpr const char* kAudioLimit = "spec §4: at most 30 s = 750 audio tokens per request";
constexpr Range kPositiveSeconds{0, 86400, true};
constexpr Range kTimeout{0, 3600, true};

// A stream as read, before the values that depend on other sections are resolved.
struct StreamDraft {
  StreamConfig s;
  std::optional<StreamKind> kind;
  std::optional<Overflow> overflow;
  std::optional<std::vector<std::string>> tasks;
};

void read_reconnect(MapReader r, ReconnectPolicy& p) {
  r.number("initial_delay_s", p.initial_delay_s, kTimeout);
  r.number("max_delay_s", p.max_delay_s, kTimeout);
  r.number("multiplier", p.multiplier, {1, 100});
  r.integer("max_attempts", p.max_attempts, 0, 1'000'000'000);
  r.finish();
}

void read_watchdog(MapReader r, Watchdog& w) {
  r.number("open_timeout_s", w.open_timeout_s, kTimeout);
  r.number("read_timeout_s", w.read_timeout_s, kTimeout);
  r.finish();
}

void read_video(MapReader r, VideoInput& v) {
  r.boolean("enabled", v.enabled);
  r.number("sample_fps", v.sample_fps, {0, 240});
  r.finish();
}

void read_audio(MapReader r, AudioInput& a) {
  r.boolean("enabled", a.enabled);
  r.finish();
}

void read_queue(MapReader r, StreamDraft& d) {
  r.integer("max_pending_requests", d.s.queue.max_pending_requests, 1, 100'000);
  Overflow o{};
  if (r.choice("overflow", o, kOverflows)) d.overflow = o;
  r.finish();
}

// The keys a stream and stream_defaults share (everything but name and url).
void read_stream_settings(MapReader& r, StreamDraft& d) {
  StreamKind kind{};
  if (r.choice("kind", kind, kStreamKinds)) d.kind = kind;
  r.choice("rtsp_transport", d.s.rtsp_transport, kTransports);
  read_reconnect(r.map("reconnect"), d.s.reconnect);
  read_watchdog(r.map("watchdog"), d.s.watchdog);
  read_video(r.map("video"), d.s.video);
  read_audio(r.map("audio"), d.s.audio);
  read_queue(r.map("queue"), d);
  std::vector<std::string> tasks;
  if (r.names("tasks", tasks)) d.tasks = std::move(tasks);
}

StreamDraft read_stream(MapReader r, const StreamDraft& defaults) {
  StreamDraft d = defaults;
  r.require("name");
  r.text("name", d.s.name, TextRule::Name);
  r.require("url");
  r.text("url", d.s.url, TextRule::NonEmpty);
  read_stream_settings(r, d);
  r.finish();
  return d;
}

StreamDraft read_stream_defaults(MapReader r) {
  StreamDraft d;
  read_stream_settings(r, d);
  r.finish({"name", "url"}, "(each stream sets its own)");
  return d;
}

const std::vector<std::string> kAllTaskKeys = {
    "name",         "kind",       "window_s",           "hop_s",        "overlap_s",
    "language",     "interval_s", "frames_per_request", "image_budget", "include_audio_s",
    "silence_gate", "prompt",     "max_new_tokens",     "deadline_s",   "sampling"};

void read_silence_gate(MapReader r, SilenceGate& g) {
  r.boolean("enabled", g.enabled);
  r.number("threshold_dbfs", g.threshold_dbfs, {-120, 0});
  r.number("min_speech_s", g.min_speech_s, {0, 30});
  r.finish();
}

// Sampling keys other than greedy do nothing while greedy is on: saying so beats ignoring them.
void read_sampling(Context& cx, MapReader r, SamplingParams& p) {
  r.boolean("greedy", p.greedy);
  double temperature = p.temperature, top_p = p.top_p, min_p = p.min_p;
  std::vector<std::string> given;
  if (r.number("temperature", temperature, {0, 100})) given.push_back("temperature");
  if (r.integer("top_k", p.top_k, 0, 1 << 24)) given.push_back("top_k");
  if (r.number("top_p", top_p, {0, 1, true})) given.push_back("top_p");
  if (r.number("min_p", min_p, {0, 1})) given.push_back("min_p");
  if (r.unsigned64("seed", p.seed)) given.push_back("seed");
  r.finish();
  p.temperature = static_cast<float>(temperature);
  p.top_p = static_cast<float>(top_p);
  p.min_p = static_cast<float>(min_p);
  if (!r.ok() || !p.greedy) return;
  for (const std::string& key : given) {
    cx.fail(r.path_of(key), "has no effect while greedy is true (the default); add greedy: false");
  }
}

void read_transcribe(Context& cx, MapReader& r, TaskConfig& t) {
  double window = 10, hop = 0, overlap = 0;
  r.number("window_s", window, {0, 30, true, false, kAudioLimit});
  const bool has_hop = r.number("hop_s", hop, {0, 30, true});
  const bool has_overlap = r.number("overlap_s", overlap, {0, 30, false, true});
  r.text("language", t.language);
  read_silence_gate(r.map("silence_gate"), t.silence_gate);
  t.audio_window_s = window;
  t.frames_per_request = 0;
  t.interval_s = has_hop ? hop : has_overlap ? window - overlap : window;
  if (!r.ok()) return;
  if (has_hop && has_overlap) {
    cx.fail(r.path_of("overlap_s"), "give hop_s or overlap_s, not both");
  } else if (has_hop && hop > window) {
    cx.fail(r.path_of("hop_s"), format_number(hop) + " is larger than window_s " +
                                    format_number(window) +
                                    " (the audio between windows would never be transcribed)");
  } else if (has_overlap && overlap >= window) {
    cx.fail(r.path_of("overlap_s"),
            format_number(overlap) + " must be smaller than window_s " + format_number(window));
  }
  if (t.silence_gate.enabled && t.silence_gate.min_speech_s > window) {
    cx.fail(r.path_of("silence_gate.min_speech_s"),
            format_number(t.silence_gate.min_speech_s) + " is longer than window_s " +
                format_number(window) + ": no window could pass the gate");
  }
}

// describe and prompt: frames from each interval, optionally with the audio that led up to it.
void read_visual(Context& cx, MapReader& r, TaskConfig& t) {
  const bool is_prompt = t.kind == TaskKind::Prompt;
  r.number("interval_s", t.interval_s, kPositiveSeconds);
  t.frames_per_request = 1;
  r.integer("frames_per_request", t.frames_per_request, is_prompt ? 0 : 1, 32);
  r.integer_in("image_budget", t.image_budget, kImageBudgets);
  t.audio_window_s = 0;
  r.number("include_audio_s", t.audio_window_s, {0, 30, false, false, kAudioLimit});
  if (is_prompt) read_silence_gate(r.map("silence_gate"), t.silence_gate);
  if (!r.ok()) return;
  const double fps = t.frames_per_request / t.interval_s;
  if (fps > 30) {
    cx.fail(r.path_of("frames_per_request"),
            std::to_string(t.frames_per_request) + " frames every " + format_number(t.interval_s) +
                " s is " + format_number(fps) + " frames per second; at most 30");
  }
  if (is_prompt && t.frames_per_request == 0 && t.audio_window_s == 0) {
    cx.fail(r.path(),
            "a prompt task needs media: set frames_per_request ≥ 1 or "
            "include_audio_s > 0");
  }
  if (t.silence_gate.enabled && t.audio_window_s == 0) {
    cx.fail(r.path_of("silence_gate.enabled"),
            "the gate listens to the request's audio; set include_audio_s > 0");
  } else if (t.silence_gate.enabled && t.silence_gate.min_speech_s > t.audio_window_s) {
    cx.fail(r.path_of("silence_gate.min_speech_s"),
            format_number(t.silence_gate.min_speech_s) + " is longer than include_audio_s " +
                format_number(t.audio_window_s) + ": no request could pass the gate");
  }
}

std::string default_prompt(const TaskConfig& t) {
  switch (t.kind) {
    case TaskKind::Transcribe:
      // The official ASR instruction when the language is known (spec §5.3).
      if (!t.language.empty()) {
        return "Transcribe the following speech segment in " + t.language + " into " + t.language +
               " text.";
      }
      return "Transcribe this audio.";
    case TaskKind::Describe: {
      const std::string what = t.frames_per_request == 1 ? "this image" : "these video frames";
      if (t.uses_audio()) {
        return "Describe what happens in " + what + " and this audio, in one or two sentences.";
      }
      return "Describe " + what + " in one or two sentences.";
    }
    case TaskKind::Prompt:
      break;
  }
  return "";
}

TaskConfig read_task(Context& cx, MapReader r) {
  TaskConfig t;
  r.text("name", t.name, TextRule::Name);
  r.require("kind");
  if (!r.choice("kind", t.kind, kTaskKinds)) {
    // The kind decides which keys apply: without one, only the kind is reported.
    for (const std::string& k : kAllTaskKeys) r.declare(k);
    r.finish();
    return t;
  }
  if (!r.has("name")) t.name = std::string(to_string(t.kind));
  if (t.kind == TaskKind::Transcribe) {
    read_transcribe(cx, r, t);
  } else {
    read_visual(cx, r, t);
  }
  if (t.kind == TaskKind::Prompt) r.require("prompt");
  r.text("prompt", t.prompt, TextRule::NonEmpty);
  r.integer("max_new_tokens", t.max_new_tokens, 1, 32768);
  r.number("deadline_s", t.deadline_s, {0, 86400});
  read_sampling(cx, r.map("sampling"), t.sampling);
  r.finish(kAllTaskKeys, "to a " + std::string(to_string(t.kind)) + " task");
  if (t.prompt.empty()) t.prompt = default_prompt(t);
  return t;
}

void read_engine(MapReader r, EngineConfig& e) {
  r.require("model");
  r.text("model", e.model, TextRule::NonEmpty);
  r.text("mmproj", e.mmproj);
  r.integer("threads", e.threads, 0, 4096);
  r.integer("kv_cache_budget_mb", e.kv_cache_budget_mb, 16, int64_t{1} << 24);
  r.integer("max_batch", e.max_batch, 1, 256);
  r.boolean("llama_bidirectional", e.llama_bidirectional);
  e.prefill_chunk = 0;  // auto until resolved
  r.integer("prefill_chunk", e.prefill_chunk, 0, 65536);
  r.finish();
}

bool is_port(std::string_view s, bool allow_zero) {
  if (s.empty() || s.size() > 5) return false;
  if (!std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  const int port = std::stoi(std::string(s));
  return port <= 65535 && (allow_zero || port > 0);
}

bool is_host(std::string_view h) {
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') {
    return std::all_of(h.begin() + 1, h.end() - 1, [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) || c == ':';
    });
  }
  return h == "*" || (!h.empty() && std::all_of(h.begin(), h.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
         }));
}

// "" when `ep` is a ZeroMQ endpoint rawflow can use, else what is wrong with it.
std::string endpoint_problem(const std::string& ep, bool bind) {
  const std::string usage = "expected tcp://HOST:PORT, ipc://PATH or inproc://NAME";
  const size_t sep = ep.find("://");
  if (sep == std::string::npos) return "'" + ep + "' is not a ZeroMQ endpoint; " + usage;
  const std::string scheme = ep.substr(0, sep), rest = ep.substr(sep + 3);
  if (scheme == "ipc" || scheme == "inproc") {
    return rest.empty() ? "'" + ep + "' names no " + (scheme == "ipc" ? "path" : "name") : "";
  }
  if (scheme != "tcp") return "'" + scheme + "://' is not a ZeroMQ transport here; " + usage;
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos) return "'" + ep + "' has no port; " + usage;
  const std::string host = rest.substr(0, colon), port = rest.substr(colon + 1);
  if (!is_host(host)) return "'" + host + "' in '" + ep + "' is not a host name or address";
  if (port == "*") return bind ? "" : "port '*' (any free port) needs bind: true";
  if (!is_port(port, false)) return "'" + port + "' in '" + ep + "' is not a port (1-65535)";
  return "";
}

// "" when every {placeholder} of a topic scheme is known, else what is wrong.
std::string topic_problem(std::string_view topic) {
  if (topic.empty()) return "must not be empty";
  for (size_t i = 0; i < topic.size(); ++i) {
    if (topic[i] == '}') return "'" + std::string(topic) + "' has a '}' without '{'";
    if (topic[i] != '{') continue;
    const size_t close = topic.find('}', i);
    if (close == std::string_view::npos) return "'" + std::string(topic) + "' has an unclosed '{'";
    const std::string_view name = topic.substr(i + 1, close - i - 1);
    if (name != "stream" && name != "task" && name != "kind") {
      return "unknown placeholder '{" + std::string(name) + "}'; allowed: {stream}, {task}, {kind}";
    }
    i = close;
  }
  return "";
}

// A sink is on when its section is present, unless `enabled: false` (lets --set switch it off).
void read_zmq(Context& cx, MapReader r, ZmqOutput& z) {
  if (!r.present()) return;
  z.enabled = true;
  r.boolean("enabled", z.enabled);
  if (z.enabled) r.require("endpoint");
  const bool has_endpoint = r.text("endpoint", z.endpoint, TextRule::NonEmpty);
  r.boolean("bind", z.bind);
  r.integer("sndhwm", z.sndhwm, 1, 10'000'000);
  if (r.text("topic", z.topic)) {
    if (const std::string why = topic_problem(z.topic); !why.empty())
      cx.fail(r.path_of("topic"), why);
  }
  r.boolean("partials", z.partials);
  r.finish();
  if (has_endpoint && r.ok()) {
    if (const std::string why = endpoint_problem(z.endpoint, z.bind); !why.empty()) {
      cx.fail(r.path_of("endpoint"), why);
    }
  }
}

void read_jsonl(MapReader r, JsonlOutput& j) {
  if (!r.present()) return;
  j.enabled = true;
  r.boolean("enabled", j.enabled);
  if (j.enabled) r.require("path");
  r.text("path", j.path, TextRule::NonEmpty);
  r.boolean("partials", j.partials);
  r.finish();
}

void read_stdout(MapReader r, StdoutOutput& s) {
  if (!r.present()) return;
  s.enabled = true;
  r.boolean("enabled", s.enabled);
  r.choice("format", s.format, kStdoutFormats);
  r.boolean("partials", s.partials);
  r.finish();
}

void read_outputs(Context& cx, MapReader r, OutputsConfig& o) {
  read_zmq(cx, r.map("zmq"), o.zeromq);
  read_jsonl(r.map("jsonl"), o.jsonl);
  read_stdout(r.map("stdout"), o.stdout_sink);
  r.finish();
}

// "HOST:PORT", "[IPv6]:PORT" or ":PORT" (all interfaces); port 0 = any free port.
bool parse_listen(const std::string& s, std::string& host, int& port) {
  size_t colon;
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    host = s.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = s.rfind(':');
    if (colon == std::string::npos) return false;
    host = colon == 0 ? "0.0.0.0" : s.substr(0, colon);
    if (host.find(':') != std::string::npos || !is_host(host) || host == "*") return false;
  }
  const std::string p = s.substr(colon + 1);
  if (!is_port(p, true)) return false;
  port = std::stoi(p);
  return !host.empty();
}

void read_metrics(Context& cx, MapReader r, MetricsConfig& m) {
  MapReader http = r.map("http");
  if (http.present()) {
    m.http_enabled = true;
    http.boolean("enabled", m.http_enabled);
    std::string listen = "127.0.0.1:9464";
    if (http.text("listen", listen, TextRule::NonEmpty) &&
        !parse_listen(listen, m.http_host, m.http_port)) {
      cx.fail(http.path_of("listen"),
              "'" + listen + "' is not HOST:PORT, [IPv6]:PORT or :PORT (port 0-65535)");
    } else {
      parse_listen(listen, m.http_host, m.http_port);
    }
    http.finish();
  }
  r.number("interval_s", m.interval_s, {0, 86400});
  r.finish();
}

// ---------------------------------------------------------------------------------------------
// The whole document. Stage 1: every value on its own (types, ranges, keys).

struct Draft {
  std::vector<StreamDraft> streams;
  PipelineConfig config;
};

std::string indexed(std::string_view list, size_t i) {
  return std::string(list) + "[" + std::to_string(i) + "]";
}

Draft read_document(Context& cx) {
  Draft d;
  const YAML::Node& root = cx.doc.root;
  if (!root.IsDefined() || root.IsNull()) {
    cx.locations[""] = cx.doc.where(root);
    cx.fail("",
            "the configuration is empty; it needs streams, tasks, engine and outputs "
            "(see configs/demo.yaml)");
    return d;
  }
  MapReader top(cx, root, "");
  int version = 1;
  top.integer("version", version, 1, 1);
  const StreamDraft defaults = read_stream_defaults(top.map("stream_defaults"));
  top.require("streams");
  const YAML::Node streams = top.list("streams", "a list of streams");
  if (streams.IsDefined() && streams.size() == 0)
    cx.fail("streams", "at least one stream is needed");
  for (size_t i = 0; i < (streams.IsDefined() ? streams.size() : 0); ++i) {
    d.streams.push_back(read_stream(MapReader(cx, streams[i], indexed("streams", i)), defaults));
  }
  top.require("tasks");
  const YAML::Node tasks = top.list("tasks", "a list of tasks");
  if (tasks.IsDefined() && tasks.size() == 0) cx.fail("tasks", "at least one task is needed");
  for (size_t i = 0; i < (tasks.IsDefined() ? tasks.size() : 0); ++i) {
    d.config.tasks.push_back(read_task(cx, MapReader(cx, tasks[i], indexed("tasks", i))));
  }
  top.require("engine");
  read_engine(top.map("engine"), d.config.engine);
  top.require("outputs");
  read_outputs(cx, top.map("outputs"), d.config.outputs);
  read_metrics(cx, top.map("metrics"), d.config.metrics);
  top.finish();
  return d;
}

// ---------------------------------------------------------------------------------------------
// Stage 2: relations between sections, defaults that depend on them, paths.

std::string resolve_path(const std::string& p, const fs::path& base) {
  if (p.empty()) return p;
  const fs::path q(p);
  return (q.is_absolute() ? q : base / q).lexically_normal().string();
}

std::string resolve_url(const std::string& url, const fs::path& base) {
  const std::string scheme = url_scheme(url);
  if (scheme.empty()) return resolve_path(url, base);
  if (scheme == "file" && url.size() > 5 && url[5] != '/')
    return "file:" + resolve_path(url.substr(5), base);
  return url;
}

std::vector<std::string> task_names(const PipelineConfig& c) {
  std::vector<std::string> names;
  for (const TaskConfig& t : c.tasks) names.push_back(t.name);
  return names;
}

void check_task_names(Context& cx, const PipelineConfig& c) {
  for (size_t i = 0; i < c.tasks.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (c.tasks[j].name == c.tasks[i].name) {
        cx.fail(indexed("tasks", i) + ".name", "duplicate task name '" + c.tasks[i].name +
                                                   "' (also " + indexed("tasks", j) +
                                                   "); give each task its own name");
      }
    }
  }
}

// Why a task cannot run on a stream, "" if it can.
std::string unservable(const TaskConfig& t, const StreamConfig& s) {
  if (t.uses_video() && !s.video.enabled)
    return "task '" + t.name + "' needs video, which is disabled";
  if (t.uses_audio() && !s.audio.enabled)
    return "task '" + t.name + "' needs audio, which is disabled";
  return "";
}

std::vector<std::string> resolve_stream_tasks(Context& cx, const PipelineConfig& c,
                                              const StreamDraft& d, const std::string& path) {
  std::vector<std::string> out;
  if (!d.tasks) {
    std::vector<std::string> reasons;
    for (const TaskConfig& t : c.tasks) {
      const std::string why = unservable(t, d.s);
      (why.empty() ? out : reasons).push_back(why.empty() ? t.name : why);
    }
    if (out.empty()) {
      cx.fail(path + (d.s.video.enabled ? ".audio.enabled" : ".video.enabled"),
              "no task can run on this stream: " + join(reasons, "; "));
    }
    return out;
  }
  if (d.tasks->empty()) {
    cx.fail(path + ".tasks", "empty list; leave the key out to run every task");
  }
  for (size_t j = 0; j < d.tasks->size(); ++j) {
    const std::string& name = (*d.tasks)[j];
    const std::string item = path + ".tasks[" + std::to_string(j) + "]";
    const TaskConfig* t = c.find_task(name);
    if (!t) {
      cx.fail(item, "unknown task '" + name + "'; defined tasks: " + join(task_names(c)) +
                        suggestion(name, task_names(c)));
    } else if (std::find(out.begin(), out.end(), name) != out.end()) {
      cx.fail(item, "task '" + name + "' is listed twice");
    } else if (const std::string why = unservable(*t, d.s); !why.empty()) {
      cx.fail(item, why + " on this stream");
    } else {
      out.push_back(name);
    }
  }
  return out;
}

// The sampler keeps the fewest frames that still give every task its frames per interval.
void resolve_sample_fps(Context& cx, const PipelineConfig& c, StreamConfig& s,
                        const std::string& path) {
  double needed = 0;
  const TaskConfig* by = nullptr;
  for (const std::string& name : s.tasks) {
    const TaskConfig* t = c.find_task(name);
    if (t && t->uses_video() && t->frames_per_request / t->interval_s > needed) {
      needed = t->frames_per_request / t->interval_s;
      by = t;
    }
  }
  if (s.video.sample_fps == 0) {
    s.video.sample_fps = needed;
  } else if (by && s.video.sample_fps < needed * (1 - 1e-9)) {
    cx.fail(path + ".video.sample_fps",
            format_number(s.video.sample_fps) + " frames per second is too few for task '" +
                by->name + "' (" + std::to_string(by->frames_per_request) + " frame(s) every " +
                format_number(by->interval_s) + " s); use at least " + format_number(needed) +
                " or leave it out (auto)");
  }
}

StreamConfig resolve_stream(Context& cx, const PipelineConfig& c, const StreamDraft& d, size_t i,
                            const fs::path& base) {
  const std::string path = indexed("streams", i);
  StreamConfig s = d.s;
  s.kind = d.kind.value_or(infer_stream_kind(s.url));
  s.queue.overflow =
      d.overflow.value_or(s.kind == StreamKind::Live ? Overflow::DropOldest : Overflow::Block);
  if (s.reconnect.max_delay_s < s.reconnect.initial_delay_s) {
    cx.fail(path + ".reconnect.max_delay_s", format_number(s.reconnect.max_delay_s) +
                                                 " is smaller than initial_delay_s " +
                                                 format_number(s.reconnect.initial_delay_s));
  }
  if (!s.video.enabled && !s.audio.enabled) {
    cx.fail(path + ".audio.enabled", "audio and video are both disabled: no task can run");
    return s;
  }
  s.tasks = resolve_stream_tasks(cx, c, d, path);
  resolve_sample_fps(cx, c, s, path);
  s.url = resolve_url(s.url, base);
  return s;
}

void check_stream_names(Context& cx, const PipelineConfig& c) {
  for (size_t i = 0; i < c.streams.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (c.streams[j].name == c.streams[i].name) {
        cx.fail(indexed("streams", i) + ".name",
                "duplicate stream name '" + c.streams[i].name + "' (also " + indexed("streams", j) +
                    "); stream names are used in topics and must differ");
      }
    }
  }
}

void resolve_engine(Context& cx, PipelineConfig& c, const fs::path& base) {
  EngineConfig& e = c.engine;
  // A GGUF model holds the text decoder only; the embedders come from the mmproj file (a Hugging
  // Face directory carries both).
  if (e.mmproj.empty() && ends_with_ci(e.model, ".gguf") && !c.tasks.empty()) {
    const TaskConfig& t = c.tasks.front();
    cx.fail("engine.mmproj",
            "required, since engine.model is a GGUF file, which holds the text "
            "decoder only, and task '" +
                t.name + "' needs the " + (t.uses_video() ? "vision" : "audio") +
                " embedder of an mmproj file");
  }
  int largest = 0;
  const TaskConfig* by = nullptr;
  for (const TaskConfig& t : c.tasks) {
    if (t.uses_video() && t.image_budget > largest) {
      largest = t.image_budget;
      by = &t;
    }
  }
  if (e.prefill_chunk == 0) {
    e.prefill_chunk = std::max(512, largest);
  } else if (by && e.prefill_chunk < largest) {
    cx.fail("engine.prefill_chunk",
            std::to_string(e.prefill_chunk) + " is smaller than the " + std::to_string(largest) +
                "-token images of task '" + by->name +
                "' (an image is prefilled in one chunk); use at least " + std::to_string(largest));
  }
  e.model = resolve_path(e.model, base);
  e.mmproj = resolve_path(e.mmproj, base);
}

PipelineConfig resolve(Context& cx, Draft& d, const fs::path& base) {
  PipelineConfig c = std::move(d.config);
  c.base_dir = base.string();
  check_task_names(cx, c);
  for (size_t i = 0; i < d.streams.size(); ++i) {
    c.streams.push_back(resolve_stream(cx, c, d.streams[i], i, base));
  }
  check_stream_names(cx, c);
  resolve_engine(cx, c, base);
  const OutputsConfig& o = c.outputs;
  if (!o.zeromq.enabled && !o.jsonl.enabled && !o.stdout_sink.enabled) {
    cx.fail("outputs", "no output is enabled; configure at least one of zmq, jsonl, stdout");
  }
  c.outputs.jsonl.path = resolve_path(c.outputs.jsonl.path, base);
  return c;
}

// ---------------------------------------------------------------------------------------------
// dump_config

template <class E>
std::string name_of(Choices<E> options, E value) {
  for (const auto& o : options) {
    if (o.second == value) return std::string(o.first);
  }
  return "";
}

void emit_stream(YAML::Emitter& out, const StreamConfig& s) {
  using namespace YAML;
  out << BeginMap;
  out << Key << "name" << Value << s.name << Key << "url" << Value << s.url;
  out << Key << "kind" << Value << name_of(kStreamKinds, s.kind);
  out << Key << "rtsp_transport" << Value << name_of(kTransports, s.rtsp_transport);
  out << Key << "reconnect" << Value << BeginMap;
  out << Key << "initial_delay_s" << Value << format_number(s.reconnect.initial_delay_s);
  out << Key << "max_delay_s" << Value << format_number(s.reconnect.max_delay_s);
  out << Key << "multiplier" << Value << format_number(s.reconnect.multiplier);
  out << Key << "max_attempts" << Value << s.reconnect.max_attempts << EndMap;
  out << Key << "watchdog" << Value << BeginMap;
  out << Key << "open_timeout_s" << Value << format_number(s.watchdog.open_timeout_s);
  out << Key << "read_timeout_s" << Value << format_number(s.watchdog.read_timeout_s) << EndMap;
  out << Key << "video" << Value << BeginMap << Key << "enabled" << Value << s.video.enabled;
  out << Key << "sample_fps" << Value << format_number(s.video.sample_fps) << EndMap;
  out << Key << "audio" << Value << BeginMap << Key << "enabled" << Value << s.audio.enabled
      << EndMap;
  out << Key << "queue" << Value << BeginMap;
  out << Key << "max_pending_requests" << Value << s.queue.max_pending_requests;
  out << Key << "overflow" << Value << name_of(kOverflows, s.queue.overflow) << EndMap;
  out << Key << "tasks" << Value << Flow << s.tasks;
  out << EndMap;
}

void emit_silence_gate(YAML::Emitter& out, const SilenceGate& g) {
  using namespace YAML;
  out << Key << "silence_gate" << Value << BeginMap;
  out << Key << "enabled" << Value << g.enabled;
  out << Key << "threshold_dbfs" << Value << format_number(g.threshold_dbfs);
  out << Key << "min_speech_s" << Value << format_number(g.min_speech_s) << EndMap;
}

void emit_task(YAML::Emitter& out, const TaskConfig& t) {
  using namespace YAML;
  out << BeginMap;
  out << Key << "name" << Value << t.name << Key << "kind" << Value << name_of(kTaskKinds, t.kind);
  if (t.kind == TaskKind::Transcribe) {
    out << Key << "window_s" << Value << format_number(t.audio_window_s);
    out << Key << "hop_s" << Value << format_number(t.interval_s);
    if (!t.language.empty()) out << Key << "language" << Value << t.language;
  } else {
    out << Key << "interval_s" << Value << format_number(t.interval_s);
    out << Key << "frames_per_request" << Value << t.frames_per_request;
    out << Key << "image_budget" << Value << t.image_budget;
    out << Key << "include_audio_s" << Value << format_number(t.audio_window_s);
  }
  if (t.kind != TaskKind::Describe) emit_silence_gate(out, t.silence_gate);
  out << Key << "prompt" << Value << t.prompt;
  out << Key << "max_new_tokens" << Value << t.max_new_tokens;
  out << Key << "deadline_s" << Value << format_number(t.deadline_s);
  out << Key << "sampling" << Value << BeginMap << Key << "greedy" << Value << t.sampling.greedy;
  if (!t.sampling.greedy) {
    out << Key << "temperature" << Value << format_number(t.sampling.temperature);
    out << Key << "top_k" << Value << t.sampling.top_k;
    out << Key << "top_p" << Value << format_number(t.sampling.top_p);
    out << Key << "min_p" << Value << format_number(t.sampling.min_p);
    out << Key << "seed" << Value << t.sampling.seed;
  }
  out << EndMap << EndMap;
}

void emit_engine(YAML::Emitter& out, const EngineConfig& e) {
  using namespace YAML;
  out << Key << "engine" << Value << BeginMap;
  out << Key << "model" << Value << e.model;
  if (!e.mmproj.empty()) out << Key << "mmproj" << Value << e.mmproj;
  out << Key << "threads" << Value << e.threads;
  out << Key << "kv_cache_budget_mb" << Value << e.kv_cache_budget_mb;
  out << Key << "max_batch" << Value << e.max_batch;
  out << Key << "llama_bidirectional" << Value << e.llama_bidirectional;
  out << Key << "prefill_chunk" << Value << e.prefill_chunk << EndMap;
}

void emit_outputs(YAML::Emitter& out, const OutputsConfig& o) {
  using namespace YAML;
  out << Key << "outputs" << Value << BeginMap;
  if (o.zeromq.enabled) {
    out << Key << "zmq" << Value << BeginMap;
    out << Key << "endpoint" << Value << o.zeromq.endpoint;
    out << Key << "bind" << Value << o.zeromq.bind;
    out << Key << "sndhwm" << Value << o.zeromq.sndhwm;
    out << Key << "topic" << Value << o.zeromq.topic;
    out << Key << "partials" << Value << o.zeromq.partials << EndMap;
  }
  if (o.jsonl.enabled) {
    out << Key << "jsonl" << Value << BeginMap << Key << "path" << Value << o.jsonl.path;
    out << Key << "partials" << Value << o.jsonl.partials << EndMap;
  }
  if (o.stdout_sink.enabled) {
    out << Key << "stdout" << Value << BeginMap;
    out << Key << "format" << Value << name_of(kStdoutFormats, o.stdout_sink.format);
    out << Key << "partials" << Value << o.stdout_sink.partials << EndMap;
  }
  out << EndMap;
}

void emit_metrics(YAML::Emitter& out, const MetricsConfig& m) {
  using namespace YAML;
  out << Key << "metrics" << Value << BeginMap;
  if (m.http_enabled) {
    const bool v6 = m.http_host.find(':') != std::string::npos;
    const std::string host = v6 ? "[" + m.http_host + "]" : m.http_host;
    out << Key << "http" << Value << BeginMap << Key << "listen" << Value
        << host + ":" + std::to_string(m.http_port) << EndMap;
  }
  out << Key << "interval_s" << Value << format_number(m.interval_s) << EndMap;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

const TaskConfig* PipelineConfig::find_task(std::string_view name) const {
  for (const TaskConfig& t : tasks) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

StreamKind infer_stream_kind(std::string_view url) {
  static const std::vector<std::string> live = {"rtsp", "rtsps", "rtmp", "rtmps", "rtp",
                                                "srt",  "udp",   "tcp",  "http",  "https",
                                                "mms",  "mmsh",  "mmst"};
  const std::string scheme = url_scheme(url);
  return std::find(live.begin(), live.end(), scheme) != live.end() ? StreamKind::Live
                                                                   : StreamKind::File;
}

std::string_view to_string(StreamKind k) { return k == StreamKind::Live ? "live" : "file"; }

std::string_view to_string(TaskKind k) {
  switch (k) {
    case TaskKind::Transcribe:
      return "transcribe";
    case TaskKind::Describe:
      return "describe";
    case TaskKind::Prompt:
      return "prompt";
  }
  return "";
}

PipelineConfig load_config_string(const std::string& text, const std::string& name_for_messages,
                                  const std::vector<std::string>& overrides) {
  Context cx{Document(name_for_messages, overrides), {}, {}};
  try {
    cx.doc.root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(name_for_messages + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": YAML syntax error: " + e.msg);
  }
  try {
    apply_overrides(cx.doc);
    Draft draft = read_document(cx);
    cx.errors.throw_if_any();
    const fs::path dir = fs::path(name_for_messages).parent_path();
    const fs::path base = fs::absolute(dir.empty() ? fs::current_path() : dir).lexically_normal();
    PipelineConfig config = resolve(cx, draft, base);
    cx.errors.throw_if_any();
    config.source = name_for_messages;
    return config;
  } catch (const YAML::Exception& e) {
    // Not expected (values are checked before conversion); keep the one error type.
    throw ConfigError(name_for_messages + ": " + e.what());
  }
}

PipelineConfig load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    throw ConfigError("cannot read config file '" + path + "': it is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("cannot read config file '" + path + "': " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return load_config_string(text.str(), path, overrides);
}

std::string dump_config(const PipelineConfig& c) {
  using namespace YAML;
  Emitter out;
  out << BeginMap << Key << "version" << Value << 1;
  out << Key << "streams" << Value << BeginSeq;
  for (const StreamConfig& s : c.streams) emit_stream(out, s);
  out << EndSeq << Key << "tasks" << Value << BeginSeq;
  for (const TaskConfig& t : c.tasks) emit_task(out, t);
  out << EndSeq;
  emit_engine(out, c.engine);
  emit_outputs(out, c.outputs);
  emit_metrics(out, c.metrics);
  out << EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace rawflow
