#pragma once
// One stream's requests between the framing node that makes them and the result order node that
// lets their finals out: how many are in flight (what queue.max_pending_requests caps, what file
// backpressure waits on, what tells a run it is done) and how many wait for the projection node
// (what bounds a live stream's projection queue). Shared by those nodes and the source thread;
// every member is thread-safe. The two queue-depth gauges show the same numbers.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "pipeline/metrics.h"

namespace rawflow::pipeline {

class RequestLedger {
 public:
  RequestLedger(Gauge& in_flight_depth, Gauge& projection_depth)
      : in_flight_depth_(in_flight_depth), projection_depth_(projection_depth) {}

  // Framing: `n` requests were made.
  void made(int64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_ += n;
    waiting_projection_ += n;
    in_flight_depth_.set(static_cast<double>(in_flight_));
    projection_depth_.set(static_cast<double>(waiting_projection_));
  }
  // Projection: it takes one request; returns how many of the stream's requests still wait
  // behind it.
  int64_t projection_takes_one() {
    std::lock_guard<std::mutex> lock(mu_);
    --waiting_projection_;
    projection_depth_.set(static_cast<double>(waiting_projection_));
    return waiting_projection_;
  }
  // Result order: a request's final (or error) was put to the sinks. True when that was the
  // stream's last: the caller reports the stream's end (exactly one of end() and finished()
  // returns true for a stream, under this lock).
  bool finished() {
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
    in_flight_depth_.set(static_cast<double>(in_flight_));
    cv_.notify_all();
    return ended_ && in_flight_ == 0;
  }
  // Framing: the stream's source ended (`complete`: it read its input to the end); no request
  // follows. True when nothing is in flight: the caller reports the stream's end.
  bool end(bool complete) {
    std::lock_guard<std::mutex> lock(mu_);
    ended_ = true;
    complete_ = complete;
    cv_.notify_all();
    return in_flight_ == 0;
  }
  bool complete() const {
    std::lock_guard<std::mutex> lock(mu_);
    return complete_;
  }
  bool done() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ended_ && in_flight_ == 0;
  }
  int64_t in_flight() const {
    std::lock_guard<std::mutex> lock(mu_);
    return in_flight_;
  }
  // The source thread of a file stream: waits (at most `poll`, so that a stop is seen) until
  // fewer than `cap` requests are in flight.
  void wait_for_room(int64_t cap, std::chrono::milliseconds poll) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, poll, [&] { return in_flight_ < cap; });
  }

 private:
  Gauge& in_flight_depth_;
  Gauge& projection_depth_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int64_t in_flight_ = 0;
  int64_t waiting_projection_ = 0;
  bool ended_ = false;
  bool complete_ = false;
};

}  // namespace rawflow::pipeline
