// attend_block (blocks of query rows × pairs of heads) against the one-row, one-head path it
// replaces — vec::dot per key, vec::softmax over the row's 16-aligned groups,
// vec::weighted_sum_lanes — bit for bit, on the key ranges attention produces: causal, sliding
// windows, bidirectional blocks that reach past a row, and a window that starts mid-group.
#define BOOST_TEST_MODULE test_attention_rows
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "model/attention_mask.h"
#include "model/kernels/attention_rows.h"
#include "model/kernels/vec.h"

using namespace rawflow;

namespace {

std::vector<float> randv(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// The single-row, single-head reference: what attention computed before blocks.
std::vector<float> one_row(const float* q, const KeyRange& k, int64_t key0,
                           const std::vector<const float*>& krows,
                           const std::vector<const float*>& vrows, int64_t D) {
  const int64_t a0 = k.lo & ~int64_t{15}, a1 = (k.hi + 16) & ~int64_t{15};
  std::vector<float> scores(static_cast<size_t>(a1 - a0), -std::numeric_limits<float>::infinity());
  std::vector<const float*> rows(static_cast<size_t>(a1 - a0), nullptr);
  for (int64_t kp = k.lo; kp <= k.hi; ++kp) {
    scores[kp - a0] = vec::dot(q, krows[kp - key0], D);
    rows[kp - a0] = vrows[kp - key0];
  }
  vec::softmax(scores.data(), a1 - a0);
  std::vector<float> lanes(static_cast<size_t>(16 * D)), out(static_cast<size_t>(D));
  vec::weighted_sum_lanes(scores.data(), rows.data(), a1 - a0, D, lanes.data(), out.data());
  return out;
}

// Rows at positions first..first+n-1 of a sequence with `n_keys` keys; sliding with `window` if
// > 0; rows whose index is in [bidir_from, bidir_to) form one bidirectional block.
void check(int64_t n_keys, int64_t first, int64_t n, int64_t window, int64_t bidir_from,
           int64_t bidir_to, int heads, int64_t D, uint32_t seed) {
  auto kv = randv(static_cast<size_t>(2 * n_keys * D), seed);
  auto qv = randv(static_cast<size_t>(n * heads * D), seed + 1);
  std::vector<KeyRange> keys;
  for (int64_t i = 0; i < n; ++i) {
    const bool in_block = i >= bidir_from && i < bidir_to;
    keys.push_back(
        visible_keys(first + i, window > 0, window, in_block ? first + bidir_to - 1 : -1));
  }
  const auto [lo, hi] = key_span(keys.data(), n);
  const int64_t key0 = lo & ~int64_t{15};
  std::vector<const float*> krows(static_cast<size_t>(hi + 1 - key0), nullptr), vrows = krows;
  for (int64_t kp = lo; kp <= hi; ++kp) {
    krows[kp - key0] = kv.data() + kp * D;
    vrows[kp - key0] = kv.data() + (n_keys + kp) * D;
  }
  std::vector<float> out(static_cast<size_t>(n * heads * D));
  std::vector<const float*> q;
  std::vector<float*> outs;
  for (int64_t i = 0; i < n; ++i)
    for (int g = 0; g < heads; ++g) {
      q.push_back(qv.data() + (i * heads + g) * D);
      outs.push_back(out.data() + (i * heads + g) * D);
    }
  AttentionBlock b;
  b.rows = n;
  b.heads = heads;
  b.dim = D;
  b.q = q.data();
  b.out = outs.data();
  b.keys = keys.data();
  b.key0 = key0;
  b.krows = krows.data();
  b.vrows = vrows.data();
  AttentionScratch s;
  attend_block(b, s);
  attend_block(b, s);  // scratch reused: same result
  for (int64_t i = 0; i < n; ++i)
    for (int g = 0; g < heads; ++g) {
      const auto ref = one_row(q[i * heads + g], keys[i], key0, krows, vrows, D);
      BOOST_TEST(std::memcmp(ref.data(), outs[i * heads + g], D * sizeof(float)) == 0,
                 "keys " << n_keys << " first " << first << " row " << i << " head " << g
                         << " window " << window << " D " << D);
    }
}

}  // namespace

BOOST_AUTO_TEST_CASE(causal_prefill_from_the_start) {
  for (int heads : {1, 2}) check(200, 0, 8, 0, 0, 0, heads, 256, 1);
}

BOOST_AUTO_TEST_CASE(continuing_a_cache_with_a_partial_last_block) {
  check(300, 290, 5, 0, 0, 0, 2, 512, 2);
  check(300, 137, 3, 0, 0, 0, 1, 40, 3);
}

BOOST_AUTO_TEST_CASE(sliding_window_starting_mid_group) {
  // Window 37 over positions 100..107: each row's first key moves by one, off the 16-grid.
  check(120, 100, 8, 37, 0, 0, 2, 256, 4);
  check(2100, 2040, 8, 1024, 0, 0, 2, 256, 5);
}

BOOST_AUTO_TEST_CASE(bidirectional_block_reaching_past_the_rows) {
  // Rows 2..5 are one image block: they see up to its end, later rows only causally.
  check(64, 40, 8, 0, 2, 6, 2, 256, 6);
  check(64, 40, 8, 20, 2, 6, 2, 64, 7);
  check(64, 40, 8, 0, 3, 12, 1, 256, 8);  // the block runs past the rows of this call
}

BOOST_AUTO_TEST_CASE(one_row_decode) { check(1500, 1499, 1, 1024, 0, 0, 2, 256, 9); }
