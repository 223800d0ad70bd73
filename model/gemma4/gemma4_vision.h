#pragma once
// The gemma4uv vision embedder (spec §3.3): each 48×48 tile maps on its own to one soft token,
//   LayerNorm(6912, eps 1e-5) → dense 6912→D + bias → LayerNorm(D) → + P_x[x] + P_y[y]
//   → LayerNorm(D) → RMSNorm without weight (eps from the file, 1e-6) → projection D→out_dim.
// All tiles of all images in a call go through each step together; the two products run on
// oneDNN (model/kernels/embedder_matmul.h).
#include <cstdint>
#include <vector>

#include "model/gemma4/gemma4_mmproj.h"
#include "model/kernels/embedder_matmul.h"

namespace rawflow {

class Gemma4VisionEmbedder {
 public:
  // Throws EngineError when `mm` has no vision embedder. `mm` must outlive the embedder (its
  // F32 weights and position table are read in place).
  explicit Gemma4VisionEmbedder(const Gemma4Mmproj& mm);

  // The order `values` must be in (CHW for a GGUF mmproj, HWC for an HF checkpoint).
  PatchOrder patch_order() const { return order_; }
  int64_t out_dim() const { return projection_.out(); }
  int64_t position_rows() const { return w_.position_rows; }

  // out[t·out_dim …] = soft token of tile t, for t < n. `values`: n × 6912 floats (pixel / 255)
  // in patch_order(); pos_x / pos_y: the tile's grid column and row, each in [0, position_rows())
  // (EngineError naming the tile otherwise, before any work). Tiles are independent: a call may
  // mix tiles of several images.
  void embed_patches(const float* values, const int32_t* pos_x, const int32_t* pos_y, int64_t n,
                     float* out) const;

 private:
  // Tiles per pass through the steps, to bound the scratch (~28 KB per tile).
  static constexpr int64_t kChunkTiles = 512;
  void embed_chunk(const float* values, const int32_t* pos_x, const int32_t* pos_y, int64_t n,
                   float* out, std::vector<float>& wide, std::vector<float>& narrow) const;

  Gemma4VisionWeights w_;
  PatchOrder order_;
  int64_t dim_ = 0;
  std::vector<float> ln1_w_, ln1_b_, ln2_w_, ln2_b_, ln3_w_, ln3_b_;
  EmbedderMatmul dense_;
  EmbedderMatmul projection_;
};

}  // namespace rawflow
