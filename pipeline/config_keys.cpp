#include "pipeline/config_keys.h"

#include <algorithm>
#include <string>
#include <vector>

#include "media/input.h"

namespace rawflow {
namespace {

using namespace yaml_config;

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

template <class S>
std::vector<Field<S>> concat(std::vector<Field<S>> a, const std::vector<Field<S>>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// =============================================================================================
// streams[] and stream_defaults

const FieldTable<ReconnectPolicy> kReconnect = {{
    number("initial_delay_s", &ReconnectPolicy::initial_delay_s, kTimeout),
    number("max_delay_s", &ReconnectPolicy::max_delay_s, kTimeout),
    number("multiplier", &ReconnectPolicy::multiplier, {1, 100}),
    integer("max_attempts", &ReconnectPolicy::max_attempts, 0, 1'000'000'000),
}};

const FieldTable<Watchdog> kWatchdog = {{
    number("open_timeout_s", &Watchdog::open_timeout_s, kTimeout),
    number("read_timeout_s", &Watchdog::read_timeout_s, kTimeout),
}};

const FieldTable<VideoInput> kVideo = {{
    boolean("enabled", &VideoInput::enabled),
    number("sample_fps", &VideoInput::sample_fps, {0, 240}),  // 0 = auto, resolved in config.cpp
    integer("max_pixels", &VideoInput::max_pixels, 1, media::kMaxPicturePixels),
}};

const FieldTable<AudioInput> kAudio = {{
    boolean("enabled", &AudioInput::enabled),
}};

const FieldTable<StreamQueue> kQueue = {{
    integer("max_pending_requests", &StreamQueue::max_pending_requests, 1, 100'000),
    choice("overflow", &StreamQueue::overflow, kOverflows),  // unless given: by kind, config.cpp
}};

// Each stream's own keys.
const std::vector<Field<StreamConfig>> kStreamIdentity = {
    text("name", &StreamConfig::name, TextRule::Name).required_always(),
    text("url", &StreamConfig::url, TextRule::NonEmpty).required_always(),
};

// The keys stream_defaults can give every stream. When neither gives kind, queue.overflow or
// tasks, config.cpp resolves them from the URL and the tasks.
const std::vector<Field<StreamConfig>> kStreamSettings = {
    choice("kind", &StreamConfig::kind, kStreamKinds),
    choice("rtsp_transport", &StreamConfig::rtsp_transport, kTransports),
    section("reconnect", &StreamConfig::reconnect, kReconnect),
    section("watchdog", &StreamConfig::watchdog, kWatchdog),
    section("video", &StreamConfig::video, kVideo),
    section("audio", &StreamConfig::audio, kAudio),
    section("queue", &StreamConfig::queue, kQueue),
    name_list("tasks", &StreamConfig::tasks),
};

const FieldTable<StreamConfig> kStream = {concat(kStreamIdentity, kStreamSettings)};

std::vector<Field<StreamConfig>> not_applying(std::vector<Field<StreamConfig>> fields) {
  for (Field<StreamConfig>& f : fields) f = f.applies_if([](const StreamConfig&) { return false; });
  return fields;
}

const FieldTable<StreamConfig> kStreamDefaults = {
    concat(not_applying(kStreamIdentity), kStreamSettings), nullptr,
    [](const StreamConfig&) { return std::string("(each stream sets its own)"); }};

// Read only: the dump shows each stream with its defaults applied. docs/config.md documents it
// as "every stream key but name and url", so its keys are not listed again below it.
Field<ConfigDraft> stream_defaults_field() {
  Field<ConfigDraft> f =
      section("stream_defaults", &ConfigDraft::stream_defaults, kStreamDefaults).not_dumped();
  f.below.clear();
  return f;
}

// =============================================================================================
// tasks[]

std::function<bool(const TaskConfig&)> kinds(std::vector<TaskKind> allowed) {
  return [allowed](const TaskConfig& t) {
    return std::find(allowed.begin(), allowed.end(), t.kind) != allowed.end();
  };
}
const auto kTranscribe = kinds({TaskKind::Transcribe});
const auto kDescribe = kinds({TaskKind::Describe});
const auto kPrompt = kinds({TaskKind::Prompt});
const auto kVisual = kinds({TaskKind::Describe, TaskKind::Prompt});
const auto kListening = kinds({TaskKind::Transcribe, TaskKind::Prompt});

const FieldTable<SilenceGate> kSilenceGate = {{
    boolean("enabled", &SilenceGate::enabled),
    number("threshold_dbfs", &SilenceGate::threshold_dbfs, {-120, 0}),
    number("min_speech_s", &SilenceGate::min_speech_s, {0, 30}),
}};

// Sampling keys other than greedy do nothing while greedy is on: saying so beats ignoring them.
void check_sampling(MapReader& r, SamplingParams& p) {
  if (!r.ok() || !p.greedy) return;
  for (const std::string& key : r.given_keys()) {
    if (key != "greedy") {
      r.fail(key, "has no effect while greedy is true (the default); add greedy: false");
    }
  }
}

bool sampled(const SamplingParams& p) { return !p.greedy; }

const FieldTable<SamplingParams> kSampling = {
    {
        boolean("greedy", &SamplingParams::greedy),
        number("temperature", &SamplingParams::temperature, {0, 100}).dumped_if(sampled),
        integer("top_k", &SamplingParams::top_k, 0, 1 << 24).dumped_if(sampled),
        number("top_p", &SamplingParams::top_p, {0, 1, true}).dumped_if(sampled),
        number("min_p", &SamplingParams::min_p, {0, 1}).dumped_if(sampled),
        unsigned_integer("seed", &SamplingParams::seed).dumped_if(sampled),
    },
    check_sampling};

// transcribe: hop_s or overlap_s against window_s, and the gate against the window.
void check_transcribe(MapReader& r, const TaskDraft& t) {
  const double window = t.audio_window_s;
  const bool has_hop = r.has("hop_s"), has_overlap = r.has("overlap_s");
  if (has_hop && has_overlap) {
    r.fail("overlap_s", "give hop_s or overlap_s, not both");
  } else if (has_hop && t.interval_s > window) {
    r.fail("hop_s", format_number(t.interval_s) + " is larger than window_s " +
                        format_number(window) +
                        " (the audio between windows would never be transcribed)");
  } else if (has_overlap && t.overlap_s >= window) {
    r.fail("overlap_s",
           format_number(t.overlap_s) + " must be smaller than window_s " + format_number(window));
  }
  const double piece = t.streaming_prefill_s;
  if (piece > 0 && piece < 0.04) {
    r.fail("streaming_prefill_s",
           format_number(piece) + " is shorter than one 40 ms audio frame (0 turns it off)");
  } else if (piece > 0 && piece >= window) {
    r.fail("streaming_prefill_s", format_number(piece) + " is not shorter than window_s " +
                                      format_number(window) +
                                      " (a window's audio would never go ahead of it)");
  }
  if (t.silence_gate.enabled && t.silence_gate.min_speech_s > window) {
    r.fail("silence_gate.min_speech_s", format_number(t.silence_gate.min_speech_s) +
                                            " is longer than window_s " + format_number(window) +
                                            ": no window could pass the gate");
  }
}

// describe and prompt: frames from each interval, optionally with the audio that led up to it.
void check_visual(MapReader& r, const TaskDraft& t) {
  const double fps = t.frames_per_request / t.interval_s;
  if (fps > 30) {
    r.fail("frames_per_request", std::to_string(t.frames_per_request) + " frames every " +
                                     format_number(t.interval_s) + " s is " + format_number(fps) +
                                     " frames per second; at most 30");
  }
  if (t.kind == TaskKind::Prompt && t.frames_per_request == 0 && t.audio_window_s == 0) {
    r.fail("",
           "a prompt task needs media: set frames_per_request ≥ 1 or "
           "include_audio_s > 0");
  }
  if (t.silence_gate.enabled && t.audio_window_s == 0) {
    r.fail("silence_gate.enabled",
           "the gate listens to the request's audio; set include_audio_s > 0");
  } else if (t.silence_gate.enabled && t.silence_gate.min_speech_s > t.audio_window_s) {
    r.fail("silence_gate.min_speech_s",
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

// Defaults that depend on other keys (name, interval, prompt), then the relations between keys.
void check_task(MapReader& r, TaskDraft& t) {
  if (!r.has("name")) t.name = std::string(to_string(t.kind));
  if (t.kind == TaskKind::Transcribe && !r.has("hop_s")) {
    t.interval_s = t.audio_window_s - (r.has("overlap_s") ? t.overlap_s : 0);
  }
  if (t.prompt.empty()) t.prompt = default_prompt(t);
  if (!r.values_ok()) return;
  if (t.kind == TaskKind::Transcribe) {
    check_transcribe(r, t);
  } else {
    check_visual(r, t);
  }
}

// Every kind of task shares one table; a key whose row does not apply to the task's kind is
// reported as such. Rows are in the order of messages and of the dump.
const FieldTable<TaskDraft> kTask = {
    {
        text("name", &TaskConfig::name, TextRule::Name),
        // The kind decides which keys apply: without one, only the kind is reported.
        choice("kind", &TaskConfig::kind, kTaskKinds).required_always().selecting_keys(),
        number("window_s", &TaskConfig::audio_window_s, {0, 30, true, false, kAudioLimit})
            .applies_if(kTranscribe),
        number("hop_s", &TaskConfig::interval_s, {0, 30, true}).applies_if(kTranscribe),
        number("overlap_s", &TaskDraft::overlap_s, {0, 30, false, true})
            .not_dumped()
            .applies_if(kTranscribe),
        number("streaming_prefill_s", &TaskConfig::streaming_prefill_s, {0, 30})
            .applies_if(kTranscribe),
        text("language", &TaskConfig::language)
            .applies_if(kTranscribe)
            .dumped_if([](const TaskConfig& t) { return !t.language.empty(); }),
        number("interval_s", &TaskConfig::interval_s, kPositiveSeconds).applies_if(kVisual),
        integer("frames_per_request", &TaskConfig::frames_per_request, 1, 32)
            .defaults_to(1)
            .applies_if(kDescribe),
        integer("frames_per_request", &TaskConfig::frames_per_request, 0, 32)
            .defaults_to(1)
            .applies_if(kPrompt),
        integer_in("image_budget", &TaskConfig::image_budget, kImageBudgets).applies_if(kVisual),
        number("include_audio_s", &TaskConfig::audio_window_s, {0, 30, false, false, kAudioLimit})
            .defaults_to(0)
            .applies_if(kVisual),
        section("silence_gate", &TaskConfig::silence_gate, kSilenceGate).applies_if(kListening),
        text("prompt", &TaskConfig::prompt, TextRule::NonEmpty).required_if(kPrompt),
        integer("max_new_tokens", &TaskConfig::max_new_tokens, 1, 32768),
        number("deadline_s", &TaskConfig::deadline_s, {0, 86400}),
        section("sampling", &TaskConfig::sampling, kSampling),
    },
    check_task,
    [](const TaskDraft& t) { return "to a " + std::string(to_string(t.kind)) + " task"; }};

// =============================================================================================
// engine

const FieldTable<EngineConfig> kEngine = {{
    text("model", &EngineConfig::model, TextRule::NonEmpty).required_always(),
    text("mmproj", &EngineConfig::mmproj).dumped_if([](const EngineConfig& e) {
      return !e.mmproj.empty();
    }),
    integer("threads", &EngineConfig::threads, 0, 4096),
    integer("kv_cache_budget_mb", &EngineConfig::kv_cache_budget_mb, 16, int64_t{1} << 24),
    integer("max_batch", &EngineConfig::max_batch, 1, 256),
    boolean("llama_bidirectional", &EngineConfig::llama_bidirectional),
    // 0 = auto until config.cpp resolves it from the image budgets.
    integer("prefill_chunk", &EngineConfig::prefill_chunk, 0, 65536).defaults_to(0),
    number("shutdown_grace_s", &EngineConfig::shutdown_grace_s, {0, 3600}),
}};

// =============================================================================================
// outputs: a sink is on when its section is present, unless `enabled: false` (lets --set switch
// it off); a sink that is off is not dumped.

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
std::string topic_problem(const std::string& topic) {
  if (topic.empty()) return "must not be empty";
  for (size_t i = 0; i < topic.size(); ++i) {
    if (topic[i] == '}') return "'" + topic + "' has a '}' without '{'";
    if (topic[i] != '{') continue;
    const size_t close = topic.find('}', i);
    if (close == std::string::npos) return "'" + topic + "' has an unclosed '{'";
    const std::string name = topic.substr(i + 1, close - i - 1);
    if (name != "stream" && name != "task" && name != "kind") {
      return "unknown placeholder '{" + name + "}'; allowed: {stream}, {task}, {kind}";
    }
    i = close;
  }
  return "";
}

void check_zmq_endpoint(MapReader& r, ZmqOutput& z) {
  if (!r.ok() || !r.has("endpoint")) return;
  if (const std::string why = endpoint_problem(z.endpoint, z.bind); !why.empty()) {
    r.fail("endpoint", why);
  } else if (z.curve && !z.bind) {
    r.fail("curve",
           "needs bind: true (the publisher is the CURVE server its subscribers connect to)");
  }
}

const FieldTable<ZmqOutput> kCurve = {{
    boolean("enabled", &ZmqOutput::curve).not_dumped(),
    text("secret_key_file", &ZmqOutput::curve_secret_key_file, TextRule::NonEmpty)
        .required_if([](const ZmqOutput& z) { return z.curve; }),
    text("allowed_clients_file", &ZmqOutput::curve_allowed_clients_file, TextRule::NonEmpty)
        .required_if([](const ZmqOutput& z) { return z.curve; }),
}};

const FieldTable<ZmqOutput> kZmq = {
    {
        boolean("enabled", &ZmqOutput::enabled).not_dumped(),
        text("endpoint", &ZmqOutput::endpoint, TextRule::NonEmpty)
            .required_if([](const ZmqOutput& z) { return z.enabled; }),
        boolean("bind", &ZmqOutput::bind),
        integer("sndhwm", &ZmqOutput::sndhwm, 1, 10'000'000),
        text("topic", &ZmqOutput::topic).checked_by(topic_problem),
        boolean("partials", &ZmqOutput::partials),
        group("curve", kCurve, &ZmqOutput::curve),
    },
    check_zmq_endpoint};

const FieldTable<JsonlOutput> kJsonl = {{
    boolean("enabled", &JsonlOutput::enabled).not_dumped(),
    text("path", &JsonlOutput::path, TextRule::NonEmpty).required_if([](const JsonlOutput& j) {
      return j.enabled;
    }),
    boolean("partials", &JsonlOutput::partials),
}};

const FieldTable<StdoutOutput> kStdout = {{
    boolean("enabled", &StdoutOutput::enabled).not_dumped(),
    choice("format", &StdoutOutput::format, kStdoutFormats),
    boolean("partials", &StdoutOutput::partials),
}};

const FieldTable<OutputsConfig> kOutputs = {{
    section("zmq", &OutputsConfig::zeromq, kZmq, &ZmqOutput::enabled),
    section("jsonl", &OutputsConfig::jsonl, kJsonl, &JsonlOutput::enabled),
    section("stdout", &OutputsConfig::stdout_sink, kStdout, &StdoutOutput::enabled),
}};

// =============================================================================================
// metrics

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

// `listen` fills two members, http_host and http_port.
bool read_listen(MapReader& r, MetricsConfig& m) {
  std::string listen = "127.0.0.1:9464";
  const bool given = r.text("listen", listen, TextRule::NonEmpty);
  if (!parse_listen(listen, m.http_host, m.http_port)) {
    r.fail("listen", "'" + listen + "' is not HOST:PORT, [IPv6]:PORT or :PORT (port 0-65535)");
    return false;
  }
  return given;
}

void dump_listen(YAML::Emitter& out, const MetricsConfig& m) {
  const bool v6 = m.http_host.find(':') != std::string::npos;
  const std::string host = v6 ? "[" + m.http_host + "]" : m.http_host;
  out << host + ":" + std::to_string(m.http_port);
}

const FieldTable<MetricsConfig> kHttp = {{
    boolean("enabled", &MetricsConfig::http_enabled).not_dumped(),
    custom<MetricsConfig>("listen", read_listen, dump_listen),
}};

const FieldTable<MetricsConfig> kMetrics = {{
    group("http", kHttp, &MetricsConfig::http_enabled),
    number("interval_s", &MetricsConfig::interval_s, {0, 86400}),
}};

// =============================================================================================
// The top level

const FieldTable<ConfigDraft> kConfig = {{
    integer("version", &ConfigDraft::version, 1, 1),
    stream_defaults_field(),
    list<ConfigDraft>("streams", &PipelineConfig::streams, "a list of streams",
                      "at least one stream is needed", kStream,
                      [](MapReader r, const ConfigDraft& d) {
                        StreamConfig s = d.stream_defaults;
                        read_section(std::move(r), kStream, s);
                        return s;
                      })
        .required_always(),
    list<ConfigDraft>("tasks", &PipelineConfig::tasks, "a list of tasks",
                      "at least one task is needed", kTask,
                      [](MapReader r, const ConfigDraft&) {
                        TaskDraft t;
                        read_section(std::move(r), kTask, t);
                        return TaskConfig(t);
                      })
        .required_always(),
    section("engine", &PipelineConfig::engine, kEngine).required_always(),
    section("outputs", &PipelineConfig::outputs, kOutputs).required_always(),
    section("metrics", &PipelineConfig::metrics, kMetrics),
}};

}  // namespace

const FieldTable<ConfigDraft>& config_fields() { return kConfig; }

std::vector<std::string> config_key_paths() { return key_paths(kConfig); }

}  // namespace rawflow
