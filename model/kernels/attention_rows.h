#pragma once
// Masked softmax attention for a block of consecutive query rows of one sequence and the heads
// that share one KV head, in llama.cpp's orders bit for bit: each score is vec::dot, each row's
// softmax vec::softmax over its 16-aligned key groups, each output vec::weighted_sum_lanes. The
// block only changes which data is reused: a tile of keys or values is read once for every row
// and head of the block instead of once per row and head.
#include <cstdint>
#include <span>
#include <vector>

#include "model/gemma4/attention_mask.h"

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

class KvCache;

// One layer's attention over every query row of a forward (several sequences, each a run of
// consecutive rows). The rows are cut into blocks of up to 8 consecutive rows of one sequence,
// each taken with a pair of heads that share a KV head (when the heads per KV head are even), and
// the blocks spread over the OpenMP threads; each block gathers the key and value rows it sees —
// this forward's own for new positions, the sequence's cache for earlier ones — and goes through
// attend_block. Same bits as one row and head at a time.
struct AttentionRows {
  int64_t n_head = 0, n_kv_head = 0, head_dim = 0;
  const float* q = nullptr;        // rows × n_head·head_dim, normed and rotated
  const float* k = nullptr;        // this forward's keys: rows × n_kv_head·head_dim
  const float* v = nullptr;        // and values
  float* out = nullptr;            // rows × n_head·head_dim
  const KeyRange* keys = nullptr;  // per row: the positions it sees (spec §2.8)
  // Sequence c: rows [row0[c], row0[c + 1]) at positions first_new[c], first_new[c] + 1, …;
  // positions before first_new[c] are read from *caches[c] on layer `layer`.
  std::span<const int64_t> row0;
  std::span<const int64_t> first_new;
  std::span<KvCache* const> caches;
  int64_t layer = 0;
};

void attend_rows(const AttentionRows& a);

}  // namespace rawflow
