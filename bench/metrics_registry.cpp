// The metrics registry's costs that matter to rawflow, for comparing two implementations of
// pipeline/metrics.* and nodes/metrics_server.* built from the same source
// (bench/metrics_registry.sh): the hot-path calls the graph makes per unit, request and forward
// (Counter::inc, Gauge::set, Histogram::observe, on one thread and on two at once), and the
// costs of a stats event and of a /metrics scrape with the series of four streams × two tasks.
//
// Prints one line per measurement: name, median over the repetitions, unit.
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "nodes/metrics_server.h"
#include "pipeline/metrics.h"

using namespace rawflow;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Nanoseconds per call of `body(i)` over `n` calls, median of `reps` runs.
template <class F>
double ns_per_call(int reps, long n, F&& body) {
  std::vector<double> runs;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    for (long i = 0; i < n; ++i) body(i);
    runs.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / double(n));
  }
  return median(runs);
}

// The same, with `threads` threads calling at once (the decoder and a framing node touching one
// series): wall time per call of one thread.
template <class F>
double ns_per_call_threads(int reps, long n, int threads, F&& body) {
  std::vector<double> runs;
  for (int r = 0; r < reps; ++r) {
    std::vector<std::thread> ts;
    const auto t0 = Clock::now();
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&] {
        for (long i = 0; i < n; ++i) body(i);
      });
    for (auto& t : ts) t.join();
    runs.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / double(n));
  }
  return median(runs);
}

template <class F>
double us_per_run(int reps, F&& body) {
  std::vector<double> runs;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    body();
    runs.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  return median(runs);
}

}  // namespace

int main() {
  pipeline::MetricsRegistry registry;
  pipeline::PipelineMetrics m(registry);
  // What a four-stream run with two tasks per stream and three sinks registers.
  std::vector<pipeline::StreamMetrics> streams;
  std::vector<pipeline::TaskMetrics> tasks;
  for (int s = 0; s < 4; ++s) {
    const std::string name = "s" + std::to_string(s);
    streams.push_back(m.for_stream(name));
    for (const char* task : {"transcribe", "describe"}) tasks.push_back(m.for_task(name, task));
  }
  auto& batch = m.sequences_per_forward();
  auto& forward_s = m.forward_seconds();
  m.decode_tokens_per_second();
  for (const char* sink : {"zmq", "jsonl", "stdout"}) {
    m.sink_published(sink);
    m.sink_dropped(sink, "queue_full");
    m.sink_queue_depth(sink);
  }

  constexpr int kReps = 7;
  constexpr long kCalls = 2'000'000;
  pipeline::Counter& frames = streams[0].video_frames_in;
  pipeline::Gauge& depth = streams[0].queue_requests;
  pipeline::Histogram& latency = tasks[0].request_latency;
  std::printf("counter_inc            %8.2f ns\n",
              ns_per_call(kReps, kCalls, [&](long) { frames.inc(); }));
  std::printf("counter_inc_seconds    %8.2f ns\n",
              ns_per_call(kReps, kCalls, [&](long i) { forward_s.inc(1e-3 * double(i & 7)); }));
  std::printf("gauge_set              %8.2f ns\n",
              ns_per_call(kReps, kCalls, [&](long i) { depth.set(double(i & 15)); }));
  std::printf("histogram_observe      %8.2f ns\n", ns_per_call(kReps, kCalls, [&](long i) {
                latency.observe(0.05 * double(i & 1023));
              }));
  std::printf("batch_observe          %8.2f ns\n",
              ns_per_call(kReps, kCalls, [&](long i) { batch.observe(double(1 + (i & 3))); }));
  std::printf("counter_inc_2threads   %8.2f ns\n",
              ns_per_call_threads(kReps, kCalls / 2, 2, [&](long) { frames.inc(); }));
  std::printf("histogram_observe_2thr %8.2f ns\n",
              ns_per_call_threads(kReps, kCalls / 2, 2,
                                  [&](long i) { latency.observe(0.05 * double(i & 1023)); }));

  // A stats event per stream, and the engine's, as the graph renders them every interval.
  std::printf("render_json_stream     %8.2f us\n",
              us_per_run(101, [&] { (void)registry.render_json("s1"); }));
  std::printf("render_json_unstreamed %8.2f us\n",
              us_per_run(101, [&] { (void)registry.render_json_unstreamed(); }));
  std::printf("render_prometheus      %8.2f us\n",
              us_per_run(101, [&] { (void)registry.render_prometheus(); }));
  std::printf("exposition_bytes       %8zu B\n", registry.render_prometheus().size());

  // GET /metrics over loopback, a new connection per scrape as Prometheus makes after an idle
  // interval.
  nodes::MetricsServer server(registry, "127.0.0.1", 0);
  std::printf("scrape_http            %8.2f us\n", us_per_run(101, [&] {
                httplib::Client client("127.0.0.1", server.port());
                auto res = client.Get("/metrics");
                if (!res || res->status != 200) std::abort();
              }));
  return 0;
}
