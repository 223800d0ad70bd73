#pragma once
// Masked softmax attention for a block of consecutive query rows of one sequence and the heads
// that share one KV head, in llama.cpp's orders bit for bit: each score is vec::dot, each row's
// softmax vec::softmax over its 16-aligned key groups, each output vec::weighted_sum_lanes. The
// block only changes which data is reused: a tile of keys or values is read once for every row
// and head of the block instead of once per row and head.
#include <cstdint>
#include <vector>

#include "model/attention_mask.h"

namespace rawflow {

struct AttentionBlock {
  int64_t rows = 0;                 // query rows
  int heads = 0;                    // heads sharing the KV head, at most 2 per call
  int64_t dim = 0;                  // head dim
  const float* const* q = nullptr;  // q[i * heads + g]: row i's query for head g
  float* const* out = nullptr;      // out[i * heads + g]
  const KeyRange* keys = nullptr;   // keys[i]: the positions row i sees
  // krows[kp - key0] / vrows[kp - key0]: the key and value rows at position kp, for every kp a
  // row sees. key0 must be at most min(keys[i].lo) rounded down to a multiple of 16.
  int64_t key0 = 0;
  const float* const* krows = nullptr;
  const float* const* vrows = nullptr;
};

// Reused between calls on one thread.
struct AttentionScratch {
  std::vector<std::vector<float>> scores;
  std::vector<float> lanes;
};

// The span of positions n rows see together: [min lo, max hi]. Consecutive rows' ranges overlap,
// so every position in it is visible to at least one of them.
KeyRange key_span(const KeyRange* keys, int64_t n);

void attend_block(const AttentionBlock& b, AttentionScratch& s);

}  // namespace rawflow
