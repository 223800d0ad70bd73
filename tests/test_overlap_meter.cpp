// OverlapMeter (pipeline/overlap_meter.*): busy time of the projection node and of the engine's
// forwards, and the time both were busy, from intervals reported after they end and in any order
// across the two. Times are exact multiples of 1 ms on a fixed origin; the sums are compared with
// a 1e-9 s bound (double seconds from integer nanoseconds).
#define BOOST_TEST_MODULE test_overlap_meter
#include <boost/test/unit_test.hpp>

#include "pipeline/overlap_meter.h"

using namespace rawflow::pipeline;
using namespace std::chrono_literals;
namespace tt = boost::test_tools;

namespace {
const OverlapMeter::Clock::time_point t0{};
OverlapMeter::Clock::time_point ms(int n) { return t0 + std::chrono::milliseconds(n); }
}  // namespace

BOOST_AUTO_TEST_CASE(counts_each_overlap_once_whichever_interval_is_reported_last) {
  OverlapMeter m;
  m.add(OverlapMeter::kForward, ms(0), ms(100));
  m.add(OverlapMeter::kProjection, ms(50), ms(70));    // inside the forward: 20 ms
  m.add(OverlapMeter::kProjection, ms(90), ms(130));   // its first 10 ms
  m.add(OverlapMeter::kForward, ms(120), ms(200));     // reported after: 10 ms more
  m.add(OverlapMeter::kProjection, ms(300), ms(310));  // alone
  const auto t = m.totals();
  BOOST_TEST(t.forward_s == 0.180, tt::tolerance(1e-9));
  BOOST_TEST(t.projection_s == 0.070, tt::tolerance(1e-9));
  BOOST_TEST(t.both_s == 0.040, tt::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(no_overlap_when_they_alternate) {
  OverlapMeter m;
  for (int i = 0; i < 100; ++i) {
    m.add(OverlapMeter::kProjection, ms(20 * i), ms(20 * i + 10));
    m.add(OverlapMeter::kForward, ms(20 * i + 10), ms(20 * i + 20));
  }
  const auto t = m.totals();
  BOOST_TEST(t.both_s == 0.0);
  BOOST_TEST(t.projection_s == 1.0, tt::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(a_long_run_counts_every_overlap_within_the_horizon) {
  OverlapMeter m;
  // 400 s of forwards: older intervals leave the meter (kHorizon), recent overlaps all count.
  for (int i = 0; i < 20000; ++i) m.add(OverlapMeter::kForward, ms(20 * i), ms(20 * i + 10));
  m.add(OverlapMeter::kProjection, ms(20 * 19990), ms(20 * 20000));  // spans the last 10 forwards
  BOOST_TEST(m.totals().both_s == 0.100, tt::tolerance(1e-9));
}
