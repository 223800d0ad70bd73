#include "pipeline/metrics.h"

#include <prometheus/check_names.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <type_traits>
#include <variant>

namespace rawflow::pipeline {

// ---------------------------------------------------------------------------------------------
// Histogram

Histogram::Snapshot Histogram::snapshot() const {
  // prometheus-cpp's Collect() reads the buckets, sum and count under the histogram's lock, so
  // `count` equals the +Inf bucket within one snapshot.
  const prometheus::ClientMetric m = series_.Collect();
  Snapshot s;
  s.upper_bounds = bounds_;
  for (const auto& b : m.histogram.bucket) s.cumulative.push_back(b.cumulative_count);
  s.count = m.histogram.sample_count;
  s.sum = m.histogram.sample_sum;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Registry

struct MetricsRegistry::Series {
  Labels labels;  // sorted by name
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
};

struct MetricsRegistry::Family {
  std::string name;
  std::string help;
  Type type;
  std::vector<double> upper_bounds;
  // The prometheus-cpp family (owned by registry_) that holds the values.
  std::variant<prometheus::Family<prometheus::Counter>*, prometheus::Family<prometheus::Gauge>*,
               prometheus::Family<prometheus::Histogram>*>
      family;
  std::vector<std::unique_ptr<Series>> series;
};

namespace {

const char* type_name(int type) {
  static const char* const names[] = {"counter", "gauge", "histogram"};
  return names[type];
}

// Checked before anything is registered, so that a refused call leaves no empty family behind
// and the message names the metric. prometheus-cpp's own checks supply the name rules; it keys a
// series by a std::map, where a label given twice would silently keep one value, and 1.0 does
// not reserve `le` for histograms: both are refused here.
void check_names(std::string_view metric, const Labels& sorted, bool histogram) {
  if (!prometheus::CheckMetricName(std::string(metric)))
    throw std::invalid_argument("invalid metric name '" + std::string(metric) +
                                "' (allowed: [a-zA-Z_:][a-zA-Z0-9_:]*)");
  for (size_t i = 0; i < sorted.size(); ++i) {
    const std::string& name = sorted[i].first;
    if (!prometheus::CheckLabelName(name))
      throw std::invalid_argument("metric " + std::string(metric) + ": invalid label name '" +
                                  name + "' (allowed: [a-zA-Z_][a-zA-Z0-9_]*, not starting __)");
    if (histogram && name == "le")
      throw std::invalid_argument("metric " + std::string(metric) +
                                  ": label 'le' is reserved for histogram buckets");
    if (i > 0 && sorted[i - 1].first == name)
      throw std::invalid_argument("metric " + std::string(metric) + ": label '" + name +
                                  "' given twice");
  }
}

void check_bounds(std::string_view metric, const std::vector<double>& bounds) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    // prometheus-cpp would render an explicit +Inf bucket twice; it is implicit.
    if (!std::isfinite(bounds[i]))
      throw std::invalid_argument("metric " + std::string(metric) + ": histogram bucket bound " +
                                  std::to_string(i) + " is not finite (+Inf is implicit)");
    if (i > 0 && !(bounds[i] > bounds[i - 1]))
      throw std::invalid_argument("metric " + std::string(metric) +
                                  ": histogram bucket bounds must increase strictly (bound " +
                                  std::to_string(i) + ")");
  }
}

// prometheus-cpp 1.0.1 writes HELP text as given, where the format wants `\` and line feeds
// escaped (label values it does escape): it is handed the escaped text.
std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (const char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::map<std::string, std::string> to_map(const Labels& labels) {
  return {labels.begin(), labels.end()};
}

}  // namespace

MetricsRegistry::MetricsRegistry() : registry_(std::make_shared<prometheus::Registry>()) {}
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Family& MetricsRegistry::family(std::string_view name, std::string_view help,
                                                 Type type,
                                                 const std::vector<double>& upper_bounds) {
  auto it = std::find_if(families_.begin(), families_.end(),
                         [&](const auto& f) { return f->name == name; });
  if (it != families_.end()) {
    Family& f = **it;
    const std::string where = "metric " + std::string(name) + " ";
    if (f.type != type)
      throw std::invalid_argument(where + "is already a " + type_name(int(f.type)) +
                                  ", asked for a " + type_name(int(type)));
    if (f.help != help)
      throw std::invalid_argument(where + "is already registered with another help text");
    if (f.upper_bounds != upper_bounds)
      throw std::invalid_argument(where + "is already registered with other buckets");
    return f;
  }
  auto f = std::make_unique<Family>();
  f->name = name;
  f->help = help;
  f->type = type;
  f->upper_bounds = upper_bounds;
  switch (type) {
    case Type::Counter:
      f->family =
          &prometheus::BuildCounter().Name(f->name).Help(escape_help(f->help)).Register(*registry_);
      break;
    case Type::Gauge:
      f->family =
          &prometheus::BuildGauge().Name(f->name).Help(escape_help(f->help)).Register(*registry_);
      break;
    case Type::Histogram:
      f->family = &prometheus::BuildHistogram()
                       .Name(f->name)
                       .Help(escape_help(f->help))
                       .Register(*registry_);
      break;
  }
  return *families_.emplace_back(std::move(f));
}

MetricsRegistry::Series* MetricsRegistry::find(const Family& f, const Labels& sorted) const {
  for (const auto& s : f.series)
    if (s->labels == sorted) return s.get();
  return nullptr;
}

template <class Handle>
Handle& MetricsRegistry::series(std::string_view name, std::string_view help, Type type,
                                Labels labels, const std::vector<double>& upper_bounds) {
  constexpr bool kHistogram = std::is_same_v<Handle, Histogram>;
  std::unique_ptr<Handle> Series::*slot;
  if constexpr (std::is_same_v<Handle, Counter>)
    slot = &Series::counter;
  else if constexpr (std::is_same_v<Handle, Gauge>)
    slot = &Series::gauge;
  else
    slot = &Series::histogram;
  std::sort(labels.begin(), labels.end());
  check_names(name, labels, kHistogram);
  if constexpr (kHistogram) check_bounds(name, upper_bounds);
  std::lock_guard lock(mutex_);
  Family& f = family(name, help, type, upper_bounds);
  if (Series* s = find(f, labels)) return *((*s).*slot);
  using Prom = std::conditional_t<
      kHistogram, prometheus::Histogram,
      std::conditional_t<std::is_same_v<Handle, Counter>, prometheus::Counter, prometheus::Gauge>>;
  prometheus::Family<Prom>& values = *std::get<prometheus::Family<Prom>*>(f.family);
  auto added = std::make_unique<Series>();
  if constexpr (kHistogram)
    (*added).*slot =
        std::make_unique<Handle>(values.Add(to_map(labels), upper_bounds), upper_bounds);
  else
    (*added).*slot = std::make_unique<Handle>(values.Add(to_map(labels)));
  added->labels = std::move(labels);
  Handle& handle = *((*added).*slot);
  f.series.push_back(std::move(added));
  return handle;
}

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help, Labels labels) {
  return series<Counter>(name, help, Type::Counter, std::move(labels), {});
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help, Labels labels) {
  return series<Gauge>(name, help, Type::Gauge, std::move(labels), {});
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help,
                                      const std::vector<double>& upper_bounds, Labels labels) {
  return series<Histogram>(name, help, Type::Histogram, std::move(labels), upper_bounds);
}

std::string MetricsRegistry::render_prometheus() const {
  // The same serializer over the same Collect() as the exposer's GET /metrics.
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

// A series' `stream` label; nullptr when it has none.
const std::string* MetricsRegistry::stream_of(const Series& s) {
  for (const auto& [name, value] : s.labels)
    if (name == "stream") return &value;
  return nullptr;
}

std::string MetricsRegistry::render_json(std::string_view stream) const {
  return render_json_if([stream](const Series& s) {
    const std::string* of = stream_of(s);
    return stream.empty() || (of && *of == stream);
  });
}

std::string MetricsRegistry::render_json_unstreamed() const {
  return render_json_if([](const Series& s) { return stream_of(s) == nullptr; });
}

std::string MetricsRegistry::render_json_if(const std::function<bool(const Series&)>& take) const {
  std::lock_guard lock(mutex_);
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& f : families_) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& s : f->series) {
      if (!take(*s)) continue;
      nlohmann::ordered_json labels = nlohmann::ordered_json::object();
      for (const auto& [name, value] : s->labels) labels[name] = value;
      nlohmann::ordered_json item = {{"labels", labels}};
      if (s->counter) item["value"] = s->counter->value();
      if (s->gauge) item["value"] = s->gauge->value();
      if (s->histogram) {
        const Histogram::Snapshot snap = s->histogram->snapshot();
        item["count"] = snap.count;
        item["sum"] = snap.sum;
        nlohmann::ordered_json buckets = nlohmann::ordered_json::array();
        for (size_t i = 0; i < snap.upper_bounds.size(); ++i)
          buckets.push_back({snap.upper_bounds[i], snap.cumulative[i]});
        item["buckets"] = buckets;
      }
      list.push_back(std::move(item));
    }
    if (!list.empty()) out[f->name] = std::move(list);
  }
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// ---------------------------------------------------------------------------------------------
// The catalogue: names, help and buckets in one place (docs/metrics.md mirrors it).

namespace {

// Request latency: sub-second partial-free answers up to multi-minute queues on a busy CPU.
const std::vector<double> kLatencyBuckets_s = {0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300};
// Sequences per forward: max_batch is small on CPU; powers of two and their midpoints.
const std::vector<double> kBatchBuckets = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64};

Labels stream_label(std::string_view stream) { return {{"stream", std::string(stream)}}; }

Labels stream_task_labels(std::string_view stream, std::string_view task) {
  return {{"stream", std::string(stream)}, {"task", std::string(task)}};
}

}  // namespace

Counter& PipelineMetrics::video_frames_in(std::string_view stream) {
  return r_.counter("rawflow_video_frames_in_total", "Video frames decoded from the source.",
                    stream_label(stream));
}
Counter& PipelineMetrics::video_frames_used(std::string_view stream) {
  return r_.counter("rawflow_video_frames_used_total",
                    "Video frames kept by the sampler and put into a request.",
                    stream_label(stream));
}
Counter& PipelineMetrics::audio_frames_in(std::string_view stream) {
  return r_.counter("rawflow_audio_frames_in_total",
                    "40 ms audio frames (640 samples at 16 kHz) made from the source.",
                    stream_label(stream));
}
Counter& PipelineMetrics::audio_frames_used(std::string_view stream) {
  return r_.counter("rawflow_audio_frames_used_total", "40 ms audio frames put into a request.",
                    stream_label(stream));
}
Counter& PipelineMetrics::dropped(std::string_view stream, std::string_view unit,
                                  std::string_view reason) {
  return r_.counter("rawflow_dropped_total",
                    "Units thrown away, by unit (request, packet) and reason.",
                    {{"stream", std::string(stream)},
                     {"unit", std::string(unit)},
                     {"reason", std::string(reason)}});
}
Gauge& PipelineMetrics::queue_depth(std::string_view stream, std::string_view queue) {
  return r_.gauge("rawflow_queue_depth", "Items waiting in one of the stream's queues.",
                  {{"stream", std::string(stream)}, {"queue", std::string(queue)}});
}
Gauge& PipelineMetrics::source_up(std::string_view stream) {
  return r_.gauge("rawflow_source_up", "1 while the stream's input delivers media, else 0.",
                  stream_label(stream));
}
Counter& PipelineMetrics::reconnects(std::string_view stream) {
  return r_.counter("rawflow_reconnects_total", "Reconnect attempts of a live source.",
                    stream_label(stream));
}
Counter& PipelineMetrics::gaps(std::string_view stream) {
  return r_.counter("rawflow_gaps_total", "Gaps in the media (lost connection, stall, pts jump).",
                    stream_label(stream));
}
Counter& PipelineMetrics::gap_seconds(std::string_view stream) {
  return r_.counter("rawflow_gap_seconds_total", "Media seconds missing in gaps.",
                    stream_label(stream));
}
Histogram& PipelineMetrics::request_latency(std::string_view stream, std::string_view task) {
  return r_.histogram("rawflow_request_latency_seconds",
                      "A request's media complete (its window's last unit reached the graph) to "
                      "its final released to the sinks.",
                      kLatencyBuckets_s, stream_task_labels(stream, task));
}
Counter& PipelineMetrics::prompt_tokens(std::string_view stream, std::string_view task) {
  return r_.counter("rawflow_prompt_tokens_total", "Prompt tokens prefilled (text and media).",
                    stream_task_labels(stream, task));
}
Counter& PipelineMetrics::prompt_tokens_streamed(std::string_view stream, std::string_view task) {
  return r_.counter("rawflow_prompt_tokens_streamed_total",
                    "Of the prompt tokens, those prefilled while their window was still open "
                    "(streaming prefill).",
                    stream_task_labels(stream, task));
}
Counter& PipelineMetrics::generated_tokens(std::string_view stream, std::string_view task) {
  return r_.counter("rawflow_generated_tokens_total", "Tokens generated by the decoder.",
                    stream_task_labels(stream, task));
}
StreamMetrics PipelineMetrics::for_stream(std::string_view stream) {
  return {video_frames_in(stream),
          video_frames_used(stream),
          audio_frames_in(stream),
          audio_frames_used(stream),
          dropped(stream, "request", "queue_full"),
          dropped(stream, "request", "deadline"),
          dropped(stream, "request", "shutdown"),
          dropped(stream, "packet", "decode_error"),
          queue_depth(stream, "windows"),
          queue_depth(stream, "projection"),
          queue_depth(stream, "requests"),
          source_up(stream),
          reconnects(stream),
          gaps(stream),
          gap_seconds(stream)};
}
TaskMetrics PipelineMetrics::for_task(std::string_view stream, std::string_view task) {
  return {request_latency(stream, task), prompt_tokens(stream, task),
          prompt_tokens_streamed(stream, task), generated_tokens(stream, task)};
}
Histogram& PipelineMetrics::sequences_per_forward() {
  return r_.histogram("rawflow_sequences_per_forward",
                      "Sequences batched into one forward call of the engine.", kBatchBuckets);
}
Counter& PipelineMetrics::forward_seconds() {
  return r_.counter("rawflow_forward_seconds_total",
                    "Wall time spent inside the engine's forward calls.");
}
Gauge& PipelineMetrics::decode_tokens_per_second() {
  return r_.gauge("rawflow_decode_tokens_per_second",
                  "Generated tokens per second of wall time, all streams, over the decoder's "
                  "last report interval.");
}
Counter& PipelineMetrics::sink_published(std::string_view sink) {
  return r_.counter("rawflow_sink_published_total", "Results handed on by an output sink.",
                    {{"sink", std::string(sink)}});
}
Counter& PipelineMetrics::sink_dropped(std::string_view sink, std::string_view reason) {
  return r_.counter("rawflow_sink_dropped_total",
                    "Results an output sink dropped, by reason (queue_full, hwm, closed, error).",
                    {{"sink", std::string(sink)}, {"reason", std::string(reason)}});
}
Gauge& PipelineMetrics::sink_queue_depth(std::string_view sink) {
  return r_.gauge("rawflow_sink_queue_depth", "Results waiting in an output sink's queue.",
                  {{"sink", std::string(sink)}});
}

}  // namespace rawflow::pipeline
