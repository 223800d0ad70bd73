#pragma once
// Bicubic resize with antialiasing of 8-bit RGB images, the way HF's image processor needs it
// (spec §3.1 step 4, §10.3): Pillow's ImagingResample scheme. See docs/media.md for what was
// measured against Pillow and what is inferred about torchvision.
#include <cstddef>  // media/image.h uses size_t without including it

#include "media/image.h"

namespace rawflow::media {

// How the normalised filter weights are turned into integers. Both accumulate in int32 with a
// rounding offset, shift, and clamp to [0, 255] after each of the two passes.
enum class ResizeArithmetic {
  // Pillow's 8-bpc path: weights × 2^22 (PRECISION_BITS). Measured bit-identical to Pillow.
  Pillow,
  // PyTorch's uint8 antialias kernel (PIL-SIMD's scheme), which torchvision's resize runs on a
  // uint8
  // tensor: int16 weights, precision per pass = the largest p ≤ 22 with round(max weight · 2^p)
  // below 2^15. Ported from the PyTorch source. Debian's torch 1.13 has no uint8 antialias kernel;
  // this matches
  // a numpy transcription of it byte for byte (bench/resize_vs_torchvision.py, docs/media.md).
  TorchUint8,
};

// Resizes with the bicubic filter (a = −0.5), its support widened by the downscale factor
// (antialias), normalised weights, horizontal pass first, a clamped and rounded uint8 image between
// the passes; a pass whose size does not change is skipped. Up- and down-scaling. Returns a copy
// when the size is unchanged. Throws MediaError for an empty or inconsistent source or a
// non-positive target size.
RgbImage resize_bicubic_antialias(const RgbImage& src, int width, int height,
                                  ResizeArithmetic arithmetic = ResizeArithmetic::Pillow);

}  // namespace rawflow::media
