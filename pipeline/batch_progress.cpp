#include "pipeline/batch_progress.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

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

}  // namespace rawflow::pipeline
