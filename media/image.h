#pragma once
// Decoded pictures and sound as the rest of rawflow sees them, independent of FFmpeg.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/gemma4/audio_frames.h"

namespace rawflow::media {

// 8-bit RGB, rows top to bottom, pixels left to right, channels R, G, B interleaved (HWC).
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // width * height * 3

  uint8_t at(int x, int y, int ch) const {
    return rgb[(static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x)) * 3 +
               static_cast<size_t>(ch)];
  }
};

// Mono float samples at the model's rate (spec §4: 16 kHz), nominally in [-1, 1].
struct AudioClip {
  static constexpr int kSampleRate = kAudioSampleRate;
  std::vector<float> samples;
  double start_seconds = 0;  // media time of samples[0]
};

}  // namespace rawflow::media
