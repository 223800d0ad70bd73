#pragma once
// How far a `rawflow batch` shard is: what its progress line, bar and DIR/progress/<shard>.json
// say. Inputs finished before this run (resume) count as done but not into the rates.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace rawflow::pipeline {

class Gauge;
class MetricsRegistry;

struct BatchProgress {
  int64_t shard = 0, shards = 1;
  size_t inputs = 0;       // in this shard
  size_t done_before = 0;  // skipped: their results existed
  size_t done = 0;         // finished by this run
  size_t failed = 0;       // failed in this run (after their attempts)
  double media_s = 0;      // media seconds of the inputs this run finished
  double elapsed_s = 0;    // wall seconds since this run started

  size_t remaining() const;
  // Media seconds processed per wall second in this run (0 before any).
  double media_rate() const;
  // Wall seconds left at this run's pace per input so far; nullopt before the first input ends.
  std::optional<double> eta_s() const;
  // {"shard":0,"shards":1,"inputs":11,"done_before":0,"done":3,"failed":1,"remaining":7,
  //  "media_hours_done":0.01,"elapsed_s":12.5,"media_seconds_per_second":2.1,"eta_s":29.1}
  // (eta_s null when unknown).
  std::string json() const;
  // "[3+0/11] 1 failed, 0.01 h media, 2.1 media-s/s, ETA 0:00:29" (done this run + done before /
  // inputs).
  std::string line() const;
  // The line after a bar of `width` cells: "[######----] 4/11 ...", for a terminal.
  std::string bar(int width) const;
};

// The same figures as /metrics series (docs/metrics.md), labelled with the shard: registered on a
// run's registry, set by publish(). Lives no longer than that registry.
class BatchProgressMetrics {
 public:
  BatchProgressMetrics(MetricsRegistry& registry, int64_t shard);
  void publish(const BatchProgress& p);

 private:
  Gauge &inputs_, &done_before_, &done_, &failed_, &remaining_;
  Gauge &media_s_, &media_rate_, &eta_s_;
};

}  // namespace rawflow::pipeline
