#pragma once
// The configuration of `rawflow run`: which streams to watch, what to ask about them, which engine
// answers and where the results go. docs/config.md is the reference of every YAML key;
// pipeline/config_keys.cpp declares each one, as a table row naming the member below it fills.
//
// A loaded PipelineConfig is complete and checked: defaults are filled in, relative paths are
// absolute, stream kinds are inferred, "auto" values are resolved, cross-references (task names,
// mmproj needed, prefill chunk vs image budget) hold. The graph builder reads it and never
// validates again. Plain data only: no YAML types in this header.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "media/input.h"
#include "model/gemma4/sampler.h"

namespace rawflow {

// One configuration problem. The message starts with where it is — `file:line:column: ` for the
// YAML file, `--set key=value: ` for an override — then the key path, what is wrong and, for
// enumerations and unknown keys, the allowed values.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class StreamKind {
  Live,  // reconnects on EOF/error/stall; drops the oldest work under pressure by default
  File,  // ends at EOF; never drops by default (backpressure reaches the demuxer)
};
enum class RtspTransport { Tcp, Udp };
enum class Overflow {
  DropOldest,  // the oldest pending request of the stream is dropped (counted) for the new one
  Block,       // the stream waits (its source stops reading) until a request leaves the queue
};
enum class TaskKind { Transcribe, Describe, Prompt };
enum class StdoutFormat { Text, Json };

// Exponential backoff between reconnect attempts of a live stream:
// delay_k = min(initial_delay_s · multiplier^k, max_delay_s).
struct ReconnectPolicy {
  double initial_delay_s = 1.0;
  double max_delay_s = 30.0;
  double multiplier = 2.0;
  int max_attempts = 0;  // consecutive failed attempts before the stream gives up; 0 = forever
};

// Budgets of the interrupt callback that detects a stalled live source (platform notes: the RTSP
// `timeout` option alone does not).
struct Watchdog {
  double open_timeout_s = 10.0;  // open + find_stream_info
  double read_timeout_s = 3.0;   // between two packets
};

struct VideoInput {
  bool enabled = true;
  // Frames per second the sampler keeps. Resolved: when the YAML leaves it out (or 0), the least
  // rate that serves the stream's tasks (max of frames_per_request / interval_s); 0 when no task
  // of the stream uses video.
  double sample_fps = 0.0;
  // Pictures with more pixels are refused before they are decoded. The default is also the most.
  int64_t max_pixels = media::kMaxPicturePixels;
};

struct AudioInput {
  bool enabled = true;
};

// Requests of one stream waiting for the engine.
struct StreamQueue {
  int max_pending_requests = 4;
  Overflow overflow = Overflow::DropOldest;  // resolved default: Live → DropOldest, File → Block
};

struct StreamConfig {
  std::string name;  // [A-Za-z0-9_-]+, unique; used in topics and metrics
  // A libavformat URL, or a file path made absolute against the config file's directory
  // (also after a `file:` prefix).
  std::string url;
  StreamKind kind = StreamKind::File;  // resolved: the YAML's, else inferred from the URL
  RtspTransport rtsp_transport = RtspTransport::Tcp;  // rtsp:// and rtsps:// only
  ReconnectPolicy reconnect;                          // live only
  Watchdog watchdog;                                  // live only
  VideoInput video;
  AudioInput audio;
  StreamQueue queue;
  // Names of the tasks run on this stream, in order. Resolved: when the YAML leaves it out, every
  // task the stream can serve (tasks needing video are left out if video is disabled, etc.).
  std::vector<std::string> tasks;
};

// Skips audio windows without speech: a window is sent only if it holds at least min_speech_s
// of 40 ms frames louder than threshold_dbfs.
struct SilenceGate {
  bool enabled = false;
  double threshold_dbfs = -45.0;
  double min_speech_s = 0.3;
};

// One kind of request made on every stream that runs the task. All kinds share one shape: every
// interval_s of media time, a request with the last audio_window_s of audio and/or
// frames_per_request frames from that interval, and the prompt.
//
// YAML keys per kind → fields:
//   transcribe: window_s → audio_window_s; hop_s (or window_s − overlap_s) → interval_s;
//               frames_per_request = 0
//   describe:   interval_s, frames_per_request (≥ 1), include_audio_s → audio_window_s
//   prompt:     interval_s, frames_per_request (≥ 0), include_audio_s → audio_window_s
struct TaskConfig {
  std::string name;  // [A-Za-z0-9_-]+, unique; defaults to the kind's name
  TaskKind kind = TaskKind::Transcribe;
  std::string prompt;    // resolved: the YAML's, else a default for the kind (and language)
  std::string language;  // transcribe: spoken language named in the default prompt; "" = unstated
  double interval_s = 10.0;
  double audio_window_s = 10.0;  // ≤ 30 (spec §4: 30 s = 750 audio tokens); 0 = no audio
  int frames_per_request = 0;
  int image_budget = 280;    // soft tokens per frame: 70, 140, 280, 560 or 1120 (spec §3.1)
  SilenceGate silence_gate;  // transcribe and prompt only
  int max_new_tokens = 256;
  double deadline_s = 0.0;  // from request creation to final result; 0 = none
  // Transcribe: seconds of audio per streaming-prefill piece of a window still open (StreamWindows
  // AudioPiece), rounded to whole 40 ms frames; 0 = off (docs/config.md).
  double streaming_prefill_s = 0.0;
  // Defaults to greedy (transcripts and descriptions should not change from run to run).
  SamplingParams sampling{.greedy = true};

  bool uses_audio() const { return audio_window_s > 0; }
  bool uses_video() const { return frames_per_request > 0; }
};

struct EngineConfig {
  std::string model;   // GGUF file or Hugging Face directory; absolute
  std::string mmproj;  // vision/audio embedders GGUF; absolute; "" when the model carries them
  int threads = 0;     // 0 = all cores
  int64_t kv_cache_budget_mb = 4096;
  int max_batch = 4;  // sequences per forward
  // llama.cpp's bidirectional image attention on every layer instead of HF's sliding layers only
  // (ForwardOptions::bidirectional_on_full_layers, spec §2.8).
  bool llama_bidirectional = false;
  // Prompt tokens of one sequence per forward. Resolved: the YAML's, else max(512, largest image
  // budget); always ≥ the largest image budget (an image's tokens are prefilled in one chunk).
  int prefill_chunk = 512;
  // After SIGINT/SIGTERM: requests in flight (and the windows the stop closed) may finish this
  // long; what is left then is cancelled with error events.
  double shutdown_grace_s = 10.0;
};

struct ZmqOutput {
  bool enabled = false;
  std::string endpoint;  // tcp://HOST:PORT, ipc://PATH or inproc://NAME
  bool bind = true;      // bind (usual for PUB) or connect
  int sndhwm = 1000;     // messages queued per subscriber before ZeroMQ drops (counted)
  std::string topic = "{stream}/{task}";  // placeholders: {stream}, {task}, {kind}
  bool partials = true;                   // also publish partial (streaming) results
  // CURVE (key `curve`): results encrypted, only the listed subscribers receive them.
  bool curve = false;
  std::string curve_secret_key_file;       // the publisher's secret key (Z85), absolute
  std::string curve_allowed_clients_file;  // subscribers' public keys (Z85), absolute
};

struct JsonlOutput {
  bool enabled = false;
  std::string path;  // absolute
  bool partials = false;
};

struct StdoutOutput {
  bool enabled = false;
  StdoutFormat format = StdoutFormat::Text;
  bool partials = false;
};

struct OutputsConfig {
  ZmqOutput zeromq;          // YAML key `zmq`
  JsonlOutput jsonl;         // YAML key `jsonl`
  StdoutOutput stdout_sink;  // YAML key `stdout` (a macro name in C)
};

struct MetricsConfig {
  bool http_enabled = false;  // Prometheus text at /metrics
  std::string http_host;      // as written: "127.0.0.1", "0.0.0.0", "::1", a host name
  int http_port = 0;          // 0 = any free port
  double interval_s = 10.0;   // period of `stats` events on the outputs; 0 = none
};

struct PipelineConfig {
  std::string source;    // the config file as named by the caller (or the name given for a string)
  std::string base_dir;  // absolute directory relative paths were resolved against
  std::vector<StreamConfig> streams;
  std::vector<TaskConfig> tasks;
  EngineConfig engine;
  OutputsConfig outputs;
  MetricsConfig metrics;

  const TaskConfig* find_task(std::string_view name) const;
};

// A config file larger than this is refused before it is parsed (the largest example is ~6 kB; a
// thousand streams fit in a few hundred kB).
inline constexpr size_t kMaxConfigBytes = size_t{4} << 20;

// Reads, overrides, checks and resolves a config file. Relative paths resolve against the file's
// directory. `overrides` are the `--set key=value` strings (`engine.threads=4`,
// `streams.0.url=rtsp://...`, `tasks.1.window_s=20`), applied in order to the YAML tree before
// validation, so the same checks apply. The value is plain text unless it starts with [ { " or '
// (then YAML: `streams.0.tasks=[a,b]`); an index equal to a list's length appends. Throws
// ConfigError. `require_output`: at least one of outputs.* must be enabled (false for a caller
// that brings its own sink, as `rawflow batch` does).
PipelineConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {},
                           bool require_output = true);

// The same for YAML text. `name_for_messages` prefixes locations; relative paths resolve against
// its directory (the current directory for a bare name).
PipelineConfig load_config_string(const std::string& text, const std::string& name_for_messages,
                                  const std::vector<std::string>& overrides = {},
                                  bool require_output = true);

// The effective configuration as YAML (every key, resolved values). Loading it gives the same
// configuration back. For `rawflow run --print-config` and logs.
std::string dump_config(const PipelineConfig& config);

// live for rtsp, rtsps, rtmp, rtmps, rtp, srt, udp, tcp, http, https, mms, mmsh, mmst URLs;
// file for anything else (paths, file:, pipe:).
StreamKind infer_stream_kind(std::string_view url);

std::string_view to_string(StreamKind k);
std::string_view to_string(TaskKind k);

}  // namespace rawflow
