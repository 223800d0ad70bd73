#include "model/gemma4/kv_cache.h"

#include <algorithm>

namespace rawflow {

KvCache::KvCache(const Gemma4Config& cfg) : window_(cfg.sliding_window) {
  for (int64_t il = 0; il < cfg.n_layer; ++il) {
    auto g = cfg.layer(il);
    layers_.push_back({g.sliding, g.n_kv_head * g.head_dim, {}, {}});
  }
}

void KvCache::clear() {
  n_past_ = 0;
  for (auto& l : layers_) {
    l.k.clear();
    l.v.clear();
  }
}

size_t KvCache::floats_for(const Layer& l, int64_t positions) const {
  const int64_t slots = l.sliding ? std::min(positions, window_) : positions;
  return static_cast<size_t>(std::max<int64_t>(slots, 0) * l.row);
}

size_t KvCache::bytes_for(const Gemma4Config& cfg, int64_t positions) {
  const KvCache empty(cfg);  // layer geometry only; allocates no K/V
  size_t floats = 0;
  for (const auto& l : empty.layers_) floats += 2 * empty.floats_for(l, positions);
  return floats * sizeof(float);
}

void KvCache::reserve(int64_t positions) {
  for (auto& l : layers_) {
    const size_t need = floats_for(l, positions);
    l.k.reserve(need);
    l.v.reserve(need);
  }
}

void KvCache::reserve_and_advance(int64_t n) {
  const int64_t end = n_past_ + n;
  for (auto& l : layers_) {
    const size_t need = floats_for(l, end);
    if (l.k.size() < need) {
      // Full layers grow geometrically when they must reallocate, so a long conversation is not
      // quadratic in copies; within a reservation they grow to exactly what is needed.
      const bool realloc = need > l.k.capacity();
      const size_t size = !l.sliding && realloc ? std::max(need, l.k.size() * 3 / 2) : need;
      l.k.resize(size);
      l.v.resize(size);
    }
  }
  n_past_ = end;
}

const float* KvCache::slot(int64_t il, int64_t pos, bool value) const {
  const Layer& l = layers_[static_cast<size_t>(il)];
  const int64_t s = l.sliding ? pos % window_ : pos;
  return (value ? l.v.data() : l.k.data()) + s * l.row;
}

size_t KvCache::bytes() const {
  size_t b = 0;
  for (const auto& l : layers_) b += (l.k.capacity() + l.v.capacity()) * sizeof(float);
  return b;
}

}  // namespace rawflow
