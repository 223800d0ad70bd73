#pragma once
// One user turn of media and text, as the model takes it: each item becomes a chat part and, for
// media, its soft tokens (the image policy, tiles and embedders of media/embed.h). The one-shot
// commands (cli/multimodal.cpp) and the pipeline's projection node (nodes/projection.cpp) both
// build their prompts here, so a file and a stream with the same media get the same prompt.
#include <string>
#include <vector>

#include "media/decode.h"
#include "media/embed.h"
#include "model/gemma4/chat.h"
#include "model/gemma4/multimodal_prompt.h"
#include "model/tokenizer/tokenizer.h"

namespace rawflow::media {

class MediaTurn {
 public:
  // Returns the item's soft tokens (for the callers' summaries).
  const MediaEmbedding& add_image(const Gemma4VisionEmbedder& vision, const RgbImage& image,
                                  int budget_tokens);
  // An image already resized and tiled (callers that time the steps apart).
  const MediaEmbedding& add_prepared_image(const Gemma4VisionEmbedder& vision,
                                           const PreparedImage& prepared);
  // One video part: every frame a block stamped "mm:ss" with its time (spec §3.6). Returns the
  // soft tokens of all its frames.
  int64_t add_video(const Gemma4VisionEmbedder& vision, const std::vector<TimedImage>& frames,
                    int budget_tokens_per_frame);
  // 640-sample frames, the last zero-padded (spec §4).
  const MediaEmbedding& add_audio(const Gemma4AudioEmbedder& audio, const AudioClip& clip);
  void add_text(const std::string& text);

  const std::vector<ChatPart>& parts() const { return parts_; }
  const std::vector<MediaEmbedding>& media() const { return media_; }
  // The rendered user turn with the model's turn opened (spec §5), soft rows in place.
  PromptInput prompt(const Tokenizer& tok, int64_t hidden) const;

 private:
  std::vector<ChatPart> parts_;
  std::vector<MediaEmbedding> media_;
};

}  // namespace rawflow::media
