#pragma once
// The gemma4ua audio embedder (spec §4): each 640-sample frame (40 ms at 16 kHz) maps on its own
// to one soft token, RMSNorm without weight (eps 1e-6) → projection 640→out_dim, no bias. All
// frames of a call go through the projection together on oneDNN (model/kernels/embedder_matmul.h).
#include <cstdint>

#include "model/gemma4/gemma4_mmproj.h"
#include "model/kernels/embedder_matmul.h"

namespace rawflow {

class Gemma4AudioEmbedder {
 public:
  // Throws EngineError when `mm` has no audio embedder. `mm` must outlive the embedder (F32
  // weights are read in place).
  explicit Gemma4AudioEmbedder(const Gemma4Mmproj& mm);

  int64_t out_dim() const { return projection_.out(); }

  // out[t·out_dim …] = soft token of frame t, for t < n. `frames`: n × 640 samples (see
  // frame_audio in model/gemma4/audio_frames.h). An all-zero frame gives an all-zero row.
  void embed_audio_frames(const float* frames, int64_t n, float* out) const;

 private:
  // Frames per pass, to bound the scratch (2.5 KB per frame).
  static constexpr int64_t kChunkFrames = 4096;

  float eps_;
  EmbedderMatmul projection_;
};

}  // namespace rawflow
