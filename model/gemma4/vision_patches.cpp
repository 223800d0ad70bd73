#include "model/gemma4/vision_patches.h"

#include <algorithm>
#include <array>
#include <string>

#include "model/error.h"

namespace rawflow {

namespace {

// k / 255 correctly rounded (llama.cpp divides the same way). HF multiplies by float(1/255), which
// differs by one ulp for some k; HF then rounds to bf16, far coarser than that.
const std::array<float, 256>& unit_scale_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int k = 0; k < 256; ++k) t[static_cast<size_t>(k)] = static_cast<float>(k) / 255.0f;
    return t;
  }();
  return table;
}

}  // namespace

Patches patchify(const uint8_t* rgb, int width, int height, PatchOrder order) {
  if (width <= 0 || height <= 0 || width % kPatchSide != 0 || height % kPatchSide != 0) {
    throw EngineError("patchify: image is " + std::to_string(width) + "x" + std::to_string(height) +
                      "; width and height must be positive multiples of 48 (resize it to the "
                      "token budget first, spec §3.1)");
  }
  if (rgb == nullptr) throw EngineError("patchify: no pixel data for a non-empty image");

  Patches out;
  out.cols = width / kPatchSide;
  out.rows = height / kPatchSide;
  const int64_t tokens = out.tokens();
  out.values.resize(static_cast<size_t>(tokens * kPatchValues));
  out.pos_x.resize(static_cast<size_t>(tokens));
  out.pos_y.resize(static_cast<size_t>(tokens));
  const std::array<float, 256>& unit = unit_scale_table();
  constexpr int64_t kPlane = int64_t{kPatchSide} * kPatchSide;  // CHW channel stride, 2304

  for (int gy = 0; gy < out.rows; ++gy) {
    for (int gx = 0; gx < out.cols; ++gx) {
      const int64_t t = int64_t{gy} * out.cols + gx;
      out.pos_x[static_cast<size_t>(t)] = gx;
      out.pos_y[static_cast<size_t>(t)] = gy;
      float* v = &out.values[static_cast<size_t>(t * kPatchValues)];
      for (int r = 0; r < kPatchSide; ++r) {
        const size_t y = static_cast<size_t>(gy) * kPatchSide + static_cast<size_t>(r);
        const uint8_t* line =
            rgb + (y * static_cast<size_t>(width) + static_cast<size_t>(gx) * kPatchSide) * 3;
        if (order == PatchOrder::HWC) {
          // A tile row is 144 contiguous source bytes in HWC order already.
          float* dst = v + int64_t{r} * kPatchSide * 3;
          for (int i = 0; i < kPatchSide * 3; ++i) dst[i] = unit[line[i]];
        } else {
          for (int c = 0; c < kPatchSide; ++c) {
            for (int ch = 0; ch < 3; ++ch) {
              v[ch * kPlane + int64_t{r} * kPatchSide + c] = unit[line[c * 3 + ch]];
            }
          }
        }
      }
    }
  }
  return out;
}

}  // namespace rawflow
