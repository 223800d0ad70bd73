#pragma once
// What a run did, counted by the nodes as it happens (RunSummary at the end). Thread-safe.
#include <atomic>
#include <cstdint>

namespace rawflow::pipeline {

struct RunTally {
  std::atomic<int64_t> requests{0};  // made by the framing nodes
  std::atomic<int64_t> finals{0};    // final results released in order
  std::atomic<int64_t> errors{0};    // error events: failed requests and source errors
  std::atomic<int64_t> gaps{0};
};

}  // namespace rawflow::pipeline
