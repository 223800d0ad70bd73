#pragma once
// How much of the wall time two activities ran at once: the projection node's work and the
// engine's forwards (RunSummary; docs/performance.md). Each activity reports its busy intervals
// when they end, in any order across activities; one activity's intervals must not overlap each
// other (each is one serial node or one thread). Thread-safe, memory bounded: intervals are kept
// for kHorizon, so an interval longer than that may miss part of its overlap.
#include <chrono>
#include <deque>
#include <mutex>

namespace rawflow::pipeline {

class OverlapMeter {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kHorizon{120};
  enum Activity { kProjection = 0, kForward = 1 };

  void add(Activity a, Clock::time_point begin, Clock::time_point end);

  struct Totals {
    double projection_s = 0, forward_s = 0;  // busy time of each
    double both_s = 0;                       // of that, when both were busy
  };
  Totals totals() const;

 private:
  struct Interval {
    Clock::time_point begin, end;
  };
  mutable std::mutex mu_;
  std::deque<Interval> recent_[2];
  double busy_s_[2] = {0, 0};
  double both_s_ = 0;
};

}  // namespace rawflow::pipeline
