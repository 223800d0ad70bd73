#pragma once
// The model-side audio layout (spec §4): mono at 16 kHz, cut into non-overlapping 640-sample
// (40 ms) frames, one soft token each. Every part of rawflow that counts samples or frames — the
// decoders' resampler, the sources' timeline, the pipeline's windows, the embedder — takes these
// two numbers from here.
#include <cstdint>
#include <span>
#include <vector>

namespace rawflow {

inline constexpr int kAudioSampleRate = 16000;
inline constexpr int64_t kAudioFrameSamples = 640;  // 40 ms at 16 kHz: 25 soft tokens a second

// Frames of 640 samples (hop 640); the last one zero-padded on the right: ceil(n / 640) frames,
// none for n = 0. Returns frames × 640 floats.
std::vector<float> frame_audio(std::span<const float> samples);

}  // namespace rawflow
