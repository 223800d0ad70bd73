#include "model/gemma4/gemma4_audio.h"

#include <algorithm>
#include <vector>

#include "model/gemma4/audio_frames.h"
#include "model/kernels/vec.h"

namespace rawflow {

Gemma4AudioEmbedder::Gemma4AudioEmbedder(const Gemma4Mmproj& mm)
    : eps_(mm.audio().rms_eps), projection_(mm.audio().input_projection) {}

void Gemma4AudioEmbedder::embed_audio_frames(const float* frames, int64_t n, float* out) const {
  constexpr int64_t k = kAudioFrameSamples;
  std::vector<float> normed;
  for (int64_t t0 = 0; t0 < n; t0 += kChunkFrames) {
    const int64_t m = std::min(kChunkFrames, n - t0);
    normed.resize(static_cast<size_t>(m * k));
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < m; ++t)
      vec::rms_norm(frames + (t0 + t) * k, nullptr, eps_, k, normed.data() + t * k);
    projection_.forward(normed.data(), m, out + t0 * out_dim());
  }
}

}  // namespace rawflow
