#pragma once
// Per-sequence attention memory (spec §2.12). Sliding layers keep a ring of `window` slots — a
// query never looks further back — and full layers keep every position, so a context is bounded
// only by memory. Values are f32: unscaled 256/512-wide dot products make an f16 cache noticeably
// noisy.
#include <cstdint>
#include <vector>

#include "model/gemma4/gemma4_config.h"

namespace rawflow {

class KvCache {
 public:
  explicit KvCache(const Gemma4Config& cfg);

  // Positions stored so far (the next token's position).
  int64_t n_past() const { return n_past_; }
  void clear();

  // Row of K (or V) for `pos` on layer `il`: n_kv_head × head_dim floats. `pos` must be readable:
  // on sliding layers within the last `window` positions.
  const float* k(int64_t il, int64_t pos) const { return slot(il, pos, false); }
  const float* v(int64_t il, int64_t pos) const { return slot(il, pos, true); }
  float* k_mut(int64_t il, int64_t pos) { return const_cast<float*>(slot(il, pos, false)); }
  float* v_mut(int64_t il, int64_t pos) { return const_cast<float*>(slot(il, pos, true)); }

  // Allocates room for `positions` positions in total, once, so that advancing up to there never
  // reallocates: a scheduler that knows a request's prompt + max_new_tokens holds exactly its
  // estimate instead of a geometric overshoot.
  void reserve(int64_t positions);
  // Makes room for positions [n_past, n_past + n) and marks them stored.
  void reserve_and_advance(int64_t n);
  // Oldest position a sliding layer can still read.
  int64_t oldest_sliding() const { return n_past_ > window_ ? n_past_ - window_ : 0; }
  // What bytes() reports once `positions` positions are stored in a cache reserved for them:
  // per layer K and V rows of n_kv_head × head_dim floats, for min(positions, window) positions
  // on sliding layers and all of them on full layers (spec §2.12). K=V layers store both too.
  static size_t bytes_for(const Gemma4Config& cfg, int64_t positions);
  size_t bytes() const;

 private:
  const float* slot(int64_t il, int64_t pos, bool value) const;
  struct Layer {
    bool sliding;
    int64_t row;  // floats per position
    std::vector<float> k, v;
  };
  // Floats of K (or V) that `positions` positions occupy on layer l.
  size_t floats_for(const Layer& l, int64_t positions) const;
  std::vector<Layer> layers_;
  int64_t window_;
  int64_t n_past_ = 0;
};

}  // namespace rawflow
