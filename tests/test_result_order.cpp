// The result order node (nodes/result_order.*) on its own: finals of one (stream, task) leave in
// their requests' order whatever order they finish in, partials pass at once, other streams and
// tasks are never held back, every released final closes its request in the stream's ledger
// (once put: settle()) and the run's tally, and a stream's last final is followed by its `end`.
#define BOOST_TEST_MODULE test_result_order
#include <boost/test/unit_test.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "nodes/result_order.h"

using namespace rawflow;
using namespace rawflow::pipeline;
using Kind = ResultEvent::Kind;

namespace {

struct Fixture {
  MetricsRegistry registry;
  PipelineMetrics metrics{registry};
  std::vector<std::unique_ptr<StreamHandles>> streams;
  RunTally tally;
  std::unique_ptr<nodes::ResultOrder> order;

  Fixture() {
    for (const char* name : {"a", "b"})
      streams.push_back(std::make_unique<StreamHandles>(metrics.for_stream(name)));
    order = std::make_unique<nodes::ResultOrder>(
        std::vector<StreamHandles*>{streams[0].get(), streams[1].get()}, tally);
    for (auto& s : streams) s->ledger.made(10);
  }
  // The texts of what leaves for this outcome.
  std::vector<std::string> put(size_t stream, size_t task, uint64_t seq, Kind kind) {
    Outcome o;
    o.request.stream = stream;
    o.request.task = task;
    o.request.sequence = seq;
    o.event.kind = kind;
    o.event.stream = stream == 0 ? "a" : "b";
    o.event.text = std::to_string(stream) + "/" + std::to_string(task) + "#" + std::to_string(seq) +
                   (kind == Kind::Partial ? "p" : "");
    std::vector<std::string> out;
    for (const ResultEvent& e : (*order)(o)) out.push_back(e.text);
    for (const ResultEvent& e : order->settle()) {
      BOOST_TEST((e.kind == Kind::End));
      out.push_back("end:" + e.stream + (e.complete ? "" : ":incomplete"));
    }
    return out;
  }
};

using V = std::vector<std::string>;

}  // namespace

BOOST_FIXTURE_TEST_CASE(finals_leave_in_request_order, Fixture) {
  BOOST_TEST(put(0, 0, 2, Kind::Final) == V{}, boost::test_tools::per_element());
  BOOST_TEST(put(0, 0, 1, Kind::Error) == V{}, boost::test_tools::per_element());
  BOOST_TEST(order->held() == 2u);
  BOOST_TEST(streams[0]->ledger.in_flight() == 10);
  BOOST_TEST(put(0, 0, 0, Kind::Final) == (V{"0/0#0", "0/0#1", "0/0#2"}),
             boost::test_tools::per_element());
  BOOST_TEST(order->held() == 0u);
  BOOST_TEST(streams[0]->ledger.in_flight() == 7);
  BOOST_TEST(tally.finals == 2);
  BOOST_TEST(tally.errors == 1);
  BOOST_TEST(put(0, 0, 3, Kind::Final) == V{"0/0#3"}, boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(partials_are_never_held, Fixture) {
  BOOST_TEST(put(0, 0, 1, Kind::Partial) == V{"0/0#1p"}, boost::test_tools::per_element());
  BOOST_TEST(put(0, 0, 1, Kind::Final) == V{}, boost::test_tools::per_element());
  BOOST_TEST(put(0, 0, 2, Kind::Partial) == V{"0/0#2p"}, boost::test_tools::per_element());
  BOOST_TEST(streams[0]->ledger.in_flight() == 10);  // a partial closes nothing
}

BOOST_FIXTURE_TEST_CASE(streams_and_tasks_do_not_wait_for_each_other, Fixture) {
  BOOST_TEST(put(0, 0, 1, Kind::Final) == V{}, boost::test_tools::per_element());
  // Request 0 of stream 0's task 0 is slow: the other task and the other stream go on.
  BOOST_TEST(put(0, 1, 0, Kind::Final) == V{"0/1#0"}, boost::test_tools::per_element());
  BOOST_TEST(put(1, 0, 0, Kind::Final) == V{"1/0#0"}, boost::test_tools::per_element());
  BOOST_TEST(streams[1]->ledger.in_flight() == 9);
  BOOST_TEST(put(0, 0, 0, Kind::Final) == (V{"0/0#0", "0/0#1"}), boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(a_stream_is_done_when_ended_and_every_final_left, Fixture) {
  BOOST_TEST(!streams[1]->ledger.end(true));  // 10 in flight: the end waits for them
  for (uint64_t i = 0; i < 9; ++i) put(1, 0, i, Kind::Final);
  BOOST_TEST(!streams[1]->ledger.done());
  BOOST_TEST(put(1, 0, 9, Kind::Final) == (V{"1/0#9", "end:b"}), boost::test_tools::per_element());
  BOOST_TEST(streams[1]->ledger.done());
  BOOST_TEST(!streams[0]->ledger.done());
}

BOOST_FIXTURE_TEST_CASE(an_incomplete_stream_ends_after_its_last_error, Fixture) {
  BOOST_TEST(!streams[0]->ledger.end(false));
  for (uint64_t i = 0; i < 9; ++i) put(0, 0, i, Kind::Final);
  BOOST_TEST(put(0, 0, 9, Kind::Error) == (V{"0/0#9", "end:a:incomplete"}),
             boost::test_tools::per_element());
}

// latency_ms: from the moment the request's media was complete to the final's release, so a
// final held behind a slower one counts its wait; the same value goes to the stream and task's
// rawflow_request_latency_seconds. Errors and partials carry none.
BOOST_FIXTURE_TEST_CASE(finals_carry_their_latency_from_media_complete_to_release, Fixture) {
  using namespace std::chrono;
  streams[0]->tasks.emplace(0, metrics.for_task("a", "speech"));
  const auto t0 = steady_clock::now();
  auto outcome = [&](uint64_t seq, Kind kind) {
    Outcome o;
    o.request.stream = 0;
    o.request.task = 0;
    o.request.sequence = seq;
    o.request.media_complete = t0;
    o.event.kind = kind;
    o.event.stream = "a";
    return o;
  };
  std::this_thread::sleep_for(20ms);
  BOOST_TEST((*order)(outcome(1, Kind::Final)).empty());  // held behind request 0
  BOOST_TEST((*order)(outcome(0, Kind::Partial))[0].latency_ms < 0);
  std::this_thread::sleep_for(30ms);
  const auto out = (*order)(outcome(0, Kind::Final));
  const double waited_ms = duration<double, std::milli>(steady_clock::now() - t0).count();
  BOOST_REQUIRE_EQUAL(out.size(), 2u);
  for (const ResultEvent& e : out) {
    BOOST_TEST(e.latency_ms >= 50.0);  // both released now: the held one counts its wait
    BOOST_TEST(e.latency_ms <= waited_ms);
    BOOST_TEST(to_json(e).find("\"latency_ms\":") != std::string::npos);
  }
  const auto error = (*order)(outcome(2, Kind::Error));
  BOOST_REQUIRE_EQUAL(error.size(), 1u);
  BOOST_TEST(error[0].latency_ms < 0);
  BOOST_TEST(to_json(error[0]).find("latency_ms") == std::string::npos);
  // Without a media time (media_complete unset) nothing is measured.
  Outcome bare = outcome(3, Kind::Final);
  bare.request.media_complete = {};
  BOOST_TEST((*order)(bare)[0].latency_ms < 0);
  const auto h = streams[0]->tasks.at(0).request_latency.snapshot();
  BOOST_TEST(h.count == 2u);
  BOOST_TEST(h.sum >= 0.1);
}
