#include "pipeline/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "media/input.h"
#include "pipeline/config_keys.h"
#include "pipeline/yaml_reader.h"

// Loading a configuration: the YAML tree, the `--set` overrides on it, stage 1 (every key of every
// map, by the tables of pipeline/config_keys.cpp), stage 2 (relations between sections, defaults
// that depend on them, paths; below).

namespace rawflow {
namespace {

namespace fs = std::filesystem;
using namespace yaml_config;

std::string indexed(std::string_view list, size_t i) {
  return std::string(list) + "[" + std::to_string(i) + "]";
}

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

// Why a network URL's authority (`scheme://[user[:password]@]host[:port]`) cannot be right, or ""
// if it can. libavformat would only say so on every reconnect attempt, forever; a typo is a config
// error. The message never repeats the URL: it may hold a password.
std::string url_authority_problem(std::string_view url) {
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return "";
  std::string_view auth = url.substr(sep + 3);
  auth = auth.substr(0, std::min(auth.find_first_of("/?#"), auth.size()));
  for (char c : auth)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
      return "the host part holds a space or a control character";
  const size_t at = auth.rfind('@');
  std::string_view host = at == std::string_view::npos ? auth : auth.substr(at + 1);
  std::string_view port;
  if (!host.empty() && host[0] == '[') {  // an IPv6 address: [::1]:554
    const size_t close = host.find(']');
    if (close == std::string_view::npos)
      return "an IPv6 host opened with '[' is not closed with ']'";
    const std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && rest[0] != ':') return "after the IPv6 host ']' only ':PORT' may follow";
    if (!rest.empty()) port = rest.substr(1);
  } else if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
    if (host.find_first_of("[]") != std::string_view::npos)
      return "a '[' or ']' outside an IPv6 host";
  }
  if (port.empty()) return "";
  if (port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(std::string(port)) > 65535)
    return "the port is not a number from 0 to 65535";
  return "";
}

// ---------------------------------------------------------------------------------------------
// Stage 1: every value on its own (types, ranges, keys) and the relations within one map.

ConfigDraft read_document(Context& cx) {
  ConfigDraft d;
  const YAML::Node& root = cx.doc.root;
  if (!root.IsDefined() || root.IsNull()) {
    cx.locations[""] = cx.doc.where(root);
    cx.fail("",
            "the configuration is empty; it needs streams, tasks, engine and outputs "
            "(see configs/demo.yaml)");
    return d;
  }
  read_section(MapReader(cx, root, ""), config_fields(), d);
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

// The stream's list as given (checked against the tasks), else every task it can serve.
std::vector<std::string> resolve_stream_tasks(Context& cx, const PipelineConfig& c,
                                              const StreamConfig& s, bool given,
                                              const std::string& path) {
  std::vector<std::string> out;
  if (!given) {
    std::vector<std::string> reasons;
    for (const TaskConfig& t : c.tasks) {
      const std::string why = unservable(t, s);
      (why.empty() ? out : reasons).push_back(why.empty() ? t.name : why);
    }
    if (out.empty()) {
      cx.fail(path + (s.video.enabled ? ".audio.enabled" : ".video.enabled"),
              "no task can run on this stream: " + join(reasons, "; "));
    }
    return out;
  }
  if (s.tasks.empty()) {
    cx.fail(path + ".tasks", "empty list; leave the key out to run every task");
  }
  for (size_t j = 0; j < s.tasks.size(); ++j) {
    const std::string& name = s.tasks[j];
    const std::string item = path + ".tasks[" + std::to_string(j) + "]";
    const TaskConfig* t = c.find_task(name);
    if (!t) {
      cx.fail(item, "unknown task '" + name + "'; defined tasks: " + join(task_names(c)) +
                        suggestion(name, task_names(c)));
    } else if (std::find(out.begin(), out.end(), name) != out.end()) {
      cx.fail(item, "task '" + name + "' is listed twice");
    } else if (const std::string why = unservable(*t, s); !why.empty()) {
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

// The stream (or stream_defaults) wrote the key: its value is not to be resolved.
bool stream_gives(const Context& cx, const std::string& path, const std::string& key) {
  return cx.given(path + "." + key) || cx.given("stream_defaults." + key);
}

void resolve_stream(Context& cx, PipelineConfig& c, size_t i, const fs::path& base) {
  const std::string path = indexed("streams", i);
  StreamConfig& s = c.streams[i];
  if (!stream_gives(cx, path, "kind")) s.kind = infer_stream_kind(s.url);
  if (!stream_gives(cx, path, "queue.overflow")) {
    s.queue.overflow = s.kind == StreamKind::Live ? Overflow::DropOldest : Overflow::Block;
  }
  if (s.reconnect.max_delay_s < s.reconnect.initial_delay_s) {
    cx.fail(path + ".reconnect.max_delay_s", format_number(s.reconnect.max_delay_s) +
                                                 " is smaller than initial_delay_s " +
                                                 format_number(s.reconnect.initial_delay_s));
  }
  if (!s.video.enabled && !s.audio.enabled) {
    cx.fail(path + ".audio.enabled", "audio and video are both disabled: no task can run");
    return;
  }
  if (const std::string problem = url_authority_problem(s.url); !problem.empty())
    cx.fail(path + ".url", "not a valid URL: " + problem);
  s.tasks = resolve_stream_tasks(cx, c, s, stream_gives(cx, path, "tasks"), path);
  resolve_sample_fps(cx, c, s, path);
  s.url = resolve_url(s.url, base);
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

PipelineConfig resolve(Context& cx, ConfigDraft& d, const fs::path& base, bool require_output) {
  PipelineConfig c = std::move(d);
  c.base_dir = base.string();
  check_task_names(cx, c);
  for (size_t i = 0; i < c.streams.size(); ++i) resolve_stream(cx, c, i, base);
  check_stream_names(cx, c);
  resolve_engine(cx, c, base);
  const OutputsConfig& o = c.outputs;
  if (require_output && !o.zeromq.enabled && !o.jsonl.enabled && !o.stdout_sink.enabled) {
    cx.fail("outputs", "no output is enabled; configure at least one of zmq, jsonl, stdout");
  }
  c.outputs.jsonl.path = resolve_path(c.outputs.jsonl.path, base);
  ZmqOutput& z = c.outputs.zeromq;
  if (z.curve) {
    z.curve_secret_key_file = resolve_path(z.curve_secret_key_file, base);
    z.curve_allowed_clients_file = resolve_path(z.curve_allowed_clients_file, base);
  }
  return c;
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
                                  const std::vector<std::string>& overrides, bool require_output) {
  Context cx{Document(name_for_messages, overrides), {}, {}};
  try {
    cx.doc.root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(name_for_messages + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": YAML syntax error: " + e.msg);
  }
  try {
    apply_overrides(cx.doc);
    ConfigDraft draft = read_document(cx);
    cx.errors.throw_if_any();
    const fs::path dir = fs::path(name_for_messages).parent_path();
    const fs::path base = fs::absolute(dir.empty() ? fs::current_path() : dir).lexically_normal();
    PipelineConfig config = resolve(cx, draft, base, require_output);
    cx.errors.throw_if_any();
    config.source = name_for_messages;
    return config;
  } catch (const YAML::Exception& e) {
    // Not expected (values are checked before conversion); keep the one error type.
    throw ConfigError(name_for_messages + ": " + e.what());
  }
}

PipelineConfig load_config(const std::string& path, const std::vector<std::string>& overrides,
                           bool require_output) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    throw ConfigError("cannot read config file '" + path + "': it is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("cannot read config file '" + path + "': " + std::strerror(errno));
  // Read at most one byte past the limit: /dev/zero or a video given by mistake is refused
  // without reading it all into memory.
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad())
    throw ConfigError("cannot read config file '" + path + "': " + std::strerror(errno));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxConfigBytes)
    throw ConfigError("config file '" + path + "' is larger than " +
                      std::to_string(kMaxConfigBytes >> 20) +
                      " MiB: not a pipeline configuration (give the YAML file)");
  return load_config_string(text, path, overrides, require_output);
}

std::string dump_config(const PipelineConfig& c) {
  ConfigDraft d;
  static_cast<PipelineConfig&>(d) = c;
  // A camera's user and password (written out or from ${VAR}) are not shown.
  for (StreamConfig& s : d.streams) s.url = media::redact_url(s.url);
  return dump_map(config_fields(), d) + "\n";
}

}  // namespace rawflow
