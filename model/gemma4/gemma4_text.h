#pragma once
// The Gemma 4 text decoder (spec §2): one forward pass over any number of sequences at once.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/formats/weight_source.h"
#include "model/gemma4/gemma4_config.h"
#include "model/gemma4/kv_cache.h"
#include "model/kernels/linear.h"

namespace rawflow {

enum class LogitsWanted { None, Last, All };

// New tokens of one sequence for one forward pass. Positions continue the sequence's cache.
struct SequenceChunk {
  KvCache* cache = nullptr;
  std::vector<int32_t> tokens;
  // Optional, one per token: a soft-token embedding row (hidden floats) replacing the token's
  // embedding, used unscaled (spec §2.2); nullptr for ordinary text tokens.
  std::vector<const float*> soft_rows;
  // Optional, one per token: id of the bidirectional block (an image or video frame) the token
  // belongs to, -1 for none. Tokens of one block must be consecutive and all in this chunk.
  std::vector<int32_t> block_ids;
  LogitsWanted logits = LogitsWanted::Last;
};

struct ForwardOptions {
  // llama.cpp decodes an image chunk non-causally on every layer; HF's generate path only on
  // sliding layers (spec §2.8). Default: HF.
  bool bidirectional_on_full_layers = false;
  // Rows of logits are soft-capped and suppressed ids set to -inf.
  bool suppress = true;
};

struct ForwardResult {
  // For each chunk, its logits rows (vocab floats each): 0, 1 or tokens.size() rows.
  std::vector<std::vector<float>> logits;
};

struct LoadOptions {
  int threads = 0;  // 0 = all cores
  // Every matrix product on our kernels, summed in llama.cpp's order (BF16 prefill is slower):
  // for parity checks against llama.cpp (docs/model.md).
  bool llama_order = false;
  // Ids forced to -inf in every logits row; when empty, the file's own list (spec §2.10).
  std::vector<int32_t> suppress_ids;
};

class Gemma4Text {
 public:
  // Takes the weight source (GGUF or HF directory); checks every tensor's name, dtype and shape.
  explicit Gemma4Text(std::unique_ptr<WeightSource> weights, const LoadOptions& opt = {});
  ~Gemma4Text();

  const Gemma4Config& config() const { return cfg_; }
  const WeightSource& weights() const { return *weights_; }

  // One call at a time: activations live in a workspace reused across calls, so a steady stream
  // of forwards does not fault fresh pages in every time.
  ForwardResult forward(std::span<SequenceChunk> chunks, const ForwardOptions& opt = {}) const;

  // The kernels batched products run on (Linear::batch_kernel): the layers' MLP and the head.
  std::string batch_kernels() const;

  // The embedding row of a text token, scaled by sqrt(hidden) (spec §2.2).
  void embed_token(int32_t id, float* out) const;

 private:
  struct Layer;
  struct Workspace;
  void attention(const Layer& L, int64_t il, std::span<SequenceChunk> chunks,
                 const std::vector<int64_t>& row0, float* x_norm, float* out,
                 const ForwardOptions& opt) const;

  std::unique_ptr<WeightSource> weights_;
  Gemma4Config cfg_;
  std::vector<Layer> layers_;
  std::vector<float> output_norm_;
  Linear lm_head_;  // tied to token_embd
  const TensorRef* token_embd_ = nullptr;
  float embed_scale_ = 0.f;
  std::unique_ptr<Workspace> ws_;
};

}  // namespace rawflow
