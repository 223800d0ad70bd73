#include "nodes/zmq_publisher.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>
#include <zmq.hpp>

#include "nodes/zmq_curve.h"

namespace rawflow::nodes {

namespace {

constexpr const char* kSinkName = "zmq";
// How often an idle sending thread looks for new subscriptions: bounds the delay seen by
// wait_for_subscriptions, costs nothing measurable.
constexpr auto kIdlePoll = std::chrono::milliseconds(10);
// A multipart message whose first part is in ZeroMQ must be completed; this bounds that wait.
constexpr int kCompleteMessageTimeout_ms = 100;

struct Message {
  std::string topic;
  std::string json;
};

}  // namespace

struct ZmqPublisher::Impl {
  ZmqPublisherOptions options;
  std::unique_ptr<pipeline::MetricsRegistry> own_metrics;
  pipeline::Counter* published = nullptr;
  pipeline::Counter* dropped_queue_full = nullptr;
  pipeline::Counter* dropped_hwm = nullptr;
  pipeline::Counter* dropped_closed = nullptr;
  pipeline::Counter* errors = nullptr;
  pipeline::Gauge* queue_depth = nullptr;

  std::unique_ptr<zmq::context_t> own_context;
  std::unique_ptr<ZapAuthenticator> zap;  // CURVE: admits the allowed subscribers
  zmq::socket_t socket;                   // used by the sending thread only, once it runs
  std::string endpoint;

  std::mutex queue_mutex;
  std::condition_variable queue_cv;
  std::deque<Message> queue;
  bool closing = false;

  mutable std::mutex subs_mutex;
  mutable std::condition_variable subs_cv;
  size_t subscriptions = 0;

  std::mutex close_mutex;
  std::thread thread;

  void run();
  void read_subscriptions();
  void send(const Message& m);
};

void ZmqPublisher::Impl::read_subscriptions() {
  // XPUB hands up one message per subscribe (first byte 1) and unsubscribe (0), also for the
  // subscriptions of a subscriber that disconnects (ZMQ_XPUB_VERBOSER).
  size_t subscribed = 0, unsubscribed = 0;
  zmq::message_t msg;
  while (socket.recv(msg, zmq::recv_flags::dontwait)) {
    if (msg.size() == 0) continue;
    (static_cast<const uint8_t*>(msg.data())[0] == 1 ? subscribed : unsubscribed)++;
  }
  if (subscribed == 0 && unsubscribed == 0) return;
  {
    std::lock_guard lock(subs_mutex);
    subscriptions += subscribed;
    subscriptions -= std::min(subscriptions, unsubscribed);
  }
  subs_cv.notify_all();
}

void ZmqPublisher::Impl::send(const Message& m) {
  try {
    if (!socket.send(zmq::buffer(m.topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      dropped_hwm->inc();
      return;
    }
    // Once the first part is accepted ZeroMQ admits the rest (the high-water mark counts whole
    // messages); the blocking fallback, bounded by ZMQ_SNDTIMEO, is for safety only.
    if (socket.send(zmq::buffer(m.json), zmq::send_flags::dontwait) ||
        socket.send(zmq::buffer(m.json), zmq::send_flags::none)) {
      published->inc();
    } else {
      errors->inc();
    }
  } catch (const zmq::error_t&) {
    errors->inc();
  }
}

void ZmqPublisher::Impl::run() {
  std::vector<Message> batch;
  for (;;) {
    bool stop = false;
    {
      std::unique_lock lock(queue_mutex);
      queue_cv.wait_for(lock, kIdlePoll, [&] { return closing || !queue.empty(); });
      batch.assign(std::make_move_iterator(queue.begin()), std::make_move_iterator(queue.end()));
      queue.clear();
      queue_depth->set(0);
      stop = closing;
    }
    try {
      read_subscriptions();
    } catch (const zmq::error_t&) {
      errors->inc();
    }
    for (const Message& m : batch) send(m);
    batch.clear();
    // `closing` was read with the queue drained and publish() refuses new events after it.
    if (stop) return;
  }
}

ZmqPublisher::ZmqPublisher(ZmqPublisherOptions options, pipeline::MetricsRegistry* metrics,
                           zmq::context_t* context)
    : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  d.options = std::move(options);
  const std::string where = "zmq output " + d.options.endpoint + ": ";
  if (d.options.endpoint.empty()) throw std::invalid_argument("zmq output: endpoint is empty");
  if (d.options.sndhwm < 0)
    throw std::invalid_argument(where + "sndhwm must be >= 0, got " +
                                std::to_string(d.options.sndhwm));
  if (d.options.queue_capacity == 0)
    throw std::invalid_argument(where + "queue_capacity must be >= 1");

  if (!metrics) {
    d.own_metrics = std::make_unique<pipeline::MetricsRegistry>();
    metrics = d.own_metrics.get();
  }
  pipeline::PipelineMetrics catalogue(*metrics);
  d.published = &catalogue.sink_published(kSinkName);
  d.dropped_queue_full = &catalogue.sink_dropped(kSinkName, "queue_full");
  d.dropped_hwm = &catalogue.sink_dropped(kSinkName, "hwm");
  d.dropped_closed = &catalogue.sink_dropped(kSinkName, "closed");
  d.errors = &catalogue.sink_dropped(kSinkName, "error");
  d.queue_depth = &catalogue.sink_queue_depth(kSinkName);

  if (!context) {
    d.own_context = std::make_unique<zmq::context_t>(1);
    context = d.own_context.get();
  }
  const bool curve = !d.options.curve_secret_key_file.empty();
  std::string secret;
  if (curve) {
    if (!d.options.bind)
      throw std::invalid_argument(where + "CURVE needs bind: the publisher is the CURVE server");
    secret = read_curve_key_file(d.options.curve_secret_key_file, "CURVE secret key");
    d.zap = std::make_unique<ZapAuthenticator>(
        *context, read_allowed_clients(d.options.curve_allowed_clients_file),
        metrics->counter("rawflow_zmq_subscribers_denied_total",
                         "Subscribers the ZeroMQ output's CURVE authentication refused (key not "
                         "allowed, or no CURVE at all)."));
  }
  try {
    d.socket = zmq::socket_t(*context, zmq::socket_type::xpub);
    if (curve) {
      d.socket.set(zmq::sockopt::curve_server, 1);
      d.socket.set(zmq::sockopt::curve_secretkey, secret);
      // Every CURVE handshake is put to the ZAP handler. A subscriber without CURVE never gets
      // that far: a CURVE server refuses a NULL-mechanism peer in the handshake.
      d.socket.set(zmq::sockopt::zap_domain, "rawflow");
    }
    d.socket.set(zmq::sockopt::sndhwm, d.options.sndhwm);
    d.socket.set(zmq::sockopt::linger, d.options.linger_ms);
    d.socket.set(zmq::sockopt::sndtimeo, kCompleteMessageTimeout_ms);
    d.socket.set(zmq::sockopt::xpub_verboser, 1);
    d.socket.set(zmq::sockopt::xpub_nodrop, d.options.count_hwm_drops ? 1 : 0);
    if (d.options.bind)
      d.socket.bind(d.options.endpoint);
    else
      d.socket.connect(d.options.endpoint);
    d.endpoint = d.socket.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    throw std::runtime_error(where + "cannot " + (d.options.bind ? "bind" : "connect") + ": " +
                             e.what());
  }
  d.thread = std::thread([&d] { d.run(); });
}

ZmqPublisher::~ZmqPublisher() { close(); }

void ZmqPublisher::publish(const pipeline::ResultEvent& e) {
  Impl& d = *impl_;
  if (e.kind == pipeline::ResultEvent::Kind::Partial && !d.options.partials) return;
  Message m{pipeline::topic_for(d.options.topic, e), pipeline::to_json(e)};
  bool was_empty = false;
  {
    std::lock_guard lock(d.queue_mutex);
    if (d.closing) {
      d.dropped_closed->inc();
      return;
    }
    // The newest is dropped: what is queued is already in order and partly on its way.
    if (d.queue.size() >= d.options.queue_capacity) {
      d.dropped_queue_full->inc();
      return;
    }
    was_empty = d.queue.empty();
    d.queue.push_back(std::move(m));
    d.queue_depth->set(double(d.queue.size()));
  }
  // The thread sleeps only on an empty queue: waking it once per batch saves a futex call per
  // event.
  if (was_empty) d.queue_cv.notify_one();
}

void ZmqPublisher::close() {
  Impl& d = *impl_;
  std::lock_guard close_lock(d.close_mutex);
  {
    std::lock_guard lock(d.queue_mutex);
    if (d.closing) return;
    d.closing = true;
  }
  d.queue_cv.notify_one();
  d.thread.join();
  d.socket.close();  // linger bounds how long ZeroMQ still tries to deliver
  d.zap.reset();     // before the context: its socket belongs to it
  if (d.own_context) d.own_context->close();
}

const std::string& ZmqPublisher::endpoint() const { return impl_->endpoint; }

size_t ZmqPublisher::subscriptions() const {
  std::lock_guard lock(impl_->subs_mutex);
  return impl_->subscriptions;
}

bool ZmqPublisher::wait_for_subscriptions(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->subs_mutex);
  return impl_->subs_cv.wait_for(lock, timeout, [&] { return impl_->subscriptions >= n; });
}

ZmqPublisher::Counts ZmqPublisher::counts() const {
  const Impl& d = *impl_;
  Counts c;
  c.published = uint64_t(d.published->value());
  c.dropped_queue_full = uint64_t(d.dropped_queue_full->value());
  c.dropped_hwm = uint64_t(d.dropped_hwm->value());
  c.dropped_closed = uint64_t(d.dropped_closed->value());
  c.errors = uint64_t(d.errors->value());
  return c;
}

}  // namespace rawflow::nodes
