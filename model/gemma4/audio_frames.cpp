#include "model/gemma4/audio_frames.h"

#include <algorithm>

namespace rawflow {

std::vector<float> frame_audio(std::span<const float> samples) {
  const int64_t n = static_cast<int64_t>(samples.size());
  const int64_t frames = (n + kAudioFrameSamples - 1) / kAudioFrameSamples;
  // Zero-initialised: the right padding of the last frame is the only part not overwritten.
  std::vector<float> out(static_cast<size_t>(frames * kAudioFrameSamples), 0.0f);
  std::copy(samples.begin(), samples.end(), out.begin());
  return out;
}

}  // namespace rawflow
