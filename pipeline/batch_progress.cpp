#include "pipeline/batch_progress.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

#include "pipeline/metrics.h"

namespace rawflow::pipeline {
namespace {

std::string clock_text(double s) {
  const long long t = std::llround(std::max(0.0, s));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
  return buf;
}

double round_to(double v, double step) { return std::round(v / step) * step; }

}  // namespace

size_t BatchProgress::remaining() const {
  const size_t settled = done_before + done + failed;
  return inputs > settled ? inputs - settled : 0;
}

double BatchProgress::media_rate() const { return elapsed_s > 0 ? media_s / elapsed_s : 0; }

std::optional<double> BatchProgress::eta_s() const {
  const size_t ended = done + failed;
  if (ended == 0) return std::nullopt;
  return elapsed_s / static_cast<double>(ended) * static_cast<double>(remaining());
}

std::string BatchProgress::json() const {
  nlohmann::ordered_json j;
  j["shard"] = shard;
  j["shards"] = shards;
  j["inputs"] = inputs;
  j["done_before"] = done_before;
  j["done"] = done;
  j["failed"] = failed;
  j["remaining"] = remaining();
  j["media_hours_done"] = round_to(media_s / 3600.0, 1e-4);
  j["elapsed_s"] = round_to(elapsed_s, 0.1);
  j["media_seconds_per_second"] = round_to(media_rate(), 0.01);
  if (const auto eta = eta_s())
    j["eta_s"] = round_to(*eta, 0.1);
  else
    j["eta_s"] = nullptr;
  return j.dump();
}

std::string BatchProgress::line() const {
  char buf[256];
  const auto eta = eta_s();
  std::snprintf(buf, sizeof buf, "[%zu+%zu/%zu] %zu failed, %.2f h media, %.1f media-s/s, ETA %s",
                done, done_before, inputs, failed, media_s / 3600.0, media_rate(),
                eta ? clock_text(*eta).c_str() : "?");
  return buf;
}

std::string BatchProgress::bar(int width) const {
  const size_t settled = done_before + done + failed;
  const int full =
      inputs == 0 ? width
                  : static_cast<int>(static_cast<double>(width) * static_cast<double>(settled) /
                                     static_cast<double>(inputs));
  std::string s(1, '[');
  s.append(static_cast<size_t>(full), '#');
  s.append(static_cast<size_t>(width - full), '-');
  s += "] ";
  s += line();
  return s;
}

namespace {

Gauge& inputs_gauge(MetricsRegistry& r, int64_t shard, const char* state) {
  return r.gauge("rawflow_batch_inputs",
                 "Inputs of this batch shard by state: total, done_before (results existed), done "
                 "(by this run), failed, remaining.",
                 {{"shard", std::to_string(shard)}, {"state", state}});
}

}  // namespace

BatchProgressMetrics::BatchProgressMetrics(MetricsRegistry& r, int64_t shard)
    : inputs_(inputs_gauge(r, shard, "total")),
      done_before_(inputs_gauge(r, shard, "done_before")),
      done_(inputs_gauge(r, shard, "done")),
      failed_(inputs_gauge(r, shard, "failed")),
      remaining_(inputs_gauge(r, shard, "remaining")),
      media_s_(r.gauge("rawflow_batch_media_seconds_done",
                       "Media seconds of the inputs this run finished.",
                       {{"shard", std::to_string(shard)}})),
      media_rate_(r.gauge("rawflow_batch_media_seconds_per_second",
                          "Media seconds finished per wall second since this run started.",
                          {{"shard", std::to_string(shard)}})),
      eta_s_(r.gauge("rawflow_batch_eta_seconds",
                     "Wall seconds left at this run's pace per input; NaN before an input ended.",
                     {{"shard", std::to_string(shard)}})) {}

void BatchProgressMetrics::publish(const BatchProgress& p) {
  inputs_.set(static_cast<double>(p.inputs));
  done_before_.set(static_cast<double>(p.done_before));
  done_.set(static_cast<double>(p.done));
  failed_.set(static_cast<double>(p.failed));
  remaining_.set(static_cast<double>(p.remaining()));
  media_s_.set(p.media_s);
  media_rate_.set(p.media_rate());
  eta_s_.set(p.eta_s().value_or(std::numeric_limits<double>::quiet_NaN()));
}

}  // namespace rawflow::pipeline
