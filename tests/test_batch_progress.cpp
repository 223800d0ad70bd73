// What a batch shard's progress says (pipeline/batch_progress.h): remaining inputs, the media
// rate and ETA of this run (resumed inputs count as done, not into the pace), the JSON of
// DIR/progress/<shard>.json, the line and the terminal bar.
#define BOOST_TEST_MODULE test_batch_progress
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "pipeline/batch_progress.h"
#include "pipeline/metrics.h"

using namespace rawflow::pipeline;

BOOST_AUTO_TEST_CASE(before_any_input_ends_the_eta_is_unknown) {
  BatchProgress p;
  p.inputs = 10;
  p.done_before = 4;
  p.elapsed_s = 5;
  BOOST_TEST(p.remaining() == 6u);
  BOOST_TEST(!p.eta_s());
  const auto j = nlohmann::json::parse(p.json());
  BOOST_TEST(j["eta_s"].is_null());
  BOOST_TEST(j["remaining"] == 6);
  BOOST_TEST(p.line() == "[0+4/10] 0 failed, 0.00 h media, 0.0 media-s/s, ETA ?");
}

BOOST_AUTO_TEST_CASE(pace_and_eta_come_from_this_run_only) {
  BatchProgress p;
  p.shard = 2;
  p.shards = 3;
  p.inputs = 10;
  p.done_before = 4;  // skipped: no time spent on them
  p.done = 2;
  p.failed = 1;
  p.media_s = 5400;  // 1.5 h
  p.elapsed_s = 600;
  BOOST_TEST(p.remaining() == 3u);
  BOOST_TEST(p.media_rate() == 9.0);
  BOOST_TEST(*p.eta_s() == 600.0);  // 200 s per input ended, 3 left
  BOOST_TEST(p.json() == R"({"shard":2,"shards":3,"inputs":10,"done_before":4,"done":2,"failed":1,)"
                         R"("remaining":3,"media_hours_done":1.5,"elapsed_s":600.0,)"
                         R"("media_seconds_per_second":9.0,"eta_s":600.0})");
  BOOST_TEST(p.line() == "[2+4/10] 1 failed, 1.50 h media, 9.0 media-s/s, ETA 0:10:00");
  BOOST_TEST(p.bar(10) == "[#######---] " + p.line());
}

BOOST_AUTO_TEST_CASE(the_figures_are_on_metrics_per_shard) {
  MetricsRegistry registry;
  BatchProgressMetrics gauges(registry, 2);
  BatchProgress p;
  p.shard = 2;
  p.inputs = 10;
  p.done_before = 4;
  p.elapsed_s = 5;
  gauges.publish(p);
  std::string text = registry.render_prometheus();
  BOOST_TEST(
      text.find("rawflow_batch_inputs{shard=\"2\",state=\"remaining\"} 6\n") != std::string::npos,
      text);
  BOOST_TEST(text.find("rawflow_batch_eta_seconds{shard=\"2\"} Nan\n") != std::string::npos, text);
  p.done = 2;
  p.failed = 1;
  p.media_s = 120;
  p.elapsed_s = 60;
  gauges.publish(p);
  text = registry.render_prometheus();
  for (const char* line : {"rawflow_batch_inputs{shard=\"2\",state=\"total\"} 10\n",
                           "rawflow_batch_inputs{shard=\"2\",state=\"done_before\"} 4\n",
                           "rawflow_batch_inputs{shard=\"2\",state=\"done\"} 2\n",
                           "rawflow_batch_inputs{shard=\"2\",state=\"failed\"} 1\n",
                           "rawflow_batch_inputs{shard=\"2\",state=\"remaining\"} 3\n",
                           "rawflow_batch_media_seconds_done{shard=\"2\"} 120\n",
                           "rawflow_batch_media_seconds_per_second{shard=\"2\"} 2\n",
                           "rawflow_batch_eta_seconds{shard=\"2\"} 60\n"})
    BOOST_TEST(text.find(line) != std::string::npos, line << " not in\n" << text);
}
