#pragma once
// How large an image is made before it is cut into 48×48 tiles, i.e. how many soft tokens it costs
// (spec §3.1 steps 2–3 and 6). The HF policy is the reference; llama.cpp's differs for small
// images.
#include <array>
#include <cstdint>

namespace rawflow::media {

inline constexpr int kTileSide = 48;  // one soft token = 3×3 teacher patches of 16 px
inline constexpr std::array<int, 5> kImageBudgets = {70, 140, 280, 560, 1120};
inline constexpr int kDefaultImageBudget = 280;      // vision_config.num_soft_tokens
inline constexpr int kDefaultVideoFrameBudget = 70;  // HF video processor, per frame (§3.6)

// A target image size whose sides are multiples of 48.
struct GridSize {
  int width = 0;
  int height = 0;
  int cols() const { return width / kTileSide; }
  int rows() const { return height / kTileSide; }
  int64_t tokens() const { return static_cast<int64_t>(cols()) * rows(); }
};

bool is_image_budget(int budget_tokens);

// HF's get_aspect_ratio_preserving_size: scales the image (up or down) so that its area fills
// budget·2304 px, floors each side to a multiple of 48, and gives a side that floors to 0 one tile
// (the other side then min(floor(long/short)·48, budget·48)). Never more than `budget_tokens`
// tiles. Throws MediaError for a budget outside kImageBudgets or a non-positive width or height.
GridSize hf_target_size(int width, int height, int budget_tokens = kDefaultImageBudget);

// llama.cpp's gemma4uv policy (spec §3.5 with §10.1), a deliberate alternative for parity with
// llama-mtmd: sides rounded to the nearest multiple of 48 (half away from zero, at least 48); then
// if the area is above max_tokens·2304 both sides shrink (floor), below min_tokens·2304 both grow
// (ceil), each from the original size, in float32 arithmetic as clip.cpp does. Small images are
// not upscaled to the budget. Throws MediaError for non-positive sizes or limits.
GridSize llama_target_size(int width, int height, int min_tokens = 70, int max_tokens = 1120);

}  // namespace rawflow::media
