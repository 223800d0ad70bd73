// KvCache: ring slots on sliding layers, growth on full layers, and reserve() holding a cache to
// exactly the footprint a scheduler budgets for.
#define BOOST_TEST_MODULE test_kv_cache
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <vector>

#include "model/gemma4/kv_cache.h"

using namespace rawflow;

namespace {

// The 12B's layer pattern and geometry in miniature: window 4, five sliding layers then a full
// one with a single K=V head of double width.
Gemma4Config small_config() {
  Gemma4Config c;
  c.n_layer = 6;
  c.sliding_window = 4;
  c.n_kv_head_swa = 2;
  c.head_dim_swa = 8;
  c.n_kv_head_full = 1;
  c.head_dim_full = 16;
  c.layer_sliding = {true, true, true, true, true, false};
  return c;
}

// Bytes of K and V for `positions` positions, from the geometry alone.
size_t footprint(const Gemma4Config& c, int64_t positions) {
  size_t b = 0;
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const auto g = c.layer(il);
    const int64_t slots = g.sliding ? std::min(positions, c.sliding_window) : positions;
    b += 2 * static_cast<size_t>(slots * g.n_kv_head * g.head_dim) * sizeof(float);
  }
  return b;
}

}  // namespace

BOOST_AUTO_TEST_CASE(reserve_holds_the_exact_footprint_while_advancing) {
  const Gemma4Config c = small_config();
  for (int64_t total : {1, 3, 4, 5, 37}) {
    KvCache cache(c);
    cache.reserve(total);
    BOOST_TEST(KvCache::bytes_for(c, total) == footprint(c, total), "positions " << total);
    BOOST_TEST(cache.bytes() == footprint(c, total), "reserved " << total);
    const float* full_k = nullptr;
    for (int64_t p = 0; p < total; ++p) {
      cache.reserve_and_advance(1);  // token by token, as decode does
      if (p == 0) full_k = cache.k(5, 0);
      BOOST_TEST(cache.k(5, 0) == full_k, "full layer reallocated at position " << p);
    }
    BOOST_TEST(cache.n_past() == total);
    BOOST_TEST(cache.bytes() == footprint(c, total), "after advancing to " << total);
  }
}

BOOST_AUTO_TEST_CASE(growth_without_reserve_keeps_contents_and_ring_slots) {
  const Gemma4Config c = small_config();
  KvCache cache(c);
  const int64_t row_full = 16, row_swa = 16;
  for (int64_t p = 0; p < 40; ++p) {
    cache.reserve_and_advance(1);
    for (int64_t i = 0; i < row_full; ++i) cache.k_mut(5, p)[i] = static_cast<float>(p * 100 + i);
    for (int64_t i = 0; i < row_swa; ++i) cache.v_mut(0, p)[i] = static_cast<float>(p * 100 + i);
  }
  // Full layer: every position kept through the reallocations.
  for (int64_t p = 0; p < 40; ++p) BOOST_TEST(cache.k(5, p)[3] == static_cast<float>(p * 100 + 3));
  // Sliding layer: the last `window` positions readable, in their ring slots.
  BOOST_TEST(cache.oldest_sliding() == 36);
  for (int64_t p = 36; p < 40; ++p) BOOST_TEST(cache.v(0, p)[7] == static_cast<float>(p * 100 + 7));
  // Geometric growth overshoots the footprint (the 1.5x step, then the vector's own doubling),
  // never by 2x; reserve() is what removes the overshoot.
  BOOST_TEST(cache.bytes() >= footprint(c, 40));
  BOOST_TEST(cache.bytes() < 2 * footprint(c, 40));
}
