#pragma once
// One-shot decoding of media files (anything libavformat reads) into what the model takes: an RGB
// picture, 16 kHz mono audio, sampled video frames (spec §3.1 step 1, §3.6, §4 step 1), and a
// description of the file for `rawflow inspect`. Built on MediaInput (media/input.h): one decode
// path for files and live sources. Every failure is a MediaError whose message names the path.
#include <cstdint>
#include <string>
#include <vector>

#include "media/image.h"
#include "media/input.h"

namespace rawflow::media {

// A still image, or the first frame of a video, as RGB24: alpha dropped, grey replicated, YUV
// converted with the stream's matrix and range (BT.601 when unstated). Pictures above
// `max_pixels` are refused before they are allocated (InputOptions::max_picture_pixels).
RgbImage decode_image(const std::string& path, int64_t max_pixels = kMaxPicturePixels);

// The whole best audio stream as 16 kHz mono float (standard downmix to unity gain, the resampler
// flushed at the end). start_seconds is the media time of the first sample. A stream longer than
// kMaxClipSeconds is refused as it passes that length (memory stays bounded: 230 MB at the
// limit): one-shot commands take a clip; a recording goes through `rawflow run` or `batch`.
inline constexpr double kMaxClipSeconds = 3600;
AudioClip decode_audio(const std::string& path);

struct VideoSampling {
  int num_frames = 32;  // spec §3.6 default
  double fps = 0;       // > 0: sample int(F / video_fps · fps) frames instead of num_frames
};

struct TimedImage {
  RgbImage image;
  double seconds = 0;       // frame_index / video_fps, HF's timestamp (not the frame's pts)
  int64_t frame_index = 0;  // index among the F decoded frames
};

// Frames floor(k·F/n), k = 0…n−1, of the F decoded frames of the best video stream (spec §3.6);
// video_fps is the stream's average rate, 24 when unknown. Throws if F < n.
std::vector<TimedImage> decode_video_frames(const std::string& path,
                                            const VideoSampling& sampling = {},
                                            int64_t max_pixels = kMaxPicturePixels);

// Container and streams as the demuxer sees them (nothing is decoded beyond the probe).
MediaInfo probe_media(const std::string& path);

}  // namespace rawflow::media
