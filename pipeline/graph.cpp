#include "pipeline/graph.h"

#include <tbb/flow_graph.h>

#include <chrono>
#include <filesystem>
#include <latch>
#include <mutex>
#include <thread>
#include <tuple>

#include "model/gemma4/gemma4_audio.h"
#include "model/gemma4/gemma4_mmproj.h"
#include "model/gemma4/gemma4_vision.h"
#include "model/model_loader.h"
#include "nodes/decoder.h"
#include "nodes/framing.h"
#include "nodes/jsonl_sink.h"
#include "nodes/metrics_server.h"
#include "nodes/projection.h"
#include "nodes/result_order.h"
#include "nodes/source.h"
#include "nodes/stdout_sink.h"
#include "nodes/zmq_publisher.h"
#include "pipeline/batch_scheduler.h"
#include "pipeline/messages.h"
#include "pipeline/metrics.h"
#include "pipeline/overlap_meter.h"
#include "pipeline/run_tally.h"
#include "pipeline/stream_handles.h"

namespace rawflow::pipeline {
namespace {

using Clock = std::chrono::steady_clock;
namespace flow = tbb::flow;

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
  using SourceGateway = flow::async_node<flow::continue_msg, SourceUnit>;
  using FramingNode = flow::multifunction_node<SourceUnit, std::tuple<FramedWork, ResultEvent>>;
  using ProjectionNode = flow::multifunction_node<FramedWork, std::tuple<DecoderWork, Outcome>>;
  using DecoderNode = flow::async_node<DecoderWork, Outcome>;
  using OrderNode = flow::multifunction_node<Outcome, std::tuple<ResultEvent>>;
  using ResultsNode = flow::broadcast_node<ResultEvent>;
  using SinkNode = flow::function_node<ResultEvent>;

  PipelineConfig cfg;
  MetricsRegistry registry;
  PipelineMetrics metrics{registry};
  RunTally tally;
  OverlapMeter overlap;

  // The engine.
  LoadedModel model;
  std::string model_label;
  std::unique_ptr<Gemma4Mmproj> mmproj;
  std::unique_ptr<Gemma4VisionEmbedder> vision;
  std::unique_ptr<Gemma4AudioEmbedder> audio;

  // The outputs.
  struct NamedSink {
    std::string name;
    std::unique_ptr<nodes::ResultSink> sink;
  };
  std::vector<NamedSink> sinks;
  std::unique_ptr<nodes::MetricsServer> metrics_server;

  // Per stream: its series and ledger.
  std::vector<std::unique_ptr<StreamHandles>> streams;

  // The node bodies (nodes/), then the graph's nodes that run them.
  std::vector<std::unique_ptr<nodes::Framing>> framing_bodies;
  std::unique_ptr<nodes::Projection> projection_body;
  std::unique_ptr<nodes::Decoder> decoder_body;
  std::unique_ptr<nodes::ResultOrder> order_body;

  flow::graph g;
  std::vector<std::unique_ptr<SourceGateway>> source_nodes;
  std::vector<std::unique_ptr<FramingNode>> framing_nodes;
  std::unique_ptr<ProjectionNode> projection;
  std::unique_ptr<DecoderNode> decoder;
  std::unique_ptr<OrderNode> result_order;
  std::unique_ptr<ResultsNode> results;
  std::vector<std::unique_ptr<SinkNode>> sink_nodes;
  GraphMap map;
  std::unique_ptr<std::latch> sources_started;
  size_t initial_sources = 0;  // started by run() itself; the latch counts these
  // Each stream's source, made when its gateway starts.
  std::vector<std::unique_ptr<nodes::Source>> sources;

  // Declared after the nodes: destroyed first, since cancelling its requests calls into them.
  std::unique_ptr<BatchScheduler> scheduler;

  // Sources start in stream order, at most max_active at once (PipelineExtras).
  size_t max_active = 0;
  std::atomic<size_t> next_source{0};
  std::mutex sources_mutex;  // guards `sources` and `stopping` between starts and the stop
  bool stopping = false;

  Impl(PipelineConfig c, PipelineExtras extras)
      : cfg(std::move(c)), max_active(extras.max_active_sources) {
    for (auto& [name, sink] : extras.sinks) sinks.push_back({name, std::move(sink)});
    if (extras.add_metrics) extras.add_metrics(registry);  // before make_sinks() starts /metrics
  }
  // run() shuts down in order; this is for a Pipeline destroyed without that (never run, or a run
  // that threw): no more input, the engine's work cancelled, the graph drained, before any
  // member goes. The engine thread is not running here (run()'s jthread joined on the way out).
  ~Impl() {
    stop_sources();
    if (decoder_body) decoder_body->close();
    if (scheduler) scheduler->cancel_all();
    g.wait_for_all();
  }

  void load_engine();
  void make_sinks();
  void make_streams();
  void make_node_bodies();
  void build_graph();
  void start_source(size_t i, SourceGateway::gateway_type& gateway);
  // Starts the next stream's source, if any is left and no stop came.
  void start_next_source();
  // No source starts from now on; those running stop (each still puts its end unit).
  void stop_sources();

  // Records a node in the map.
  template <typename Node>
  Node& named(Node& node, const std::string& name, const char* kind) {
    map.nodes.push_back({name, kind});
    return node;
  }
  // make_edge, recorded in the map.
  template <typename From, typename To>
  void connect(From& from, To& to, const std::string& from_name, const std::string& to_name) {
    flow::make_edge(from, to);
    map.edges.push_back({from_name, to_name});
  }

  // One stats event per stream, and one (stream "") for the engine's and sinks' series.
  void publish_stats() {
    for (const StreamConfig& s : cfg.streams) {
      ResultEvent e = make_event(ResultEvent::Kind::Stats, s.name, "", model_label);
      e.stats_json = registry.render_json(s.name);
      results->try_put(e);
    }
    ResultEvent e = make_event(ResultEvent::Kind::Stats, "", "", model_label);
    e.stats_json = registry.render_json_unstreamed();
    results->try_put(e);
  }
  bool all_done() const {
    for (const auto& s : streams)
      if (!s->ledger.done()) return false;
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
    const auto end = Clock::now();
    overlap.add(
        OverlapMeter::kForward,
        end - std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(f.seconds)),
        end);
  };
  scheduler = std::make_unique<BatchScheduler>(*model.text, *model.tokenizer, so);
}

void Pipeline::Impl::make_sinks() {
  const OutputsConfig& o = cfg.outputs;
  // The caller's sinks (PipelineExtras) go last, after the configured ones.
  std::vector<NamedSink> extra = std::move(sinks);
  sinks.clear();
  if (o.zeromq.enabled) {
    nodes::ZmqPublisherOptions z;
    z.endpoint = o.zeromq.endpoint;
    z.bind = o.zeromq.bind;
    z.sndhwm = o.zeromq.sndhwm;
    z.topic = o.zeromq.topic;
    z.partials = o.zeromq.partials;
    if (o.zeromq.curve) {
      z.curve_secret_key_file = o.zeromq.curve_secret_key_file;
      z.curve_allowed_clients_file = o.zeromq.curve_allowed_clients_file;
    }
    sinks.push_back({"zeromq", std::make_unique<nodes::ZmqPublisher>(z, &registry)});
  }
  if (o.jsonl.enabled) {
    nodes::JsonlSinkOptions j;
    j.path = o.jsonl.path;
    j.partials = o.jsonl.partials;
    sinks.push_back({"jsonl", std::make_unique<nodes::JsonlSink>(j, &registry)});
  }
  if (o.stdout_sink.enabled) {
    nodes::StdoutSinkOptions s;
    s.json = o.stdout_sink.format == StdoutFormat::Json;
    s.partials = o.stdout_sink.partials;
    sinks.push_back({"stdout", std::make_unique<nodes::StdoutSink>(s, &registry)});
  }
  for (NamedSink& s : extra) sinks.push_back(std::move(s));
  if (cfg.metrics.http_enabled)
    metrics_server = std::make_unique<nodes::MetricsServer>(registry, cfg.metrics.http_host,
                                                            cfg.metrics.http_port);
}

// Every stream's series is registered here, before any unit flows: /metrics shows real zeros from
// the start, and the hot paths hold handles.
void Pipeline::Impl::make_streams() {
  for (const StreamConfig& sc : cfg.streams) {
    auto st = std::make_unique<StreamHandles>(metrics.for_stream(sc.name));
    for (const std::string& name : sc.tasks)
      if (const TaskConfig* t = cfg.find_task(name))
        st->tasks.emplace(static_cast<size_t>(t - cfg.tasks.data()),
                          metrics.for_task(sc.name, t->name));
    streams.push_back(std::move(st));
  }
  sources.resize(cfg.streams.size());
}

void Pipeline::Impl::make_node_bodies() {
  std::vector<StreamHandles*> handles;
  for (auto& s : streams) handles.push_back(s.get());
  for (size_t i = 0; i < cfg.streams.size(); ++i)
    framing_bodies.push_back(
        std::make_unique<nodes::Framing>(cfg, i, *streams[i], tally, model_label));
  projection_body = std::make_unique<nodes::Projection>(
      cfg, *model.tokenizer, model.text->config().hidden,
      nodes::Projection::Embedders{vision.get(), audio.get()}, handles, model_label, &overlap);
  decoder_body = std::make_unique<nodes::Decoder>(cfg, *scheduler, handles, model_label);
  order_body = std::make_unique<nodes::ResultOrder>(handles, tally);
}

// The graph, in data-path order: first the nodes, then every edge.
void Pipeline::Impl::build_graph() {
  for (size_t i = 0; i < cfg.streams.size(); ++i) {
    const std::string& name = cfg.streams[i].name;
    source_nodes.push_back(std::make_unique<SourceGateway>(
        g, flow::unlimited,
        [this, i](const flow::continue_msg&, SourceGateway::gateway_type& gateway) {
          start_source(i, gateway);
        }));
    named(*source_nodes.back(), "source[" + name + "]", "async_node");
    framing_nodes.push_back(std::make_unique<FramingNode>(
        g, flow::serial,
        [&body = *framing_bodies[i]](const SourceUnit& u, FramingNode::output_ports_type& out) {
          nodes::FramingOutput o = body(u);
          for (EarlyPrefill& e : o.early)
            std::visit([&](auto& x) { std::get<0>(out).try_put(FramedWork(std::move(x))); }, e);
          for (MediaRequest& r : o.requests) std::get<0>(out).try_put(std::move(r));
          for (ResultEvent& e : o.events) std::get<1>(out).try_put(std::move(e));
        }));
    named(*framing_nodes.back(), "framing[" + name + "]", "multifunction_node");
  }
  projection = std::make_unique<ProjectionNode>(
      g, flow::serial,
      [&body = *projection_body](FramedWork w, ProjectionNode::output_ports_type& out) {
        nodes::ProjectionOutput o = body(std::move(w));
        if (o.error) std::get<1>(out).try_put(std::move(*o.error));
        if (o.work) std::get<0>(out).try_put(std::move(*o.work));
      });
  named(*projection, "projection", "multifunction_node");
  // The gateway holds the graph open from submission until the request's final is put. Serial:
  // the body only hands work to the engine, and a window's pieces must reach it in order.
  decoder = std::make_unique<DecoderNode>(
      g, flow::serial,
      [&body = *decoder_body](const DecoderWork& work, DecoderNode::gateway_type& gateway) {
        gateway.reserve_wait();
        body(
            work, [&gateway](Outcome o) { gateway.try_put(std::move(o)); },
            [&gateway] { gateway.release_wait(); });
      });
  named(*decoder, "decoder", "async_node");
  result_order = std::make_unique<OrderNode>(
      g, flow::serial, [&body = *order_body](Outcome o, OrderNode::output_ports_type& out) {
        for (ResultEvent& e : body(std::move(o))) std::get<0>(out).try_put(std::move(e));
        for (ResultEvent& e : body.settle()) std::get<0>(out).try_put(std::move(e));
      });
  named(*result_order, "result_order", "multifunction_node");
  results = std::make_unique<ResultsNode>(g);
  named(*results, "results", "broadcast_node");
  for (NamedSink& s : sinks) {
    sink_nodes.push_back(std::make_unique<SinkNode>(
        g, flow::serial, [&sink = *s.sink](const ResultEvent& e) { sink.publish(e); }));
    named(*sink_nodes.back(), "sink[" + s.name + "]", "function_node");
  }

  for (size_t i = 0; i < cfg.streams.size(); ++i) {
    const std::string& name = cfg.streams[i].name;
    connect(*source_nodes[i], *framing_nodes[i], "source[" + name + "]", "framing[" + name + "]");
    connect(flow::output_port<0>(*framing_nodes[i]), *projection, "framing[" + name + "].requests",
            "projection");
    connect(flow::output_port<1>(*framing_nodes[i]), *results, "framing[" + name + "].events",
            "results");
  }
  connect(flow::output_port<0>(*projection), *decoder, "projection.jobs", "decoder");
  connect(flow::output_port<1>(*projection), *result_order, "projection.errors", "result_order");
  connect(*decoder, *result_order, "decoder", "result_order");
  connect(flow::output_port<0>(*result_order), *results, "result_order", "results");
  for (size_t k = 0; k < sinks.size(); ++k)
    connect(*results, *sink_nodes[k], "results", "sink[" + sinks[k].name + "]");
}

// The body of stream i's gateway: its source thread puts units through `gateway` from now on.
// The gateway holds the graph open until the source's end event, its last.
void Pipeline::Impl::start_source(size_t i, SourceGateway::gateway_type& gateway) {
  gateway.reserve_wait();
  const StreamConfig& sc = cfg.streams[i];
  StreamHandles& st = *streams[i];
  const auto put = [&gateway, &queued = st.metrics.queue_windows](SourceUnit u) {
    queued.add(1);
    gateway.try_put(u);
  };
  nodes::SourceEvents ev;
  ev.video = [put, i](media::RgbImage&& img, double t) {
    put(SourceUnit{i, VideoUnit{std::move(img), t}});
  };
  ev.audio = [put, i](std::vector<float>&& s, double t) {
    put(SourceUnit{i, AudioUnit{std::move(s), t}});
  };
  ev.gap = [put, i](double s, const std::string& why) { put(SourceUnit{i, GapUnit{s, why}}); };
  // A gap is not always a reconnect (a short stall is a jump of the timestamps).
  ev.reconnect = [&reconnects = st.metrics.reconnects] { reconnects.inc(); };
  // A live source that stops delivering has its open windows closed now (LostUnit), not when it
  // comes back, which may be never.
  ev.up = [&up = st.metrics.source_up, put, i, live = sc.kind == StreamKind::Live](bool is_up) {
    up.set(is_up ? 1 : 0);
    if (!is_up && live) put(SourceUnit{i, LostUnit{}});
  };
  ev.error = [put, i](const std::string& m) { put(SourceUnit{i, ErrorUnit{m}}); };
  ev.decode_errors = [put, i, name = sc.name, &dropped = st.metrics.packets_dropped_decode_error](
                         int64_t n, const std::string& last) {
    dropped.inc(static_cast<double>(n));
    put(SourceUnit{i, ErrorUnit{"stream `" + name + "`: " + std::to_string(n) +
                                " undecodable packet(s) skipped (" + last + ")"}});
  };
  ev.end = [this, put, i, &gateway](bool ok) {
    put(SourceUnit{i, EndUnit{ok}});
    gateway.release_wait();
    start_next_source();
  };
  // File streams wait here while their requests fill the queue (backpressure reaches the
  // demuxer); live streams never wait, their oldest work is dropped instead.
  if (sc.queue.overflow == Overflow::Block)
    ev.wait_for_room = [&ledger = st.ledger, cap = sc.queue.max_pending_requests] {
      ledger.wait_for_room(cap, std::chrono::milliseconds(200));
    };
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
  std::string failure;
  {
    std::lock_guard lock(sources_mutex);
    if (stopping) {  // started by a source's end as the stop came: it never runs, reports nothing
      gateway.release_wait();
      if (i < initial_sources) sources_started->count_down();
      return;
    }
    try {
      sources[i] = std::make_unique<nodes::Source>(input, sc.video.sample_fps, std::move(ev));
      sources[i]->start();
    } catch (const std::exception& e) {  // the stream ends here; the others run on
      sources[i].reset();
      failure = e.what();
    }
  }
  if (!failure.empty()) {
    put(SourceUnit{i, ErrorUnit{"stream `" + sc.name + "`: " + failure}});
    put(SourceUnit{i, EndUnit{false}});
    gateway.release_wait();
    start_next_source();
  }
  if (i < initial_sources) sources_started->count_down();
}

void Pipeline::Impl::start_next_source() {
  const size_t i = next_source.fetch_add(1);
  if (i >= source_nodes.size()) return;
  {
    std::lock_guard lock(sources_mutex);
    if (stopping) return;
  }
  source_nodes[i]->try_put(flow::continue_msg{});
}

void Pipeline::Impl::stop_sources() {
  std::vector<nodes::Source*> running;
  {
    std::lock_guard lock(sources_mutex);
    stopping = true;
    for (auto& s : sources)
      if (s) running.push_back(s.get());
  }
  // Not under the lock: a stopping source's end event calls start_next_source, which takes it.
  for (nodes::Source* s : running) s->stop();
}

Pipeline::Pipeline(PipelineConfig cfg, PipelineExtras extras)
    : impl_(std::make_unique<Impl>(std::move(cfg), std::move(extras))) {
  impl_->load_engine();
  impl_->make_sinks();
  impl_->make_streams();
  impl_->make_node_bodies();
  impl_->build_graph();
}

Pipeline::~Pipeline() = default;

const GraphMap& Pipeline::graph_map() const { return impl_->map; }

RunSummary Pipeline::run(const std::atomic<bool>& stop, const std::atomic<bool>* hurry) {
  Impl& im = *impl_;
  std::jthread engine([&im](std::stop_token st) { im.scheduler->run(st); });
  // The first sources (all, or max_active) are running before a stop can be seen, so that each
  // one is stopped below; later ones start as earlier ones end, and none after the stop.
  const size_t n = im.source_nodes.size();
  im.initial_sources = im.max_active > 0 ? std::min(im.max_active, n) : n;
  im.sources_started =
      std::make_unique<std::latch>(static_cast<std::ptrdiff_t>(im.initial_sources));
  im.next_source = im.initial_sources;
  for (size_t i = 0; i < im.initial_sources; ++i) im.source_nodes[i]->try_put(flow::continue_msg{});
  im.sources_started->wait();
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
  // Shut down in data-path order: no more input (each source's end event is its last unit, and
  // closes its open windows into requests). On a stop the work in flight may finish within the
  // grace period; then the engine takes nothing new and cancels what it has not finished, and the
  // graph drains to the sinks. After a normal end nothing is left in flight.
  const bool stopped = stop;
  im.stop_sources();
  const auto grace_ends = Clock::now() + seconds(im.cfg.engine.shutdown_grace_s);
  while (stopped && !im.all_done() && Clock::now() < grace_ends && !(hurry && *hurry))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto shutdown_drops = [&im] {
    double n = 0;
    for (auto& s : im.streams) n += s->metrics.requests_dropped_shutdown.value();
    return static_cast<int64_t>(n);
  };
  const int64_t dropped_before = shutdown_drops();
  if (stopped && !im.all_done()) {
    im.decoder_body->close();
    engine.request_stop();
    engine.join();
    im.scheduler->cancel_all();  // on its thread's behalf: step() no longer runs
  }
  im.g.wait_for_all();
  engine.request_stop();
  if (engine.joinable()) engine.join();
  // Each stream's last stats: its totals, for a run that ended between intervals.
  rate.update(im.scheduler->stats().tokens_generated, /*last=*/true);
  if (im.cfg.metrics.interval_s > 0) im.publish_stats();
  im.g.wait_for_all();
  for (auto& s : im.sinks) s.sink->close();
  if (im.metrics_server) im.metrics_server->stop();

  RunSummary out;
  out.stopped = stopped;
  out.cancelled_at_stop = shutdown_drops() - dropped_before;
  out.requests = im.tally.requests;
  out.finals = im.tally.finals;
  out.errors = im.tally.errors;
  out.gaps = im.tally.gaps;
  const SchedulerStats engine_stats = im.scheduler->stats();
  out.forwards = static_cast<int64_t>(engine_stats.forwards);
  out.sequences_in_forwards = static_cast<int64_t>(engine_stats.sequences_in_forwards);
  out.max_sequences_per_forward = static_cast<double>(engine_stats.max_sequences_per_forward);
  const OverlapMeter::Totals busy = im.overlap.totals();
  out.projection_s = busy.projection_s;
  out.forward_s = busy.forward_s;
  out.overlap_s = busy.both_s;
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
