// The result order node (nodes/result_order.*) on its own: finals of one (stream, task) leave in
// their requests' order whatever order they finish in, partials pass at once, other streams and
// tasks are never held back, every released final closes its request in the stream's ledger
// (once put: settle()) and the run's tally, and a stream's last final is followed by its `end`.
#define BOOST_TEST_MODULE test_result_order
#include <boost/test/unit_test.hpp>
#include <memory>
#include <string>
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
