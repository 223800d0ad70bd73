// attend_block (blocks of query rows × pairs of heads) against the one-row, one-head path it
// replaces — vec::dot per key, vec::softmax over the row's 16-aligned groups,
// vec::weighted_sum_lanes — bit for bit, on the key ranges attention produces: causal, sliding
// windows, bidirectional blocks that reach past a row, and a window that starts mid-group; and
// attend_rows (block planning over several sequences, keys gathered from this forward's rows and
// from each sequence's cache) against the same reference, row by row and head by head.
#define BOOST_TEST_MODULE test_attention_rows
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "model/gemma4/attention_mask.h"
#include "model/gemma4/kv_cache.h"
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

namespace {

// Two sequences in one call — one continuing a cache (some keys from the cache, some fresh), one
// starting empty — on one layer of n_head heads over n_kv KV heads, sliding with `window` or full.
void check_rows(int64_t n_head, int64_t n_kv, int64_t D, int64_t window, uint32_t seed) {
  Gemma4Config cfg;
  cfg.n_layer = 1;
  cfg.layer_sliding = {window > 0};
  cfg.n_head = n_head;
  cfg.n_kv_head_swa = cfg.n_kv_head_full = n_kv;
  cfg.head_dim_swa = cfg.head_dim_full = D;
  cfg.full_k_eq_v = false;
  cfg.sliding_window = window > 0 ? window : 4096;
  const int64_t kw = n_kv * D, qw = n_head * D;
  const std::vector<int64_t> past{45, 0}, fresh{19, 11};  // per sequence
  KvCache c0(cfg), c1(cfg);
  std::vector<KvCache*> caches{&c0, &c1};
  // All K/V rows by absolute position, per sequence; the cached ones are copied into the cache.
  std::vector<std::vector<float>> K(2), V(2);
  for (int s = 0; s < 2; ++s) {
    const int64_t n = past[s] + fresh[s];
    K[s] = randv(static_cast<size_t>(n * kw), seed + 10 * s);
    V[s] = randv(static_cast<size_t>(n * kw), seed + 10 * s + 1);
    caches[s]->reserve_and_advance(past[s]);
    for (int64_t p = 0; p < past[s]; ++p) {
      std::copy_n(K[s].data() + p * kw, kw, caches[s]->k_mut(0, p));
      std::copy_n(V[s].data() + p * kw, kw, caches[s]->v_mut(0, p));
    }
    caches[s]->reserve_and_advance(fresh[s]);  // the forward advances before attending
  }
  const std::vector<int64_t> row0{0, fresh[0], fresh[0] + fresh[1]}, first_new = past;
  const int64_t R = row0.back();
  std::vector<float> Kf(static_cast<size_t>(R * kw)), Vf = Kf;
  std::vector<KeyRange> keys(static_cast<size_t>(R));
  for (int s = 0; s < 2; ++s)
    for (int64_t i = 0; i < fresh[s]; ++i) {
      const int64_t r = row0[s] + i, p = past[s] + i;
      std::copy_n(K[s].data() + p * kw, kw, Kf.data() + r * kw);
      std::copy_n(V[s].data() + p * kw, kw, Vf.data() + r * kw);
      keys[r] = visible_keys(p, window > 0, window, -1);
    }
  const auto Q = randv(static_cast<size_t>(R * qw), seed + 99);
  std::vector<float> out(static_cast<size_t>(R * qw));
  AttentionRows a;
  a.n_head = n_head;
  a.n_kv_head = n_kv;
  a.head_dim = D;
  a.q = Q.data();
  a.k = Kf.data();
  a.v = Vf.data();
  a.out = out.data();
  a.keys = keys.data();
  a.row0 = row0;
  a.first_new = first_new;
  a.caches = caches;
  attend_rows(a);
  for (int s = 0; s < 2; ++s)
    for (int64_t i = 0; i < fresh[s]; ++i) {
      const int64_t r = row0[s] + i;
      for (int64_t h = 0; h < n_head; ++h) {
        const int64_t j = h / (n_head / n_kv);
        std::vector<const float*> kr, vr;
        for (int64_t p = 0; p <= keys[r].hi; ++p) {
          kr.push_back(K[s].data() + p * kw + j * D);
          vr.push_back(V[s].data() + p * kw + j * D);
        }
        const auto ref = one_row(Q.data() + r * qw + h * D, keys[r], 0, kr, vr, D);
        BOOST_TEST(std::memcmp(ref.data(), out.data() + r * qw + h * D, D * sizeof(float)) == 0,
                   "sequence " << s << " row " << i << " head " << h << " window " << window);
      }
    }
}

}  // namespace

BOOST_AUTO_TEST_CASE(rows_of_two_sequences_with_and_without_a_cache) {
  check_rows(4, 2, 64, 0, 20);   // pairs of heads per KV head, full attention
  check_rows(4, 2, 64, 30, 21);  // a sliding window shorter than the cached part
  check_rows(3, 1, 32, 0, 22);   // an odd number of heads per KV head: one head per block
}
