// Gemma 4 unified, text decoder — read alongside spec §2. Each step names the section it
// implements.
#include "model/gemma4/gemma4_text.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "model/error.h"
#include "model/formats/quant.h"
#include "model/formats/tensor_source.h"
#include "model/gemma4/attention_mask.h"
#include "model/kernels/attention_rows.h"
#include "model/kernels/vec.h"

namespace rawflow {

struct Gemma4Text::Layer {
  Gemma4LayerGeometry g;
  std::vector<float> attn_norm, q_norm, k_norm, post_attn_norm, ffn_norm, post_ffw_norm;
  float out_scale = 1.f;
  Linear q, k, v, o, gate, up, down;
  bool has_v = false;
  // RoPE (spec §2.6): ω_i = theta_scale^i for the first `rotated_pairs` pairs.
  float theta_scale = 1.f;
};

// Rows per MLP block (see forward): large enough for brgemm to run at full speed.
constexpr int64_t kMlpBlockRows = 128;

struct Gemma4Text::Workspace {
  std::vector<float> X, xn, branch, gate, up, Q, K, V, attn;
};

namespace {

// Grows `v` to at least n floats (never shrinks, never clears) and returns its storage.
float* grow(std::vector<float>& v, int64_t n) {
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  return v.data();
}

std::vector<float> load_vector(const WeightSource& w, const std::string& name, int64_t n) {
  const TensorRef& t = require_float_tensor(w, name, {n}, "norm vectors");
  std::vector<float> v(static_cast<size_t>(n));
  dequantize_row(t.dtype, t.data, v.data(), n);
  return v;
}

Linear load_matrix(const WeightSource& w, const std::string& name, int64_t in, int64_t out,
                   bool llama_order) {
  const TensorRef& t = require_tensor(w, name, {in, out});
  if (in % dtype_traits(t.dtype).block_elems != 0)
    throw ModelFileError(w.where(name) + ": row length " + std::to_string(in) +
                         " is not a multiple of the " + std::string(dtype_name(t.dtype)) +
                         " block size");
  LinearOptions opt;
  opt.llama_order = llama_order;
  return Linear(t, opt);
}

// cos/sin of the rotated pairs at one position, computed as llama.cpp and HF do: in float, the
// angle p·ω_i with ω_i built by repeated multiplication (ggml_rope_cache_init). Computing them in
// double would be closer to the real numbers but not to either reference, and on a random model a
// 1e-5 difference in the angles moves log-probs by ~1e-2 (docs/model.md).
void rope_cache(int64_t pos, float theta_scale, int64_t rotated_pairs, float* cos_out,
                float* sin_out) {
  float theta = static_cast<float>(pos);
  for (int64_t i = 0; i < rotated_pairs; ++i) {
    cos_out[i] = std::cos(theta);
    sin_out[i] = std::sin(theta);
    theta *= theta_scale;
  }
}

// NeoX ("rotate half") RoPE on one head: pairs (i, i + D/2) for the rotated i (spec §2.6); the
// other pairs see angle 0 (proportional RoPE of full layers).
void rope_head(float* u, int64_t head_dim, const float* c, const float* s, int64_t rotated_pairs) {
  const int64_t half = head_dim / 2;
  for (int64_t i = 0; i < rotated_pairs; ++i) {
    const float a = u[i], b = u[i + half];
    u[i] = a * c[i] - b * s[i];
    u[i + half] = a * s[i] + b * c[i];
  }
}

}  // namespace

Gemma4Text::Gemma4Text(std::unique_ptr<WeightSource> weights, const LoadOptions& opt)
    : weights_(std::move(weights)), cfg_(weights_->config()), ws_(std::make_unique<Workspace>()) {
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  if (!opt.suppress_ids.empty()) cfg_.suppress_ids = opt.suppress_ids;
  const WeightSource& w = *weights_;
  const int64_t d = cfg_.hidden;
  token_embd_ = &require_tensor(w, "token_embd.weight", {d, cfg_.vocab_size});
  // llama.cpp scales token embeddings by sqrtf(n_embd) in f32; HF-bf16 by 62.0 (spec §2.2). We
  // follow llama.cpp: it is the exact value and the reference our parity tests run against.
  embed_scale_ = std::sqrt(static_cast<float>(d));
  output_norm_ = load_vector(w, "output_norm.weight", d);
  // The tied head reads the embedding in place, as the lookups do.
  LinearOptions head_opt;
  head_opt.llama_order = opt.llama_order;
  lm_head_ = Linear(*token_embd_, head_opt);

  for (int64_t il = 0; il < cfg_.n_layer; ++il) {
    Layer L;
    L.g = cfg_.layer(il);
    const std::string p = "blk." + std::to_string(il) + ".";
    const int64_t D = L.g.head_dim, H = L.g.n_head, KV = L.g.n_kv_head;
    L.attn_norm = load_vector(w, p + "attn_norm.weight", d);
    L.post_attn_norm = load_vector(w, p + "post_attention_norm.weight", d);
    L.ffn_norm = load_vector(w, p + "ffn_norm.weight", d);
    L.post_ffw_norm = load_vector(w, p + "post_ffw_norm.weight", d);
    L.q_norm = load_vector(w, p + "attn_q_norm.weight", D);
    L.k_norm = load_vector(w, p + "attn_k_norm.weight", D);
    L.out_scale = load_vector(w, p + "layer_output_scale.weight", 1)[0];
    L.q = load_matrix(w, p + "attn_q.weight", d, H * D, opt.llama_order);
    L.k = load_matrix(w, p + "attn_k.weight", d, KV * D, opt.llama_order);
    L.has_v = w.find(p + "attn_v.weight") != nullptr;
    if (L.has_v) L.v = load_matrix(w, p + "attn_v.weight", d, KV * D, opt.llama_order);
    if (!L.has_v && L.g.sliding)
      throw ModelFileError(w.path() + ": tensor " + w.missing_name(p + "attn_v.weight") +
                           " is missing (only full layers take V from the K projection)");
    L.o = load_matrix(w, p + "attn_output.weight", H * D, d, opt.llama_order);
    L.gate = load_matrix(w, p + "ffn_gate.weight", d, cfg_.ffn, opt.llama_order);
    L.up = load_matrix(w, p + "ffn_up.weight", d, cfg_.ffn, opt.llama_order);
    L.down = load_matrix(w, p + "ffn_down.weight", cfg_.ffn, d, opt.llama_order);
    // ω_i = θ^(−2i/D): the exponent's denominator is the full head dim even when only the first
    // pairs rotate (proportional RoPE of full layers).
    L.theta_scale = std::pow(L.g.rope_theta, -2.0f / static_cast<float>(D));
    layers_.push_back(std::move(L));
  }
}

Gemma4Text::~Gemma4Text() = default;

std::string Gemma4Text::batch_kernels() const {
  std::string layers = layers_.empty() ? "none" : layers_.front().gate.batch_kernel();
  return "layers " + layers + ", head " + lm_head_.batch_kernel();
}

void Gemma4Text::embed_token(int32_t id, float* out) const {
  if (id < 0 || id >= cfg_.vocab_size)
    throw EngineError("token id " + std::to_string(id) + " is outside the vocabulary (size " +
                      std::to_string(cfg_.vocab_size) + ")");
  const size_t row = dtype_row_bytes(token_embd_->dtype, cfg_.hidden);
  dequantize_row(token_embd_->dtype, static_cast<const uint8_t*>(token_embd_->data) + id * row, out,
                 cfg_.hidden);
  for (int64_t i = 0; i < cfg_.hidden; ++i) out[i] *= embed_scale_;
}

// Spec §2.5–2.8: projections, per-head norms, RoPE, masked softmax attention, output projection.
void Gemma4Text::attention(const Layer& L, int64_t il, std::span<SequenceChunk> chunks,
                           const std::vector<int64_t>& row0, float* xn, float* out,
                           const ForwardOptions& opt) const {
  const int64_t R = row0.back();
  const int64_t D = L.g.head_dim, H = L.g.n_head, KV = L.g.n_kv_head;
  const int64_t qw = H * D, kw = KV * D;
  float* Q = grow(ws_->Q, R * qw);
  float* K = grow(ws_->K, R * kw);
  float* V = grow(ws_->V, R * kw);
  L.q.forward(xn, R, Q);
  L.k.forward(xn, R, K);
  // Full layers have no v_proj: V is the raw K projection, before k_norm and RoPE (§2.5 step 3).
  if (L.has_v)
    L.v.forward(xn, R, V);
  else
    std::copy_n(K, R * kw, V);

  // Positions of each row: chunk c's rows continue its cache from base[c].
  std::vector<int64_t> base(chunks.size());
  for (size_t c = 0; c < chunks.size(); ++c)
    base[c] = chunks[c].cache->n_past() - chunks[c].tokens.size();
  std::vector<int64_t> pos(static_cast<size_t>(R));
  for (size_t c = 0; c < chunks.size(); ++c)
    for (int64_t r = row0[c]; r < row0[c + 1]; ++r) pos[r] = base[c] + (r - row0[c]);

  const int64_t n_rot = L.g.rope_rotated_pairs;
#pragma omp parallel
  {
    std::vector<float> cs(static_cast<size_t>(2 * n_rot));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < R; ++r) {
      rope_cache(pos[r], L.theta_scale, n_rot, cs.data(), cs.data() + n_rot);
      for (int64_t h = 0; h < H; ++h) {
        float* q = Q + r * qw + h * D;
        vec::rms_norm(q, L.q_norm.data(), cfg_.rms_eps, D, q);
        rope_head(q, D, cs.data(), cs.data() + n_rot, n_rot);
      }
      for (int64_t j = 0; j < KV; ++j) {
        float* k = K + r * kw + j * D;
        vec::rms_norm(k, L.k_norm.data(), cfg_.rms_eps, D, k);
        rope_head(k, D, cs.data(), cs.data() + n_rot, n_rot);
        float* v = V + r * kw + j * D;
        vec::rms_norm(v, nullptr, cfg_.rms_eps, D, v);
      }
    }
  }

  // Keys visible to each query (spec §2.8): causal, plus the window on sliding layers, plus the
  // rest of its own image block where bidirectional attention applies.
  const bool bidir_here = L.g.sliding || opt.bidirectional_on_full_layers;
  std::vector<KeyRange> keys(static_cast<size_t>(R));
  for (size_t c = 0; c < chunks.size(); ++c) {
    const SequenceChunk& ch = chunks[c];
    const int64_t n = static_cast<int64_t>(ch.tokens.size());
    for (int64_t i = 0; i < n; ++i) {
      int64_t block_end = -1;
      if (bidir_here && !ch.block_ids.empty() && ch.block_ids[i] >= 0) {
        int64_t e = i;
        while (e + 1 < n && ch.block_ids[e + 1] == ch.block_ids[i]) ++e;
        block_end = base[c] + e;
      }
      keys[row0[c] + i] = visible_keys(base[c] + i, L.g.sliding, cfg_.sliding_window, block_end);
    }
  }

  // Scores use scale 1.0 (q/k norms carry it) and no soft-cap (spec §2.7).
  std::vector<KvCache*> caches(chunks.size());
  for (size_t c = 0; c < chunks.size(); ++c) caches[c] = chunks[c].cache;
  float* attn = grow(ws_->attn, R * qw);
  AttentionRows a;
  a.n_head = H;
  a.n_kv_head = KV;
  a.head_dim = D;
  a.q = Q;
  a.k = K;
  a.v = V;
  a.out = attn;
  a.keys = keys.data();
  a.row0 = row0;
  a.first_new = base;
  a.caches = caches;
  a.layer = il;
  attend_rows(a);

  // The new keys and values join the cache in position order, so on a sliding ring the last
  // `window` of a long chunk are the ones that remain.
  for (size_t c = 0; c < chunks.size(); ++c) {
    KvCache& cache = *chunks[c].cache;
    for (int64_t r = row0[c]; r < row0[c + 1]; ++r) {
      std::copy_n(K + r * kw, kw, cache.k_mut(il, pos[r]));
      std::copy_n(V + r * kw, kw, cache.v_mut(il, pos[r]));
    }
  }
  L.o.forward(attn, R, out);
}

ForwardResult Gemma4Text::forward(std::span<SequenceChunk> chunks,
                                  const ForwardOptions& opt) const {
  const int64_t d = cfg_.hidden;
  std::vector<int64_t> row0{0};
  for (auto& ch : chunks) {
    if (!ch.cache) throw EngineError("forward: a chunk has no KV cache");
    if (!ch.soft_rows.empty() && ch.soft_rows.size() != ch.tokens.size())
      throw EngineError("forward: soft_rows must be empty or one per token");
    if (!ch.block_ids.empty() && ch.block_ids.size() != ch.tokens.size())
      throw EngineError("forward: block_ids must be empty or one per token");
    row0.push_back(row0.back() + static_cast<int64_t>(ch.tokens.size()));
  }
  const int64_t R = row0.back();
  ForwardResult result;
  result.logits.resize(chunks.size());
  if (R == 0) return result;

  // §2.2: text tokens are looked up and scaled; soft tokens are used as given.
  float* X = grow(ws_->X, R * d);
  for (size_t c = 0; c < chunks.size(); ++c)
    for (int64_t r = row0[c]; r < row0[c + 1]; ++r) {
      const size_t i = static_cast<size_t>(r - row0[c]);
      const float* soft = chunks[c].soft_rows.empty() ? nullptr : chunks[c].soft_rows[i];
      if (soft)
        std::copy_n(soft, d, X + r * d);
      else
        embed_token(chunks[c].tokens[i], X + r * d);
    }
  for (auto& ch : chunks) ch.cache->reserve_and_advance(static_cast<int64_t>(ch.tokens.size()));

  float* xn = grow(ws_->xn, R * d);
  float* branch = grow(ws_->branch, R * d);
  // The MLP's ffn-wide activations are the largest buffers of a prefill (2 × rows × 15360 floats
  // on the 12B); running it over blocks of rows bounds them without changing any row's result.
  const int64_t mlp_rows = std::min<int64_t>(R, kMlpBlockRows);
  float* gate = grow(ws_->gate, mlp_rows * cfg_.ffn);
  float* up = grow(ws_->up, mlp_rows * cfg_.ffn);
  for (int64_t il = 0; il < cfg_.n_layer; ++il) {
    const Layer& L = layers_[static_cast<size_t>(il)];
    // §2.4: pre-norm, attention, post-norm, residual.
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; ++r)
      vec::rms_norm(X + r * d, L.attn_norm.data(), cfg_.rms_eps, d, xn + r * d);
    attention(L, il, chunks, row0, xn, branch, opt);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; ++r) {
      float* b = branch + r * d;
      vec::rms_norm(b, L.post_attn_norm.data(), cfg_.rms_eps, d, b);
      float* x = X + r * d;
      for (int64_t i = 0; i < d; ++i) x[i] += b[i];
      vec::rms_norm(x, L.ffn_norm.data(), cfg_.rms_eps, d, xn + r * d);
    }
    // §2.9: GeGLU with tanh GELU.
    for (int64_t r0 = 0; r0 < R; r0 += mlp_rows) {
      const int64_t m = std::min(mlp_rows, R - r0);
      L.gate.forward(xn + r0 * d, m, gate);
      L.up.forward(xn + r0 * d, m, up);
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < m; ++r)
        vec::geglu_tanh(gate + r * cfg_.ffn, up + r * cfg_.ffn, gate + r * cfg_.ffn, cfg_.ffn);
      L.down.forward(gate, m, branch + r0 * d);
    }
    // §2.4: post-norm, residual, then the layer scalar on the whole residual stream.
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; ++r) {
      float* b = branch + r * d;
      vec::rms_norm(b, L.post_ffw_norm.data(), cfg_.rms_eps, d, b);
      float* x = X + r * d;
      for (int64_t i = 0; i < d; ++i) x[i] = (x[i] + b[i]) * L.out_scale;
    }
  }

  // §2.10: final norm, tied head, soft-cap, suppressed ids — only for the rows asked for.
  std::vector<int64_t> rows;
  for (size_t c = 0; c < chunks.size(); ++c) {
    if (chunks[c].logits == LogitsWanted::All)
      for (int64_t r = row0[c]; r < row0[c + 1]; ++r) rows.push_back(r);
    else if (chunks[c].logits == LogitsWanted::Last && row0[c + 1] > row0[c])
      rows.push_back(row0[c + 1] - 1);
  }
  if (rows.empty()) return result;
  const int64_t n_rows = static_cast<int64_t>(rows.size());
  std::vector<float> Y(static_cast<size_t>(n_rows * d));
  for (int64_t i = 0; i < n_rows; ++i)
    vec::rms_norm(X + rows[i] * d, output_norm_.data(), cfg_.rms_eps, d, Y.data() + i * d);
  const int64_t nv = cfg_.vocab_size;
  std::vector<float> logits(static_cast<size_t>(n_rows * nv));
  lm_head_.forward(Y.data(), n_rows, logits.data());
  const float cap = cfg_.final_logit_softcap;
  if (cap > 0.f) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n_rows * nv; ++i) logits[i] = cap * std::tanh(logits[i] / cap);
  }
  if (opt.suppress)
    for (int64_t i = 0; i < n_rows; ++i)
      for (int32_t id : cfg_.suppress_ids)
        if (id >= 0 && id < nv) logits[i * nv + id] = -std::numeric_limits<float>::infinity();

  int64_t i = 0;
  for (size_t c = 0; c < chunks.size(); ++c) {
    const int64_t n = chunks[c].logits == LogitsWanted::All ? row0[c + 1] - row0[c]
                      : chunks[c].logits == LogitsWanted::Last && row0[c + 1] > row0[c] ? 1
                                                                                        : 0;
    result.logits[c].assign(logits.begin() + i * nv, logits.begin() + (i + n) * nv);
    i += n;
  }
  return result;
}

}  // namespace rawflow
