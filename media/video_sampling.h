#pragma once
// Which decoded frames of a clip become model frames, and how their timestamps are written into the
// prompt (spec §3.6, HF video processor).
#include <cstdint>
#include <string>
#include <vector>

namespace rawflow::media {

inline constexpr int kDefaultVideoFrames = 32;    // HF num_frames
inline constexpr double kAssumedVideoFps = 24.0;  // HF's fps when the container does not say

// floor(k·F / num_frames) for k = 0 … num_frames−1 (exact integer arithmetic). Throws MediaError if
// num_frames < 1 or decoded_frames < num_frames (HF refuses to sample more frames than exist).
std::vector<int64_t> sample_frame_indices(int64_t decoded_frames, int num_frames);

// Number of frames to sample for a requested rate: int(F / video_fps · fps), evaluated in binary64
// in that order as HF does. Throws MediaError for a non-positive or non-finite rate.
int64_t frames_for_fps(int64_t decoded_frames, double video_fps, double fps);

// "mm:ss" as Python's f"{int(s // 60):02d}:{int(s % 60):02d}" prints it (minutes are not capped:
// 6000 s is "100:00"). Throws MediaError for a negative or non-finite time.
std::string mm_ss(double seconds);

}  // namespace rawflow::media
