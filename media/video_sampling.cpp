#include "media/video_sampling.h"

#include <cmath>
#include <cstdio>

#include "media/media_error.h"

namespace rawflow::media {

std::vector<int64_t> sample_frame_indices(int64_t decoded_frames, int num_frames) {
  if (num_frames < 1) {
    throw MediaError("video: cannot sample " + std::to_string(num_frames) +
                     " frames (need at least 1)");
  }
  if (decoded_frames < num_frames) {
    throw MediaError("video: clip has " + std::to_string(decoded_frames) +
                     " decoded frames, fewer than the " + std::to_string(num_frames) +
                     " to sample");
  }
  // floor(k·F/N) = k·q + floor(k·r/N) with F = q·N + r; k·r < N² cannot overflow.
  const int64_t q = decoded_frames / num_frames;
  const int64_t r = decoded_frames % num_frames;
  std::vector<int64_t> indices(static_cast<size_t>(num_frames));
  for (int64_t k = 0; k < num_frames; ++k)
    indices[static_cast<size_t>(k)] = k * q + k * r / num_frames;
  return indices;
}

int64_t frames_for_fps(int64_t decoded_frames, double video_fps, double fps) {
  if (!(std::isfinite(video_fps) && video_fps > 0) || !(std::isfinite(fps) && fps > 0)) {
    throw MediaError("video: frame rates must be positive and finite (clip " +
                     std::to_string(video_fps) + " fps, requested " + std::to_string(fps) +
                     " fps)");
  }
  if (decoded_frames < 0) {
    throw MediaError("video: negative frame count " + std::to_string(decoded_frames));
  }
  const double n = static_cast<double>(decoded_frames) / video_fps * fps;
  // Python's int() truncates toward zero; n ≥ 0 here.
  return static_cast<int64_t>(n);
}

std::string mm_ss(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) {
    throw MediaError("video: timestamp " + std::to_string(seconds) +
                     " s is negative or not finite");
  }
  // CPython's float floor-division and modulo (float_divmod) for a non-negative dividend.
  const double mod = std::fmod(seconds, 60.0);
  const double div = (seconds - mod) / 60.0;
  double floordiv = 0.0;
  if (div != 0.0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  }
  if (floordiv > 1e15)
    throw MediaError("video: timestamp " + std::to_string(seconds) + " s is too large");
  char text[48];
  std::snprintf(text, sizeof text, "%02lld:%02d", static_cast<long long>(floordiv),
                static_cast<int>(mod));
  return text;
}

}  // namespace rawflow::media
