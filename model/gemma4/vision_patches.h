#pragma once
// The model-side input layout of images (spec §3.2): 48×48 tiles in row-major order with their
// grid positions. Pure functions, no decoding. Audio's is model/gemma4/audio_frames.h.
#include <cstdint>
#include <vector>

namespace rawflow {

inline constexpr int kPatchSide = 48;
inline constexpr int64_t kPatchValues = kPatchSide * kPatchSide * 3;  // 6912

// How the 6912 values of one tile are ordered. HF safetensors weights want HWC
// (v[(r·48 + c)·3 + ch]); llama.cpp's GGUF mmproj wants CHW (v[ch·2304 + r·48 + c]) because its
// converter permuted patch_dense and patch_ln1 (spec §3.2, §7.4).
enum class PatchOrder { HWC, CHW };

struct Patches {
  int cols = 0;                // tiles across (image width / 48)
  int rows = 0;                // tiles down
  std::vector<float> values;   // tokens() × 6912, pixel / 255
  std::vector<int32_t> pos_x;  // per token: column gx
  std::vector<int32_t> pos_y;  // per token: row gy
  int64_t tokens() const { return static_cast<int64_t>(cols) * rows; }
};

// Cuts an 8-bit RGB image (HWC, width and height multiples of 48 — throws EngineError otherwise)
// into tiles in row-major order t = gy·cols + gx, values scaled to [0, 1].
Patches patchify(const uint8_t* rgb, int width, int height, PatchOrder order);

}  // namespace rawflow
