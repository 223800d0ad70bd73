#include "pipeline/graph.h"

#include <tbb/flow_graph.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <variant>

#include "media/embed.h"
#include "media/video_sampling.h"
#include "model/gemma4_audio.h"
#include "model/gemma4_mmproj.h"
#include "model/gemma4_vision.h"
#include "model/model_loader.h"
#include "nodes/jsonl_sink.h"
#include "nodes/metrics_server.h"
#include "nodes/source.h"
#include "nodes/stdout_sink.h"
#include "nodes/zmq_publisher.h"
#include "pipeline/batch_scheduler.h"
#include "pipeline/metrics.h"
#include "pipeline/result.h"
#include "pipeline/windows.h"

namespace rawflow::pipeline {
namespace {

using Clock = std::chrono::steady_clock;
namespace flow = tbb::flow;

// What a source thread hands to the graph.
struct VideoUnit {
  media::RgbImage image;
  double t = 0;
};
struct AudioUnit {
  std::vector<float> samples;
  double t = 0;  // the first sample's place on the timeline
};
struct GapUnit {
  double seconds = 0;
  std::string why;
};
struct EndUnit {
  bool ok = true;
};
struct ErrorUnit {
  std::string message;
};
struct SourceUnit {
  size_t stream = 0;
  std::variant<VideoUnit, AudioUnit, GapUnit, EndUnit, ErrorUnit> body;
};

// A live stream's timeline on the wall clock. Media cannot arrive before it is sent, and some
// arrives late (the demuxer's probe holds the first second or so back, then hands it over in a
// burst), so the best estimate of when timeline point 0 was live is the least of (arrival − t)
// over the units seen. One such origin per connection (a gap starts a new one): across a
// reconnect the timeline's gap only approximates the outage.
class WallClockAnchors {
 public:
  using SystemClock = std::chrono::system_clock;
  // Source thread: a gap means the next media unit starts a new anchor.
  void on_gap() { reanchor_ = true; }
  void on_media(double t) {
    const SystemClock::time_point origin =
        SystemClock::now() -
        std::chrono::duration_cast<SystemClock::duration>(std::chrono::duration<double>(t));
    std::lock_guard<std::mutex> lock(mu_);
    if (reanchor_ || anchors_.empty()) {
      reanchor_ = false;
      if (anchors_.size() == kMaxAnchors) anchors_.erase(anchors_.begin());
      anchors_.push_back({t, origin});
    } else {
      anchors_.back().origin = std::min(anchors_.back().origin, origin);
    }
  }
  // Any thread: the wall clock at timeline point `t`; nullopt before the first media.
  std::optional<SystemClock::time_point> at(double t) const {
    std::lock_guard<std::mutex> lock(mu_);
    if (anchors_.empty()) return std::nullopt;
    auto it = std::upper_bound(anchors_.begin(), anchors_.end(), t,
                               [](double v, const Anchor& a) { return v < a.from_t; });
    const Anchor& a = it == anchors_.begin() ? *it : *std::prev(it);
    return a.origin +
           std::chrono::duration_cast<SystemClock::duration>(std::chrono::duration<double>(t));
  }

 private:
  // Requests look back one window at most; old anchors are only kept for a while.
  static constexpr size_t kMaxAnchors = 256;
  struct Anchor {
    double from_t;                   // the connection's first timeline point
    SystemClock::time_point origin;  // wall clock of timeline point 0, as this connection runs
  };
  bool reanchor_ = true;  // source thread only
  mutable std::mutex mu_;
  std::vector<Anchor> anchors_;  // by from_t, increasing
};

// Per stream: requests made but not finished, for file backpressure and for knowing when done;
// its metric handles, resolved once so that no unit looks a series up by name.
struct StreamState {
  StreamState(StreamMetrics m, std::unique_ptr<StreamWindows> w)
      : metrics(m), windows(std::move(w)) {}
  std::mutex mu;
  std::condition_variable cv;
  int64_t in_flight = 0;
  WallClockAnchors anchors;
  bool ended = false;
  StreamMetrics metrics;
  std::map<size_t, TaskMetrics> task_metrics;  // by task index, for the tasks the stream runs
  WindowStats published;  // window counts already added to `metrics` (windows node only)
  std::unique_ptr<StreamWindows> windows;
  std::unique_ptr<nodes::Source> source;
};

// rawflow_decode_tokens_per_second: tokens generated per second over the last interval of wall
// time (the stats interval: decoding is bursty, a shorter one mostly reads 0 or a peak).
class TokenRate {
 public:
  TokenRate(Gauge& gauge, double interval_s) : gauge_(gauge), interval_s_(interval_s) {}
  // `last`: the run ends; a run shorter than the interval gets its rate over its whole length.
  void update(uint64_t tokens_generated, bool last = false) {
    const auto now = Clock::now();
    const double dt = std::chrono::duration<double>(now - since_).count();
    if (dt < interval_s_ && !(last && !updated_ && dt > 0)) return;
    updated_ = true;
    gauge_.set(static_cast<double>(tokens_generated - tokens_) / dt);
    tokens_ = tokens_generated;
    since_ = now;
  }

 private:
  Gauge& gauge_;
  double interval_s_;
  bool updated_ = false;
  uint64_t tokens_ = 0;
  Clock::time_point since_ = Clock::now();
};

std::string model_name(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

}  // namespace

struct Pipeline::Impl {
  PipelineConfig cfg;
  MetricsRegistry registry;
  PipelineMetrics metrics{registry};
  LoadedModel model;
  std::unique_ptr<Gemma4Mmproj> mmproj;
  std::unique_ptr<Gemma4VisionEmbedder> vision;
  std::unique_ptr<Gemma4AudioEmbedder> audio;
  std::vector<std::unique_ptr<nodes::ResultSink>> sinks;
  std::unique_ptr<nodes::MetricsServer> metrics_server;
  std::vector<std::unique_ptr<StreamState>> streams;
  std::string model_label;

  std::mutex summary_mu;
  RunSummary summary;

  // Finals (and errors) of one stream's task leave in the order their requests were made, even
  // when the scheduler finishes a later window first; partials are not held back.
  struct Reorder {
    std::deque<uint64_t> order;
    std::map<uint64_t, ResultEvent> done;
  };
  std::mutex reorder_mu;
  std::map<std::pair<size_t, size_t>, Reorder> reorder;
  void expect_final(size_t stream, size_t task, uint64_t id) {
    std::lock_guard<std::mutex> lock(reorder_mu);
    reorder[{stream, task}].order.push_back(id);
  }
  void release_final(size_t stream, size_t task, ResultEvent e) {
    std::lock_guard<std::mutex> lock(reorder_mu);
    Reorder& r = reorder[{stream, task}];
    r.done.emplace(e.request_id, std::move(e));
    while (!r.order.empty()) {
      auto it = r.done.find(r.order.front());
      if (it == r.done.end()) break;
      outputs->try_put(it->second);
      r.done.erase(it);
      r.order.pop_front();
    }
  }

  flow::graph g;
  std::unique_ptr<flow::function_node<ResultEvent, flow::continue_msg>> outputs;
  std::unique_ptr<flow::function_node<MediaRequest, flow::continue_msg>> projection;
  std::unique_ptr<flow::function_node<SourceUnit, flow::continue_msg>> windows;
  // Declared after the nodes: destroyed first, since cancelling its requests calls into them.
  std::unique_ptr<BatchScheduler> scheduler;

  explicit Impl(PipelineConfig c) : cfg(std::move(c)) {}

  void load_engine();
  void make_sinks();
  void build_graph();
  void make_streams();
  void start_sources();

  ResultEvent event(ResultEvent::Kind kind, size_t stream, const std::string& task) const {
    ResultEvent e;
    e.kind = kind;
    e.stream = cfg.streams[stream].name;
    e.task = task;
    e.wall_utc = utc_now_iso8601();
    e.model = model_label;
    return e;
  }
  void on_source_unit(const SourceUnit& u);
  void publish_window_counts(StreamState& s);
  void emit_requests(size_t stream);
  void on_request(MediaRequest& r);
  void request_done(size_t stream) {
    StreamState& s = *streams[stream];
    std::lock_guard<std::mutex> lock(s.mu);
    --s.in_flight;
    s.metrics.queue_requests.set(static_cast<double>(s.in_flight));
    s.cv.notify_all();
  }
  // Called on the stream's source thread.
  void put_unit(SourceUnit u) {
    StreamState& s = *streams[u.stream];
    if (cfg.streams[u.stream].kind == StreamKind::Live) {
      if (const auto* v = std::get_if<VideoUnit>(&u.body)) s.anchors.on_media(v->t);
      if (const auto* a = std::get_if<AudioUnit>(&u.body)) s.anchors.on_media(a->t);
      if (std::holds_alternative<GapUnit>(u.body)) s.anchors.on_gap();
    }
    s.metrics.queue_windows.add(1);
    windows->try_put(std::move(u));
  }
  // The wall clock at media time `t` of a live stream; "" for files and before any media.
  std::string media_utc(size_t stream, double t) const {
    const auto wall = streams[stream]->anchors.at(t);
    return wall ? utc_iso8601(*wall) : std::string();
  }
  ResultEvent stats_event(size_t stream) const {
    ResultEvent e = event(ResultEvent::Kind::Stats, stream, "");
    e.stats_json = registry.render_json(cfg.streams[stream].name);
    return e;
  }
  // One stats event per stream, and one (stream "") for the engine's and sinks' series.
  void publish_stats() {
    for (size_t i = 0; i < streams.size(); ++i) outputs->try_put(stats_event(i));
    ResultEvent e;
    e.kind = ResultEvent::Kind::Stats;
    e.wall_utc = utc_now_iso8601();
    e.model = model_label;
    e.stats_json = registry.render_json_unstreamed();
    outputs->try_put(e);
  }
  bool all_done() {
    for (auto& s : streams) {
      std::lock_guard<std::mutex> lock(s->mu);
      if (!s->ended || s->in_flight > 0) return false;
    }
    return true;
  }
};

void Pipeline::Impl::load_engine() {
  LoadOptions lo;
  lo.threads = cfg.engine.threads;
  model = load_model(cfg.engine.model, lo);
  model_label = model_name(cfg.engine.model);
  bool need_vision = false, need_audio = false;
  for (const TaskConfig& t : cfg.tasks) {
    need_vision |= t.uses_video();
    need_audio |= t.uses_audio();
  }
  if (need_vision || need_audio) {
    mmproj = Gemma4Mmproj::open(cfg.engine.mmproj.empty() ? cfg.engine.model : cfg.engine.mmproj);
    if (need_vision) vision = std::make_unique<Gemma4VisionEmbedder>(*mmproj);
    if (need_audio) audio = std::make_unique<Gemma4AudioEmbedder>(*mmproj);
  }
  SchedulerOptions so;
  so.max_batch = cfg.engine.max_batch;
  so.prefill_chunk = cfg.engine.prefill_chunk;
  so.kv_budget_bytes = static_cast<size_t>(cfg.engine.kv_cache_budget_mb) << 20;
  so.forward.bidirectional_on_full_layers = cfg.engine.llama_bidirectional;
  for (const StreamConfig& sc : cfg.streams)
    if (sc.queue.overflow == Overflow::DropOldest)
      so.live_queue_limits[sc.name] = static_cast<size_t>(sc.queue.max_pending_requests);
  so.on_forward = [this, &per_forward = metrics.sequences_per_forward(),
                   &forward_seconds = metrics.forward_seconds()](const ForwardInfo& f) {
    per_forward.observe(f.sequences);
    forward_seconds.inc(f.seconds);
    std::lock_guard<std::mutex> lock(summary_mu);
    summary.max_sequences_per_forward =
        std::max(summary.max_sequences_per_forward, static_cast<double>(f.sequences));
  };
  scheduler = std::make_unique<BatchScheduler>(*model.text, *model.tokenizer, so);
}

void Pipeline::Impl::make_sinks() {
  const OutputsConfig& o = cfg.outputs;
  if (o.zeromq.enabled) {
    nodes::ZmqPublisherOptions z;
    z.endpoint = o.zeromq.endpoint;
    z.bind = o.zeromq.bind;
    z.sndhwm = o.zeromq.sndhwm;
    z.topic = o.zeromq.topic;
    z.partials = o.zeromq.partials;
    sinks.push_back(std::make_unique<nodes::ZmqPublisher>(z, &registry));
  }
  if (o.jsonl.enabled) {
    nodes::JsonlSinkOptions j;
    j.path = o.jsonl.path;
    j.partials = o.jsonl.partials;
    sinks.push_back(std::make_unique<nodes::JsonlSink>(j, &registry));
  }
  if (o.stdout_sink.enabled) {
    nodes::StdoutSinkOptions s;
    s.json = o.stdout_sink.format == StdoutFormat::Json;
    s.partials = o.stdout_sink.partials;
    sinks.push_back(std::make_unique<nodes::StdoutSink>(s, &registry));
  }
  if (cfg.metrics.http_enabled)
    metrics_server = std::make_unique<nodes::MetricsServer>(registry, cfg.metrics.http_host,
                                                            cfg.metrics.http_port);
}

namespace {

// Requests that ended without running to their end, by why (rawflow_dropped_total).
void count_unfinished(StreamMetrics& m, const GenerationResult& r) {
  const bool never_ran = r.prefill_ms == 0 && r.generated_tokens == 0;
  if (r.status == GenerationStatus::Dropped) m.requests_dropped_queue_full.inc();
  if (r.status == GenerationStatus::Deadline && never_ran) m.requests_dropped_deadline.inc();
  if (r.status == GenerationStatus::Cancelled) m.requests_dropped_shutdown.inc();
}

}  // namespace

// The graph, in data-path order. Every node is serial: per-stream order is kept end to end.
void Pipeline::Impl::build_graph() {
  outputs = std::make_unique<flow::function_node<ResultEvent, flow::continue_msg>>(
      g, flow::serial, [this](const ResultEvent& e) {
        for (auto& s : sinks) s->publish(e);
        return flow::continue_msg{};
      });
  projection = std::make_unique<flow::function_node<MediaRequest, flow::continue_msg>>(
      g, flow::serial, [this](MediaRequest r) {
        on_request(r);
        return flow::continue_msg{};
      });
  windows = std::make_unique<flow::function_node<SourceUnit, flow::continue_msg>>(
      g, flow::serial, [this](const SourceUnit& u) {
        on_source_unit(u);
        return flow::continue_msg{};
      });
}

void Pipeline::Impl::on_source_unit(const SourceUnit& u) {
  StreamState& s = *streams[u.stream];
  s.metrics.queue_windows.add(-1);
  StreamWindows& w = *s.windows;
  if (auto* v = std::get_if<VideoUnit>(&u.body)) {
    w.on_video(v->image, v->t);
  } else if (auto* a = std::get_if<AudioUnit>(&u.body)) {
    w.on_audio(a->samples);
  } else if (auto* gap = std::get_if<GapUnit>(&u.body)) {
    s.metrics.gaps.inc();
    s.metrics.gap_seconds.inc(gap->seconds);
    ResultEvent e = event(ResultEvent::Kind::Gap, u.stream, "");
    e.media_start_s = w.timeline_time();
    e.media_start_utc = media_utc(u.stream, e.media_start_s);
    w.on_gap(gap->seconds);
    e.media_end_s = w.timeline_time();
    e.text = gap->why;
    outputs->try_put(e);
    std::lock_guard<std::mutex> lock(summary_mu);
    ++summary.gaps;
  } else if (auto* err = std::get_if<ErrorUnit>(&u.body)) {
    ResultEvent e = event(ResultEvent::Kind::Error, u.stream, "");
    e.error = err->message;
    outputs->try_put(e);
    std::lock_guard<std::mutex> lock(summary_mu);
    ++summary.errors;
  } else {
    w.on_end();
  }
  publish_window_counts(s);
  emit_requests(u.stream);
  if (std::holds_alternative<EndUnit>(u.body)) {
    std::lock_guard<std::mutex> lock(s.mu);
    s.ended = true;
    s.cv.notify_all();
  }
}

// The windows count frames (in, and used once each); the metrics get what changed since the last
// unit.
void Pipeline::Impl::publish_window_counts(StreamState& s) {
  const WindowStats& now = s.windows->stats();
  WindowStats& was = s.published;
  const auto add = [](Counter& c, int64_t from, int64_t to) {
    if (to != from) c.inc(static_cast<double>(to - from));
  };
  add(s.metrics.video_frames_in, was.video_frames_in, now.video_frames_in);
  add(s.metrics.video_frames_used, was.video_frames_used, now.video_frames_used);
  add(s.metrics.audio_frames_in, was.audio_frames_in, now.audio_frames_in);
  add(s.metrics.audio_frames_used, was.audio_frames_used, now.audio_frames_used);
  was = now;
}

void Pipeline::Impl::emit_requests(size_t stream) {
  StreamState& s = *streams[stream];
  std::vector<MediaRequest> reqs = s.windows->take();
  if (reqs.empty()) return;
  s.metrics.queue_projection.add(static_cast<double>(reqs.size()));
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.in_flight += static_cast<int64_t>(reqs.size());
    s.metrics.queue_requests.set(static_cast<double>(s.in_flight));
  }
  {
    std::lock_guard<std::mutex> lock(summary_mu);
    summary.requests += static_cast<int64_t>(reqs.size());
  }
  for (MediaRequest& r : reqs) {
    expect_final(stream, r.task, r.id);
    projection->try_put(std::move(r));
  }
}

// Embeds the request's media, builds its prompt and hands it to the scheduler; the scheduler's
// callbacks (on its own thread) feed the outputs node.
void Pipeline::Impl::on_request(MediaRequest& r) {
  const TaskConfig& task = cfg.tasks[r.task];
  const size_t stream = r.stream;
  const std::string stream_name = cfg.streams[stream].name;
  StreamMetrics& stream_metrics = streams[stream]->metrics;
  stream_metrics.queue_projection.add(-1);
  const TaskMetrics& task_metrics = streams[stream]->task_metrics.at(r.task);
  const int64_t H = model.text->config().hidden;
  const double start_s = r.start_s, end_s = r.end_s;
  const std::string start_utc = media_utc(stream, start_s);
  const auto created = r.created;
  try {
    std::vector<ChatPart> parts;
    std::vector<MediaEmbedding> media_rows;
    const bool video = r.frames.size() > 1;
    for (size_t i = 0; i < r.frames.size(); ++i) {
      MediaEmbedding m = media::embed_image(*vision, r.frames[i], task.image_budget);
      if (video) {
        m.kind = MediaEmbedding::Kind::VideoFrame;
        m.timestamp = media::mm_ss(r.frame_times[i]);
      }
      media_rows.push_back(std::move(m));
    }
    if (!r.frames.empty())
      parts.push_back({video ? ChatPart::Kind::Video : ChatPart::Kind::Image, {}});
    parts.push_back({ChatPart::Kind::Text, task.prompt});
    if (!r.audio.empty() && audio) {
      media::AudioClip clip;
      clip.samples = std::move(r.audio);
      media_rows.push_back(media::embed_audio(*audio, clip));
      parts.push_back({ChatPart::Kind::Audio, {}});
    }
    GenerationRequest g;
    g.id = r.id;
    g.stream = stream_name;
    g.task = task.name;
    g.prompt = build_multimodal_prompt(*model.tokenizer, {{"user", parts}}, media_rows, H);
    g.sampling = task.sampling;
    g.max_new_tokens = task.max_new_tokens;
    g.created = created;
    if (task.deadline_s > 0)
      g.deadline = created + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(task.deadline_s));
    g.live = r.droppable;
    g.on_partial = [this, stream, start_s, end_s, start_utc, task_name = task.name,
                    id = r.id](const TokenDelta& d) {
      ResultEvent e = event(ResultEvent::Kind::Partial, stream, task_name);
      e.request_id = id;
      e.text = d.text;
      e.media_start_s = start_s;
      e.media_start_utc = start_utc;
      e.media_end_s = end_s;
      e.generated_tokens = d.generated_tokens;
      outputs->try_put(e);
    };
    g.on_done = [this, stream, start_s, end_s, start_utc, task_name = task.name, created,
                 &stream_metrics, &task_metrics, task_index = r.task](const GenerationResult& res) {
      ResultEvent e =
          event(res.ok() ? ResultEvent::Kind::Final : ResultEvent::Kind::Error, stream, task_name);
      e.request_id = res.id;
      e.text = res.text;
      e.media_start_s = start_s;
      e.media_start_utc = start_utc;
      e.media_end_s = end_s;
      e.prompt_tokens = res.prompt_tokens;
      e.generated_tokens = res.generated_tokens;
      e.queue_ms = res.queue_ms;
      e.prefill_ms = res.prefill_ms;
      e.decode_ms = res.decode_ms;
      if (!res.ok())
        e.error = std::string(to_string(res.status)) + (res.error.empty() ? "" : ": " + res.error);
      count_unfinished(stream_metrics, res);
      task_metrics.request_latency.observe(
          std::chrono::duration<double>(Clock::now() - created).count());
      task_metrics.prompt_tokens.inc(static_cast<double>(res.prompt_tokens));
      task_metrics.generated_tokens.inc(static_cast<double>(res.generated_tokens));
      release_final(stream, task_index, std::move(e));
      {
        std::lock_guard<std::mutex> lock(summary_mu);
        ++(res.ok() ? summary.finals : summary.errors);
      }
      request_done(stream);
    };
    scheduler->submit(std::move(g));
  } catch (const std::exception& ex) {
    ResultEvent e = event(ResultEvent::Kind::Error, stream, task.name);
    e.request_id = r.id;
    e.media_start_s = start_s;
    e.media_start_utc = start_utc;
    e.media_end_s = end_s;
    e.error = ex.what();
    release_final(stream, r.task, std::move(e));
    {
      std::lock_guard<std::mutex> lock(summary_mu);
      ++summary.errors;
    }
    request_done(stream);
  }
}

// Every stream's series is registered here, before any unit flows: /metrics shows real zeros from
// the start, and the hot paths hold handles.
void Pipeline::Impl::make_streams() {
  for (size_t i = 0; i < cfg.streams.size(); ++i) {
    const StreamConfig& sc = cfg.streams[i];
    auto st = std::make_unique<StreamState>(metrics.for_stream(sc.name),
                                            std::make_unique<StreamWindows>(cfg, i));
    for (const std::string& name : sc.tasks)
      if (const TaskConfig* t = cfg.find_task(name))
        st->task_metrics.emplace(static_cast<size_t>(t - cfg.tasks.data()),
                                 metrics.for_task(sc.name, t->name));
    streams.push_back(std::move(st));
  }
}

void Pipeline::Impl::start_sources() {
  for (size_t i = 0; i < cfg.streams.size(); ++i) {
    const StreamConfig& sc = cfg.streams[i];
    StreamState* st = streams[i].get();
    nodes::SourceEvents ev;
    ev.video = [this, i](media::RgbImage&& img, double t) {
      put_unit(SourceUnit{i, VideoUnit{std::move(img), t}});
    };
    ev.audio = [this, i](std::vector<float>&& s, double t) {
      put_unit(SourceUnit{i, AudioUnit{std::move(s), t}});
    };
    ev.gap = [this, i](double s, const std::string& why) {
      put_unit(SourceUnit{i, GapUnit{s, why}});
    };
    // A gap is not always a reconnect (a short stall is a jump of the timestamps).
    ev.reconnect = [&reconnects = st->metrics.reconnects] { reconnects.inc(); };
    ev.up = [&up = st->metrics.source_up](bool is_up) { up.set(is_up ? 1 : 0); };
    ev.error = [this, i](const std::string& m) { put_unit(SourceUnit{i, ErrorUnit{m}}); };
    ev.decode_errors = [this, i, &dropped = st->metrics.packets_dropped_decode_error](
                           int64_t n, const std::string& last) {
      dropped.inc(static_cast<double>(n));
      put_unit(
          SourceUnit{i, ErrorUnit{"stream `" + cfg.streams[i].name + "`: " + std::to_string(n) +
                                  " undecodable packet(s) skipped (" + last + ")"}});
    };
    ev.end = [this, i](bool ok) { put_unit(SourceUnit{i, EndUnit{ok}}); };
    // File streams wait here while their requests fill the queue (backpressure reaches the
    // demuxer); live streams never wait, the scheduler drops their oldest work instead.
    if (sc.queue.overflow == Overflow::Block) {
      const int64_t cap = sc.queue.max_pending_requests;
      ev.wait_for_room = [st, cap] {
        std::unique_lock<std::mutex> lock(st->mu);
        st->cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return st->in_flight < cap; });
      };
    }
    // Decode only what this stream's tasks use: a camera's 25 fps are not converted to RGB for
    // transcription alone.
    StreamConfig input = sc;
    bool video = false, audio_used = false;
    for (const std::string& t : sc.tasks)
      if (const TaskConfig* tc = cfg.find_task(t)) {
        video |= tc->uses_video();
        audio_used |= tc->uses_audio();
      }
    input.video.enabled = sc.video.enabled && video;
    input.audio.enabled = sc.audio.enabled && audio_used;
    st->source = std::make_unique<nodes::Source>(input, sc.video.sample_fps, std::move(ev));
  }
  for (auto& s : streams) s->source->start();
}

Pipeline::Pipeline(PipelineConfig cfg) : impl_(std::make_unique<Impl>(std::move(cfg))) {
  impl_->load_engine();
  impl_->make_sinks();
  impl_->build_graph();
  impl_->make_streams();
}

Pipeline::~Pipeline() = default;

RunSummary Pipeline::run(const std::atomic<bool>& stop) {
  Impl& im = *impl_;
  std::jthread engine([&im](std::stop_token st) { im.scheduler->run(st); });
  im.g.reserve_wait();  // external threads (sources, scheduler) feed the graph
  im.start_sources();
  const auto seconds = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  auto next_stats = Clock::now() + seconds(im.cfg.metrics.interval_s);
  const double interval_s = im.cfg.metrics.interval_s;
  TokenRate rate(im.metrics.decode_tokens_per_second(), interval_s > 0 ? interval_s : 10.0);
  while (!stop && !im.all_done()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    rate.update(im.scheduler->stats().tokens_generated);
    if (im.cfg.metrics.interval_s > 0 && Clock::now() >= next_stats) {
      next_stats = Clock::now() + seconds(im.cfg.metrics.interval_s);
      im.publish_stats();
    }
  }
  // Shut down in data-path order: no more input, the graph's queued units become requests,
  // the engine finishes (or, on a stop, cancels) them, their results reach the sinks.
  for (auto& s : im.streams) s->source->stop();
  im.g.release_wait();
  im.g.wait_for_all();
  engine.request_stop();
  engine.join();
  if (stop) im.scheduler->cancel_all();  // on its thread's behalf: step() no longer runs
  // Each stream's last stats: its totals, for a run that ended between intervals.
  rate.update(im.scheduler->stats().tokens_generated, /*last=*/true);
  if (im.cfg.metrics.interval_s > 0) im.publish_stats();
  im.g.wait_for_all();
  for (auto& s : im.sinks) s->close();
  if (im.metrics_server) im.metrics_server->stop();
  RunSummary out;
  {
    std::lock_guard<std::mutex> lock(im.summary_mu);
    out = im.summary;
  }
  // From the exported counters, not the windows' own: the run's summary checks what /metrics
  // reports.
  const auto total = [](const Counter& c) { return static_cast<int64_t>(c.value()); };
  for (auto& s : im.streams) {
    out.audio_frames_in += total(s->metrics.audio_frames_in);
    out.audio_frames_used += total(s->metrics.audio_frames_used);
    out.video_frames_in += total(s->metrics.video_frames_in);
    out.video_frames_used += total(s->metrics.video_frames_used);
  }
  return out;
}

}  // namespace rawflow::pipeline
