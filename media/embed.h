#pragma once
// Decoded media to soft tokens: the image policy (budget, resize, 48×48 tiles in the layout the
// weights want) and the audio framing, then the embedders. Shared by the one-shot commands and the
// pipeline's projection node.
#include <vector>

#include "media/decode.h"
#include "media/image.h"
#include "media/image_budget.h"
#include "model/gemma4/gemma4_audio.h"
#include "model/gemma4/gemma4_vision.h"
#include "model/gemma4/multimodal_prompt.h"

namespace rawflow::media {

// Resized to the HF budget policy (spec §3.1) and cut into tiles, not yet embedded.
struct PreparedImage {
  GridSize grid;
  Patches patches;
};
PreparedImage prepare_image(const RgbImage& img, int budget_tokens, PatchOrder order);

// The embedders alone, on tiles already made (callers that time them apart from the resize).
MediaEmbedding embed_prepared_image(const Gemma4VisionEmbedder& vision,
                                    const PreparedImage& prepared);
MediaEmbedding embed_image(const Gemma4VisionEmbedder& vision, const RgbImage& img,
                           int budget_tokens);
// 640-sample frames, the last zero-padded (spec §4).
MediaEmbedding embed_audio(const Gemma4AudioEmbedder& audio, const AudioClip& clip);
// One VideoFrame item per sampled frame, stamped "mm:ss" (spec §3.6).
std::vector<MediaEmbedding> embed_video(const Gemma4VisionEmbedder& vision,
                                        const std::vector<TimedImage>& frames,
                                        int budget_tokens_per_frame);

}  // namespace rawflow::media
