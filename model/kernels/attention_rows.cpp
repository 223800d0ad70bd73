#include "model/kernels/attention_rows.h"

#include <omp.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "model/gemma4/kv_cache.h"
#include "model/kernels/isa.h"
#include "model/kernels/vec.h"

namespace rawflow {

namespace {

// Keys per score tile: 32 rows of 256–512 floats (32–64 KB) stay in L2 while every query of the
// block takes its dots against them.
constexpr int64_t kKeyTile = 32;
// Values per weighted-sum tile, likewise.
constexpr int64_t kValueTile = 64;
// Query rows per block: neighbouring rows of a sequence see nearly the same keys, so a block
// reads each key and value once for all of them.
constexpr int64_t kRowBlock = 8;

// A row's scores start at its first visible key rounded down to 16 and end at the group of 16
// holding its last one: the layout llama.cpp's softmax and weighted sum see (cell = position).
int64_t first_group(const KeyRange& k) { return k.lo & ~int64_t{15}; }
int64_t end_group(const KeyRange& k) { return (k.hi + 16) & ~int64_t{15}; }

}  // namespace

KeyRange key_span(const KeyRange* keys, int64_t n) {
  KeyRange u = keys[0];
  for (int64_t i = 1; i < n; ++i) {
    u.lo = std::min(u.lo, keys[i].lo);
    u.hi = std::max(u.hi, keys[i].hi);
  }
  return u;
}

void attend_block(const AttentionBlock& b, AttentionScratch& s) {
  const int G = b.heads;
  const int64_t n = b.rows, D = b.dim;
  const auto [ulo, uhi] = key_span(b.keys, n);

  if (s.scores.size() < static_cast<size_t>(n * G)) s.scores.resize(static_cast<size_t>(n * G));
  for (int64_t i = 0; i < n; ++i)
    for (int g = 0; g < G; ++g)
      s.scores[i * G + g].assign(static_cast<size_t>(end_group(b.keys[i]) - first_group(b.keys[i])),
                                 -std::numeric_limits<float>::infinity());

  float sv[2];
  for (int64_t kt = ulo; kt <= uhi; kt += kKeyTile)
    for (int64_t i = 0; i < n; ++i) {
      const KeyRange& k = b.keys[i];
      const int64_t a0 = first_group(k);
      for (int64_t kp = std::max(kt, k.lo); kp <= std::min(kt + kKeyTile - 1, k.hi); ++kp) {
        vec::dot_multi(b.q + i * G, G, b.krows[kp - b.key0], D, sv);
        for (int g = 0; g < G; ++g) s.scores[i * G + g][kp - a0] = sv[g];
      }
    }
  for (int64_t i = 0; i < n * G; ++i)
    vec::softmax(s.scores[i].data(), static_cast<int64_t>(s.scores[i].size()));

  const int64_t lanes_per_row = int64_t{G} * kSimdFloats * D;
  s.lanes.assign(static_cast<size_t>(n * lanes_per_row), 0.0f);
  for (int64_t vt = ulo; vt <= uhi; vt += kValueTile)
    for (int64_t i = 0; i < n; ++i) {
      const KeyRange& k = b.keys[i];
      const int64_t a0 = first_group(k);
      const int64_t from = std::max(vt, k.lo), to = std::min(vt + kValueTile, k.hi + 1);
      if (from >= to) continue;
      const float* p[2] = {s.scores[i * G].data(), G > 1 ? s.scores[i * G + 1].data() : nullptr};
      // Indices relative to the row's first group, as weighted_sum_lanes numbers its keys.
      vec::lanes_add(p, G, b.vrows + (a0 - b.key0), from - a0, to - a0, D,
                     s.lanes.data() + i * lanes_per_row);
    }
  for (int64_t i = 0; i < n; ++i)
    vec::lanes_finish(s.lanes.data() + i * lanes_per_row, G, D, b.out + i * G);
}

void attend_rows(const AttentionRows& a) {
  const int64_t D = a.head_dim, H = a.n_head, KV = a.n_kv_head;
  const int64_t qw = H * D, kw = KV * D;
  const int64_t n_rep = H / KV;
  const int hg = n_rep % 2 == 0 ? 2 : 1;
  std::vector<std::pair<int64_t, int64_t>> blocks;  // [first row, end row) within one sequence
  std::vector<int64_t> seq_of;
  for (size_t c = 0; c + 1 < a.row0.size(); ++c)
    for (int64_t r = a.row0[c]; r < a.row0[c + 1]; r += kRowBlock) {
      blocks.emplace_back(r, std::min(r + kRowBlock, a.row0[c + 1]));
      seq_of.push_back(static_cast<int64_t>(c));
    }
  const int64_t items = static_cast<int64_t>(blocks.size()) * (H / hg);
#pragma omp parallel
  {
    AttentionScratch scratch;
    std::vector<const float*> q, krows, vrows;
    std::vector<float*> outs;
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const size_t bi = static_cast<size_t>(item / (H / hg));
      const auto [r0, r1] = blocks[bi];
      const int64_t c = seq_of[bi];
      const int64_t h0 = item % (H / hg) * hg;
      const int64_t j = h0 / n_rep;  // the KV head of heads h0 … h0 + hg − 1
      q.clear();
      outs.clear();
      for (int64_t r = r0; r < r1; ++r)
        for (int g = 0; g < hg; ++g) {
          q.push_back(a.q + r * qw + (h0 + g) * D);
          outs.push_back(a.out + r * qw + (h0 + g) * D);
        }
      const auto [lo, hi] = key_span(a.keys + r0, r1 - r0);
      // Only [lo, hi] is looked up: below lo a sliding ring may already hold other positions.
      const int64_t key0 = lo & ~int64_t{15};
      krows.assign(static_cast<size_t>(hi + 1 - key0), nullptr);
      vrows.assign(static_cast<size_t>(hi + 1 - key0), nullptr);
      const KvCache& cache = *a.caches[c];
      const int64_t first_new = a.first_new[c];
      for (int64_t kp = lo; kp <= hi; ++kp) {
        const bool fresh = kp >= first_new;
        const int64_t fr = a.row0[c] + kp - first_new;
        krows[kp - key0] = fresh ? a.k + fr * kw + j * D : cache.k(a.layer, kp) + j * D;
        vrows[kp - key0] = fresh ? a.v + fr * kw + j * D : cache.v(a.layer, kp) + j * D;
      }
      AttentionBlock b;
      b.rows = r1 - r0;
      b.heads = hg;
      b.dim = D;
      b.q = q.data();
      b.out = outs.data();
      b.keys = a.keys + r0;
      b.key0 = key0;
      b.krows = krows.data();
      b.vrows = vrows.data();
      attend_block(b, scratch);
    }
  }
}

}  // namespace rawflow
