#include "media/embed.h"

#include "media/resize.h"
#include "media/video_sampling.h"

namespace rawflow::media {

PreparedImage prepare_image(const RgbImage& img, int budget_tokens, PatchOrder order) {
  PreparedImage out;
  out.grid = hf_target_size(img.width, img.height, budget_tokens);
  const RgbImage resized = resize_bicubic_antialias(img, out.grid.width, out.grid.height);
  out.patches = patchify(resized.rgb.data(), resized.width, resized.height, order);
  return out;
}

MediaEmbedding embed_prepared_image(const Gemma4VisionEmbedder& vision,
                                    const PreparedImage& prepared) {
  const Patches& p = prepared.patches;
  MediaEmbedding m;
  m.kind = MediaEmbedding::Kind::Image;
  m.rows = p.tokens();
  m.values.resize(static_cast<size_t>(m.rows * vision.out_dim()));
  vision.embed_patches(p.values.data(), p.pos_x.data(), p.pos_y.data(), m.rows, m.values.data());
  return m;
}

MediaEmbedding embed_image(const Gemma4VisionEmbedder& vision, const RgbImage& img,
                           int budget_tokens) {
  return embed_prepared_image(vision, prepare_image(img, budget_tokens, vision.patch_order()));
}

MediaEmbedding embed_audio(const Gemma4AudioEmbedder& audio, const AudioClip& clip) {
  const std::vector<float> frames = frame_audio(clip.samples);
  MediaEmbedding m;
  m.kind = MediaEmbedding::Kind::Audio;
  m.rows = static_cast<int64_t>(frames.size()) / kAudioFrameSamples;
  m.values.resize(static_cast<size_t>(m.rows * audio.out_dim()));
  audio.embed_audio_frames(frames.data(), m.rows, m.values.data());
  return m;
}

std::vector<MediaEmbedding> embed_video(const Gemma4VisionEmbedder& vision,
                                        const std::vector<TimedImage>& frames,
                                        int budget_tokens_per_frame) {
  std::vector<MediaEmbedding> out;
  for (const TimedImage& f : frames) {
    MediaEmbedding m = embed_image(vision, f.image, budget_tokens_per_frame);
    m.kind = MediaEmbedding::Kind::VideoFrame;
    m.timestamp = mm_ss(f.seconds);
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace rawflow::media
