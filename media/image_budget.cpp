#include "media/image_budget.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "media/media_error.h"

namespace rawflow::media {

namespace {

std::string size_text(int width, int height) {
  return std::to_string(width) + "x" + std::to_string(height);
}

void require_positive_size(const char* policy, int width, int height) {
  if (width <= 0 || height <= 0) {
    throw MediaError(std::string(policy) + ": image size " + size_text(width, height) +
                     " is not positive (width and height must be at least 1 px)");
  }
}

}  // namespace

bool is_image_budget(int budget_tokens) {
  return std::find(kImageBudgets.begin(), kImageBudgets.end(), budget_tokens) !=
         kImageBudgets.end();
}

GridSize hf_target_size(int width, int height, int budget_tokens) {
  if (!is_image_budget(budget_tokens)) {
    throw MediaError("image token budget " + std::to_string(budget_tokens) +
                     " is not one of 70, 140, 280, 560, 1120 (spec §3.1)");
  }
  require_positive_size("hf_target_size", width, height);

  // Same operations, order and precision (binary64) as the Python original, so the floors land on
  // the same side at exact multiples of 48.
  const int64_t max_patches = int64_t{9} * budget_tokens;
  const double target_px = static_cast<double>(max_patches * 256);
  const double total_px = static_cast<double>(int64_t{height} * width);
  const double factor = std::sqrt(target_px / total_px);
  const double side = kTileSide;
  double target_height = std::floor(factor * height / side) * side;
  double target_width = std::floor(factor * width / side) * side;

  if (target_height == 0 && target_width == 0) {
    // Unreachable for the allowed budgets (it needs target_px < 48²); kept to mirror HF.
    throw MediaError("hf_target_size: image " + size_text(width, height) + " at budget " +
                     std::to_string(budget_tokens) + " resizes to 0x0");
  }
  const double max_side = static_cast<double>(max_patches / 9) * side;
  if (target_height == 0) {
    target_height = side;
    target_width = std::min(std::floor(static_cast<double>(width) / height) * side, max_side);
  } else if (target_width == 0) {
    target_width = side;
    target_height = std::min(std::floor(static_cast<double>(height) / width) * side, max_side);
  }
  if (target_height * target_width > target_px) {
    throw MediaError("hf_target_size: image " + size_text(width, height) + " would resize to " +
                     std::to_string(target_width) + "x" + std::to_string(target_height) +
                     ", more than " + std::to_string(budget_tokens) + " tokens");
  }
  // Both sides are now at most max_side (≤ 53 760 px), so they fit an int.
  return GridSize{static_cast<int>(target_width), static_cast<int>(target_height)};
}

GridSize llama_target_size(int width, int height, int min_tokens, int max_tokens) {
  require_positive_size("llama_target_size", width, height);
  if (min_tokens <= 0 || max_tokens < min_tokens || max_tokens > 100000) {
    throw MediaError("llama_target_size: token limits [" + std::to_string(min_tokens) + ", " +
                     std::to_string(max_tokens) + "] are not an interval within [1, 100000]");
  }
  // A port of img_tool::calc_size_preserved_ratio (llama.cpp tools/mtmd/mtmd-image.cpp), float32
  // on purpose: that is where llama.cpp's sizes come from.
  const int align = kTileSide;
  const int64_t min_pixels = int64_t{min_tokens} * align * align;
  const int64_t max_pixels = int64_t{max_tokens} * align * align;
  const auto round_by = [&](float x) {
    return static_cast<int64_t>(std::round(x / static_cast<float>(align))) * align;
  };
  const auto ceil_by = [&](float x) {
    return static_cast<int64_t>(std::ceil(x / static_cast<float>(align))) * align;
  };
  const auto floor_by = [&](float x) {
    return static_cast<int64_t>(std::floor(x / static_cast<float>(align))) * align;
  };

  int64_t w_bar = std::max<int64_t>(align, round_by(static_cast<float>(width)));
  int64_t h_bar = std::max<int64_t>(align, round_by(static_cast<float>(height)));
  if (h_bar * w_bar > max_pixels) {
    const float beta = std::sqrt(static_cast<float>(height) * static_cast<float>(width) /
                                 static_cast<float>(max_pixels));
    h_bar = std::max<int64_t>(align, floor_by(static_cast<float>(height) / beta));
    w_bar = std::max<int64_t>(align, floor_by(static_cast<float>(width) / beta));
  } else if (h_bar * w_bar < min_pixels) {
    const float beta = std::sqrt(static_cast<float>(min_pixels) /
                                 (static_cast<float>(height) * static_cast<float>(width)));
    h_bar = ceil_by(static_cast<float>(height) * beta);
    w_bar = ceil_by(static_cast<float>(width) * beta);
  }
  // Extreme aspect ratios: growing to min_pixels can make the long side huge (llama.cpp would try).
  constexpr int64_t kMaxSide = 1 << 20;
  if (w_bar > kMaxSide || h_bar > kMaxSide) {
    throw MediaError("llama_target_size: image " + size_text(width, height) + " would resize to " +
                     std::to_string(w_bar) + "x" + std::to_string(h_bar) +
                     ", beyond the supported side of " + std::to_string(kMaxSide) + " px");
  }
  return GridSize{static_cast<int>(w_bar), static_cast<int>(h_bar)};
}

}  // namespace rawflow::media
