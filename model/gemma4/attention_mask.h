#pragma once
// Which keys a query attends to (spec §2.8), as a contiguous range of absolute positions.
#include <algorithm>
#include <cstdint>

namespace rawflow {

struct KeyRange {
  int64_t lo = 0;  // first visible key
  int64_t hi = 0;  // last visible key (inclusive)
};

// Query at position q. Causal, plus on sliding layers only the last `window` keys (q − window <
// k ≤ q). When the query is a soft token of a bidirectional block (an image or video frame) and
// this layer applies block attention, it also sees the rest of its block up to `block_end`
// (inclusive): HF's `(k > q − window) AND (k ≤ q OR same_block)`, where the window still bounds
// the keys behind it. `block_end` < 0 means no block.
inline KeyRange visible_keys(int64_t q, bool sliding, int64_t window, int64_t block_end) {
  KeyRange r;
  r.lo = sliding ? std::max<int64_t>(0, q - window + 1) : 0;
  r.hi = std::max(q, block_end);
  return r;
}

}  // namespace rawflow
