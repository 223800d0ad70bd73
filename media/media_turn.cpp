#include "media/media_turn.h"

namespace rawflow::media {

const MediaEmbedding& MediaTurn::add_image(const Gemma4VisionEmbedder& vision,
                                           const RgbImage& image, int budget_tokens) {
  return add_prepared_image(vision, prepare_image(image, budget_tokens, vision.patch_order()));
}

const MediaEmbedding& MediaTurn::add_prepared_image(const Gemma4VisionEmbedder& vision,
                                                    const PreparedImage& prepared) {
  parts_.push_back({ChatPart::Kind::Image, {}});
  media_.push_back(embed_prepared_image(vision, prepared));
  return media_.back();
}

int64_t MediaTurn::add_video(const Gemma4VisionEmbedder& vision,
                             const std::vector<TimedImage>& frames, int budget_tokens_per_frame) {
  parts_.push_back({ChatPart::Kind::Video, {}});
  int64_t rows = 0;
  for (MediaEmbedding& f : embed_video(vision, frames, budget_tokens_per_frame)) {
    rows += f.rows;
    media_.push_back(std::move(f));
  }
  return rows;
}

const MediaEmbedding& MediaTurn::add_audio(const Gemma4AudioEmbedder& audio,
                                           const AudioClip& clip) {
  parts_.push_back({ChatPart::Kind::Audio, {}});
  media_.push_back(embed_audio(audio, clip));
  return media_.back();
}

void MediaTurn::add_text(const std::string& text) {
  parts_.push_back({ChatPart::Kind::Text, text});
}

PromptInput MediaTurn::prompt(const Tokenizer& tok, int64_t hidden) const {
  return build_multimodal_prompt(tok, {{"user", parts_}}, media_, hidden);
}

}  // namespace rawflow::media
