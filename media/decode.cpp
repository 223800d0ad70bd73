// One-shot decoders: thin loops over MediaInput that turn its events into one result and its end
// reasons into MediaErrors naming the path.
#include "media/decode.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <variant>

#include "media/media_error.h"
#include "media/video_sampling.h"

namespace rawflow::media {

namespace {

// A file read to its end by a one-shot decoder: anything but a clean EOF is an error.
[[noreturn]] void throw_end(const EndOfStream& end, const std::string& path) {
  throw MediaError(end.message.empty() ? redact_url(path) + ": " + end_reason_name(end.reason)
                                       : end.message);
}

std::string streams_of(const MediaInput& in) {
  std::string s;
  for (const StreamInfo& st : in.info().streams) {
    if (!s.empty()) s += ", ";
    s += st.kind + " " + st.codec + (st.attached_picture ? " (attached picture)" : "");
  }
  return s.empty() ? "none" : s;
}

std::string decoder_detail(const MediaInput& in) {
  if (in.decode_errors() == 0) return "";
  return " (" + std::to_string(in.decode_errors()) +
         " packets rejected by the decoder; last: " + in.last_decode_error() + ")";
}

InputOptions only(bool video, bool audio) {
  InputOptions o;
  o.want_video = video;
  o.want_audio = audio;
  return o;
}

// Decodes the whole video stream, converting only the frames `keep` accepts.
std::vector<VideoFrame> read_video(const std::string& path, int64_t max_pixels,
                                   std::function<bool(int64_t)> keep, int64_t* decoded_frames,
                                   double* video_fps) {
  InputOptions o = only(true, false);
  o.keep_video_frame = std::move(keep);
  o.max_picture_pixels = max_pixels;
  MediaInput in(path, o);
  if (!in.has_video())
    throw MediaError(redact_url(path) + ": no video stream (streams: " + streams_of(in) + ")");
  std::vector<VideoFrame> frames;
  while (auto ev = in.next()) {
    if (auto* f = std::get_if<VideoFrame>(&*ev)) {
      frames.push_back(std::move(*f));
    } else if (auto* end = std::get_if<EndOfStream>(&*ev)) {
      if (end->reason != EndReason::EndOfInput) throw_end(*end, path);
    }
  }
  if (in.video_frames_decoded() == 0)
    throw MediaError(redact_url(path) + ": no video frame could be decoded" + decoder_detail(in));
  *decoded_frames = in.video_frames_decoded();
  *video_fps = in.video_fps();
  return frames;
}

}  // namespace

RgbImage decode_image(const std::string& path, int64_t max_pixels) {
  InputOptions o = only(true, false);
  o.max_picture_pixels = max_pixels;
  MediaInput in(path, o);
  if (!in.has_video())
    throw MediaError(redact_url(path) + ": no image or video stream (streams: " + streams_of(in) +
                     ")");
  while (auto ev = in.next()) {
    if (auto* f = std::get_if<VideoFrame>(&*ev)) return std::move(f->image);
    if (auto* end = std::get_if<EndOfStream>(&*ev)) {
      if (end->reason != EndReason::EndOfInput) throw_end(*end, path);
    }
  }
  throw MediaError(redact_url(path) + ": no picture could be decoded" + decoder_detail(in));
}

AudioClip decode_audio(const std::string& path) {
  MediaInput in(path, only(false, true));
  if (!in.has_audio())
    throw MediaError(redact_url(path) + ": no audio stream (streams: " + streams_of(in) + ")");
  AudioClip clip;
  bool first = true;
  while (auto ev = in.next()) {
    if (auto* chunk = std::get_if<AudioChunk>(&*ev)) {
      if (first) clip.start_seconds = chunk->pts_s;
      first = false;
      clip.samples.insert(clip.samples.end(), chunk->samples.begin(), chunk->samples.end());
      if (static_cast<double>(clip.samples.size()) > kMaxClipSeconds * AudioClip::kSampleRate)
        throw MediaError(redact_url(path) + ": its audio is longer than " +
                         std::to_string(static_cast<int>(kMaxClipSeconds)) +
                         " s: a one-shot command takes a clip; give a recording to `rawflow run` "
                         "or `rawflow batch` (transcribe windows)");
    } else if (auto* end = std::get_if<EndOfStream>(&*ev)) {
      if (end->reason != EndReason::EndOfInput) throw_end(*end, path);
    }
  }
  if (clip.samples.empty())
    throw MediaError(redact_url(path) + ": its audio stream holds no decodable samples" +
                     decoder_detail(in));
  return clip;
}

std::vector<TimedImage> decode_video_frames(const std::string& path, const VideoSampling& sampling,
                                            int64_t max_pixels) {
  // F is only known once the stream has been decoded to its end (container counts are unreliable),
  // so a first pass counts frames without converting them and a second converts the chosen ones.
  int64_t decoded = 0;
  double video_fps = 0;
  read_video(
      path, max_pixels, [](int64_t) { return false; }, &decoded, &video_fps);
  if (video_fps <= 0) video_fps = kAssumedVideoFps;

  std::vector<int64_t> indices;
  try {
    const int64_t n = sampling.fps > 0 ? frames_for_fps(decoded, video_fps, sampling.fps)
                                       : static_cast<int64_t>(sampling.num_frames);
    if (n > decoded || n > INT32_MAX) {
      throw MediaError("video: clip has " + std::to_string(decoded) +
                       " decoded frames, fewer than the " + std::to_string(n) + " to sample");
    }
    indices = sample_frame_indices(decoded, static_cast<int>(n));
  } catch (const MediaError& e) {
    throw MediaError(redact_url(path) + ": " + e.what());
  }

  int64_t decoded_again = 0;
  double fps_again = 0;
  std::vector<VideoFrame> frames = read_video(
      path, max_pixels,
      [&](int64_t i) { return std::binary_search(indices.begin(), indices.end(), i); },
      &decoded_again, &fps_again);
  if (decoded_again != decoded || frames.size() != indices.size()) {
    throw MediaError(redact_url(path) + ": decoding is not repeatable (" + std::to_string(decoded) +
                     " then " + std::to_string(decoded_again) + " frames)");
  }
  std::vector<TimedImage> out;
  out.reserve(frames.size());
  for (VideoFrame& f : frames) {
    out.push_back(TimedImage{std::move(f.image), static_cast<double>(f.frame_index) / video_fps,
                             f.frame_index});
  }
  return out;
}

MediaInfo probe_media(const std::string& path) {
  return MediaInput(path, only(false, false)).info();
}

}  // namespace rawflow::media
