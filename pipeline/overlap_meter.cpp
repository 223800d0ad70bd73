#include "pipeline/overlap_meter.h"

#include <algorithm>

namespace rawflow::pipeline {

void OverlapMeter::add(Activity a, Clock::time_point begin, Clock::time_point end) {
  if (end <= begin) return;
  const auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  std::lock_guard<std::mutex> lock(mu_);
  busy_s_[a] += seconds(end - begin);
  // Each pair of intervals is counted once: when the later-reported one of the two arrives.
  for (const Interval& o : recent_[1 - a]) {
    const auto lo = std::max(begin, o.begin), hi = std::min(end, o.end);
    if (hi > lo) both_s_ += seconds(hi - lo);
  }
  recent_[a].push_back({begin, end});
  for (auto& q : recent_)
    while (!q.empty() && q.front().end < end - kHorizon) q.pop_front();
}

OverlapMeter::Totals OverlapMeter::totals() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {busy_s_[kProjection], busy_s_[kForward], both_s_};
}

}  // namespace rawflow::pipeline
