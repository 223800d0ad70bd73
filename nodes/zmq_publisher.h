#pragma once
// ZeroMQ output: every result as a two-part message [topic, json] on a publishing socket
// (docs/results.md). Subscribers filter by topic prefix.
//
// Nothing here ever waits on a subscriber. publish() serializes the event and puts it on a bounded
// queue (full → dropped, counted `queue_full`); the sink's own thread sends with ZMQ_DONTWAIT. A
// subscriber that falls ZMQ_SNDHWM messages behind makes the send fail instead of block: the
// message is dropped and counted `hwm`. The socket is an XPUB so the sink also sees subscriptions
// arrive (wait_for_subscriptions: the cure for ZeroMQ's slow-joiner loss in tests and start-up).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "nodes/result_sink.h"
#include "pipeline/metrics.h"

namespace zmq {
class context_t;
}

namespace rawflow::nodes {

struct ZmqPublisherOptions {
  // tcp://HOST:PORT (PORT `*` = any free port, with bind), ipc://PATH, inproc://NAME.
  std::string endpoint;
  bool bind = true;   // bind (subscribers connect) or connect (e.g. to an XSUB proxy)
  int sndhwm = 1000;  // messages queued per subscriber in ZeroMQ
  std::string topic = "{stream}/{task}";  // pipeline::topic_for scheme
  bool partials = true;                   // also publish partial results
  size_t queue_capacity = 4096;           // events between publish() and the sending thread
  int linger_ms = 200;                    // how long close() may still deliver sent messages
  // true: a subscriber at its high-water mark makes the message fail for every subscriber of
  // its topic, and the drop is counted (ZMQ_XPUB_NODROP + DONTWAIT). false: ZeroMQ's default
  // fan-out: only the full subscriber loses the message, but ZeroMQ does not say so (uncounted).
  bool count_hwm_drops = true;
  // CURVE (nodes/zmq_curve.h), on when both are given: the publisher's secret key file and the
  // file of subscriber public keys allowed to receive. Needs bind and a tcp:// or ipc:// endpoint.
  std::string curve_secret_key_file = {};
  std::string curve_allowed_clients_file = {};
};

class ZmqPublisher final : public ResultSink {
 public:
  // Opens the socket and binds or connects it now (std::runtime_error naming the endpoint), then
  // starts the sending thread. Counts go to `metrics` as rawflow_sink_*{sink="zmq"} (a private
  // registry when null). `context`: share one for inproc:// endpoints; null = the sink's own.
  explicit ZmqPublisher(ZmqPublisherOptions options, pipeline::MetricsRegistry* metrics = nullptr,
                        zmq::context_t* context = nullptr);
  ~ZmqPublisher() override;
  ZmqPublisher(const ZmqPublisher&) = delete;
  ZmqPublisher& operator=(const ZmqPublisher&) = delete;

  void publish(const pipeline::ResultEvent& e) override;
  // Sends what is queued (without waiting on subscribers), then closes the socket with the
  // bounded linger and joins the thread.
  void close() override;

  // The endpoint as bound or connected: `tcp://127.0.0.1:41234` for `tcp://127.0.0.1:*`.
  const std::string& endpoint() const;
  // Subscriptions currently active: one per (subscriber, topic prefix).
  size_t subscriptions() const;
  // Waits until at least `n` subscriptions are active; false at the timeout.
  bool wait_for_subscriptions(size_t n, std::chrono::milliseconds timeout) const;

  struct Counts {
    uint64_t published = 0;           // handed to ZeroMQ
    uint64_t dropped_queue_full = 0;  // the sending thread fell queue_capacity behind
    uint64_t dropped_hwm = 0;         // a subscriber was sndhwm behind (count_hwm_drops)
    uint64_t dropped_closed = 0;      // published after close()
    uint64_t errors = 0;              // ZeroMQ refused the message for another reason
  };
  Counts counts() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rawflow::nodes
