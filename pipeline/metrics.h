#pragma once
// Counters, gauges and histograms with labels, kept by prometheus-cpp (its core library) and
// rendered as Prometheus text (exposition format 0.0.4) for /metrics and as JSON for `stats`
// events. docs/metrics.md lists every metric rawflow exports (PipelineMetrics below).
//
// Hot paths hold a handle (Counter&, Gauge&, Histogram&) obtained once at set-up: an increment
// goes straight to the prometheus-cpp series, with no lookup and no registry lock. Registration
// and rendering take the registry's lock. Handles stay valid as long as the registry.
//
// The handles are thin wrappers rather than prometheus-cpp's own types so that the graph and the
// nodes keep one small vocabulary (inc/set/add/observe/value) that does not name the library.
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace rawflow::pipeline {

// Label name → value pairs. Order does not matter: series are identified by the sorted set.
using Labels = std::vector<std::pair<std::string, std::string>>;

// Only ever goes up (Prometheus counter); negative amounts are ignored. Holds a double so
// seconds can be counted too.
class Counter {
 public:
  explicit Counter(prometheus::Counter& series) : series_(series) {}
  void inc(double amount = 1.0) noexcept { series_.Increment(amount); }
  double value() const noexcept { return series_.Value(); }

 private:
  prometheus::Counter& series_;
};

// A value that goes up and down (queue depth, rate).
class Gauge {
 public:
  explicit Gauge(prometheus::Gauge& series) : series_(series) {}
  void set(double v) noexcept { series_.Set(v); }
  void add(double delta) noexcept { series_.Increment(delta); }
  double value() const noexcept { return series_.Value(); }

 private:
  prometheus::Gauge& series_;
};

// Observations counted in fixed buckets chosen at registration (upper bounds, inclusive, strictly
// increasing; the +Inf bucket is implicit). NaN observations are ignored.
class Histogram {
 public:
  Histogram(prometheus::Histogram& series, std::vector<double> upper_bounds)
      : series_(series), bounds_(std::move(upper_bounds)) {}
  void observe(double v) noexcept {
    if (!std::isnan(v)) series_.Observe(v);
  }

  struct Snapshot {
    std::vector<double> upper_bounds;  // without +Inf
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  // One consistent reading (prometheus-cpp updates a histogram under its own lock).
  Snapshot snapshot() const;
  const std::vector<double>& upper_bounds() const { return bounds_; }

 private:
  prometheus::Histogram& series_;
  std::vector<double> bounds_;
};

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Registers the series (name, labels) on first call; later calls return the same handle.
  // Throws std::invalid_argument for an invalid metric or label name, a label given twice, a name
  // already registered with another type, help text or (histograms) other buckets.
  Counter& counter(std::string_view name, std::string_view help, Labels labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, Labels labels = {});
  Histogram& histogram(std::string_view name, std::string_view help,
                       const std::vector<double>& upper_bounds, Labels labels = {});

  // Prometheus text exposition format 0.0.4 (prometheus-cpp's TextSerializer): per family
  // `# HELP`, `# TYPE`, then its series; families grouped by type (counters, gauges,
  // histograms), each in registration order. Exactly what GET /metrics serves.
  std::string render_prometheus() const;
  // {"<name>": [{"labels": {...}, "value": v}, ...], ...} in registration order; histograms
  // carry count, sum and buckets [[le, cumulative], ...] instead of value. With `stream`
  // non-empty: only the series whose `stream` label equals it.
  std::string render_json(std::string_view stream = {}) const;
  // The same, for the series that have no `stream` label: the engine's and the sinks'.
  std::string render_json_unstreamed() const;

 private:
  enum class Type { Counter, Gauge, Histogram };
  struct Series;
  struct Family;
  static const std::string* stream_of(const Series& s);
  std::string render_json_if(const std::function<bool(const Series&)>& take) const;
  Family& family(std::string_view name, std::string_view help, Type type,
                 const std::vector<double>& upper_bounds);
  Series* find(const Family& f, const Labels& sorted) const;
  // counter(), gauge() and histogram(): the series (name, labels) of a family of `type`.
  template <class Handle>
  Handle& series(std::string_view name, std::string_view help, Type type, Labels labels,
                 const std::vector<double>& upper_bounds);

  std::shared_ptr<prometheus::Registry> registry_;
  mutable std::mutex mutex_;
  // Our own record of families and series, in registration order: it checks re-registrations
  // (help text, buckets) that prometheus-cpp does not, hands out stable handles, and orders the
  // JSON of stats events.
  std::vector<std::unique_ptr<Family>> families_;
};

// Content-Type of render_prometheus()'s text.
inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";
// One stream's series, resolved once when the graph is set up (PipelineMetrics::for_stream).
struct StreamMetrics {
  Counter& video_frames_in;
  Counter& video_frames_used;
  Counter& audio_frames_in;
  Counter& audio_frames_used;
  // rawflow_dropped_total{unit=...,reason=...}
  Counter& requests_dropped_queue_full;
  Counter& requests_dropped_deadline;  // expired before their first forward
  Counter& requests_dropped_shutdown;  // cancelled, unfinished, when the run stopped
  Counter& packets_dropped_decode_error;
  // rawflow_queue_depth{queue=...}: source units waiting for the framing node; requests waiting
  // to be embedded; requests made and not yet finished (what queue.max_pending_requests caps).
  Gauge& queue_windows;
  Gauge& queue_projection;
  Gauge& queue_requests;
  Gauge& source_up;
  Counter& reconnects;
  Counter& gaps;
  Counter& gap_seconds;
};

// One (stream, task) pair's series (PipelineMetrics::for_task).
struct TaskMetrics {
  Histogram& request_latency;
  Counter& prompt_tokens;
  Counter& prompt_tokens_streamed;  // of those, prefilled while their window was open
  Counter& generated_tokens;
};

// The metrics rawflow exports, by their documented names (docs/metrics.md). Each accessor
// registers the series on first use and returns the same handle after: call it at set-up and keep
// the handle on the hot path.
class PipelineMetrics {
 public:
  explicit PipelineMetrics(MetricsRegistry& registry) : r_(registry) {}
  MetricsRegistry& registry() { return r_; }

  // Per stream: the source's decoded frames, and those that went into a request.
  Counter& video_frames_in(std::string_view stream);
  Counter& video_frames_used(std::string_view stream);
  Counter& audio_frames_in(std::string_view stream);  // 40 ms frames from the framer
  Counter& audio_frames_used(std::string_view stream);
  // Units thrown away: `unit` is request or packet; `reason` queue_full, deadline, shutdown
  // (requests) or decode_error (packets).
  Counter& dropped(std::string_view stream, std::string_view unit, std::string_view reason);
  // Items waiting in one of the stream's queues (`queue`: windows, projection, requests).
  Gauge& queue_depth(std::string_view stream, std::string_view queue);
  // 1 while the stream's input delivers media, 0 while it is down or reconnecting.
  Gauge& source_up(std::string_view stream);
  Counter& reconnects(std::string_view stream);
  Counter& gaps(std::string_view stream);
  Counter& gap_seconds(std::string_view stream);

  // Per stream and task: request made → final result.
  Histogram& request_latency(std::string_view stream, std::string_view task);
  Counter& prompt_tokens(std::string_view stream, std::string_view task);
  Counter& prompt_tokens_streamed(std::string_view stream, std::string_view task);
  Counter& generated_tokens(std::string_view stream, std::string_view task);

  // Every per-stream / per-(stream, task) handle above, in one call each.
  StreamMetrics for_stream(std::string_view stream);
  TaskMetrics for_task(std::string_view stream, std::string_view task);

  // Engine-wide.
  Histogram& sequences_per_forward();
  Counter& forward_seconds();         // wall time inside the engine's forward calls
  Gauge& decode_tokens_per_second();  // set by Pipeline::run over its last report interval

  // Per sink (zmq, jsonl, stdout).
  Counter& sink_published(std::string_view sink);
  Counter& sink_dropped(std::string_view sink, std::string_view reason);
  Gauge& sink_queue_depth(std::string_view sink);

 private:
  MetricsRegistry& r_;
};

}  // namespace rawflow::pipeline
