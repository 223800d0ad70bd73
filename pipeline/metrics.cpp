#include "pipeline/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace rawflow::pipeline {

// ---------------------------------------------------------------------------------------------
// Histogram

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]))
      throw std::invalid_argument("histogram bucket bound " + std::to_string(i) +
                                  " is not finite (+Inf is implicit)");
    if (i > 0 && !(bounds_[i] > bounds_[i - 1]))
      throw std::invalid_argument("histogram bucket bounds must increase strictly (bound " +
                                  std::to_string(i) + ")");
  }
  counts_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
}

void Histogram::observe(double v) noexcept {
  if (std::isnan(v)) return;
  // `le` is inclusive: the first bound >= v.
  const size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.upper_bounds = bounds_;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  // The count is the +Inf bucket, so the two always agree in one scrape.
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Registry

struct MetricsRegistry::Series {
  Labels labels;
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
};

struct MetricsRegistry::Family {
  std::string name;
  std::string help;
  Type type;
  std::vector<double> upper_bounds;
  std::vector<std::unique_ptr<Series>> series;
};

namespace {

bool valid_metric_name(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool valid_label_name(std::string_view s) {
  if (s.empty() || s.starts_with("__")) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

const char* type_name(int type) {
  static const char* const names[] = {"counter", "gauge", "histogram"};
  return names[type];
}

void check_labels(std::string_view metric, const Labels& labels, bool histogram) {
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::string& name = labels[i].first;
    if (!valid_label_name(name))
      throw std::invalid_argument("metric " + std::string(metric) + ": invalid label name '" +
                                  name + "' (allowed: [a-zA-Z_][a-zA-Z0-9_]*, not starting __)");
    if (histogram && name == "le")
      throw std::invalid_argument("metric " + std::string(metric) +
                                  ": label 'le' is reserved for histogram buckets");
    if (i > 0 && labels[i - 1].first == name)
      throw std::invalid_argument("metric " + std::string(metric) + ": label '" + name +
                                  "' given twice");
  }
}

std::string escape(std::string_view s, bool quote) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '"' && quote)
      out += "\\\"";
    else
      out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

// `{a="x",b="y"}`, with `extra` (the bucket's le) last; "" when there are no labels at all.
std::string format_labels(const Labels& labels, std::string_view extra_name = {},
                          std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return "";
  std::string out = "{";
  for (const auto& [name, value] : labels) {
    if (out.size() > 1) out += ',';
    out += name + "=\"" + escape(value, true) + '"';
  }
  if (!extra_name.empty()) {
    if (out.size() > 1) out += ',';
    out += std::string(extra_name) + "=\"" + std::string(extra_value) + '"';
  }
  return out + '}';
}

}  // namespace

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Series& MetricsRegistry::series(std::string_view name, std::string_view help,
                                                 Type type, Labels labels,
                                                 const std::vector<double>& upper_bounds) {
  if (!valid_metric_name(name))
    throw std::invalid_argument("invalid metric name '" + std::string(name) +
                                "' (allowed: [a-zA-Z_:][a-zA-Z0-9_:]*)");
  std::sort(labels.begin(), labels.end());
  check_labels(name, labels, type == Type::Histogram);

  std::lock_guard lock(mutex_);
  auto it = std::find_if(families_.begin(), families_.end(),
                         [&](const auto& f) { return f->name == name; });
  Family* f = nullptr;
  if (it == families_.end()) {
    auto created = std::make_unique<Family>();
    created->name = name;
    created->help = help;
    created->type = type;
    created->upper_bounds = upper_bounds;
    f = families_.emplace_back(std::move(created)).get();
  } else {
    f = it->get();
    const std::string where = "metric " + std::string(name) + " ";
    if (f->type != type)
      throw std::invalid_argument(where + "is already a " + type_name(int(f->type)) +
                                  ", asked for a " + type_name(int(type)));
    if (f->help != help)
      throw std::invalid_argument(where + "is already registered with another help text");
    if (f->upper_bounds != upper_bounds)
      throw std::invalid_argument(where + "is already registered with other buckets");
  }
  for (const auto& s : f->series)
    if (s->labels == labels) return *s;

  auto s = std::make_unique<Series>();
  s->labels = std::move(labels);
  switch (type) {
    case Type::Counter:
      s->counter = std::make_unique<Counter>();
      break;
    case Type::Gauge:
      s->gauge = std::make_unique<Gauge>();
      break;
    case Type::Histogram:
      s->histogram = std::make_unique<Histogram>(upper_bounds);
      break;
  }
  return *f->series.emplace_back(std::move(s));
}

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help, Labels labels) {
  return *series(name, help, Type::Counter, std::move(labels), {}).counter;
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help, Labels labels) {
  return *series(name, help, Type::Gauge, std::move(labels), {}).gauge;
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help,
                                      const std::vector<double>& upper_bounds, Labels labels) {
  // Validate the bounds before the family keeps them.
  Histogram check(upper_bounds);
  return *series(name, help, Type::Histogram, std::move(labels), upper_bounds).histogram;
}

std::string MetricsRegistry::render_prometheus() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& f : families_) {
    out += "# HELP " + f->name + ' ' + escape(f->help, false) + '\n';
    out += "# TYPE " + f->name + ' ' + type_name(int(f->type)) + '\n';
    for (const auto& s : f->series) {
      if (s->counter)
        out += f->name + format_labels(s->labels) + ' ' + format_value(s->counter->value()) + '\n';
      if (s->gauge)
        out += f->name + format_labels(s->labels) + ' ' + format_value(s->gauge->value()) + '\n';
      if (s->histogram) {
        const Histogram::Snapshot snap = s->histogram->snapshot();
        for (size_t i = 0; i < snap.cumulative.size(); ++i) {
          const std::string le =
              i < snap.upper_bounds.size() ? format_value(snap.upper_bounds[i]) : "+Inf";
          out += f->name + "_bucket" + format_labels(s->labels, "le", le) + ' ' +
                 std::to_string(snap.cumulative[i]) + '\n';
        }
        out += f->name + "_sum" + format_labels(s->labels) + ' ' + format_value(snap.sum) + '\n';
        out +=
            f->name + "_count" + format_labels(s->labels) + ' ' + std::to_string(snap.count) + '\n';
      }
    }
  }
  return out;
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
                      "Request made (window closed) to its final result.", kLatencyBuckets_s,
                      stream_task_labels(stream, task));
}
Counter& PipelineMetrics::prompt_tokens(std::string_view stream, std::string_view task) {
  return r_.counter("rawflow_prompt_tokens_total", "Prompt tokens prefilled (text and media).",
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
          generated_tokens(stream, task)};
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
