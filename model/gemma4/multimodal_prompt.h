#pragma once
// A prompt with images, audio and video frames, turned into what the decoder takes (spec §5.2,
// §2.2, §2.8, §9 steps 1–3): token ids, the embedder rows that replace placeholder tokens, and the
// bidirectional block of each image or video-frame token.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "model/gemma4/chat.h"
#include "model/gemma4/gemma4_text.h"
#include "model/tokenizer/tokenizer.h"

namespace rawflow {

// One embedded media item: `rows` × hidden floats from the vision or audio embedder, in token
// order. A video is given as one item per sampled frame, each with its `timestamp` ("mm:ss").
struct MediaEmbedding {
  enum class Kind { Image, Audio, VideoFrame };
  Kind kind = Kind::Image;
  int64_t rows = 0;
  std::vector<float> values;  // rows × hidden
  std::string timestamp;      // VideoFrame only
};

// A tokenized prompt, self-contained (copyable: soft rows are held by value, referenced by index).
struct PromptInput {
  std::vector<int32_t> tokens;
  std::vector<int32_t> soft_index;  // per token: row in `soft` replacing its embedding, or -1
  std::vector<int32_t> block_ids;   // per token: image/frame block, or -1 (audio and text)
  std::vector<float> soft;          // soft rows × hidden
  int64_t hidden = 0;

  size_t size() const { return tokens.size(); }
  int64_t soft_rows() const { return hidden ? static_cast<int64_t>(soft.size()) / hidden : 0; }
  // The [begin, end) slice as a decoder chunk on `cache`, pointing into this prompt's soft rows
  // (keep the PromptInput alive while the chunk is used). The caller must not cut a block: see
  // prefill_cut().
  SequenceChunk chunk(KvCache* cache, size_t begin, size_t end, LogitsWanted logits) const;
  // The largest end ≤ begin + max_tokens that does not cut a block in two, so that each image is
  // prefilled in one pass (spec §2.8); a block longer than max_tokens is kept whole.
  size_t prefill_cut(size_t begin, size_t max_tokens) const;
  // Tokens [begin, end) as a prompt of their own, holding only the soft rows they use. A slice
  // must not cut a block (see prefill_cut()).
  PromptInput slice(size_t begin, size_t end) const;
  // Appends `more`, its soft rows and blocks renumbered after this prompt's: how the prompt of a
  // streaming request grows. Throws EngineError when both have soft rows of different widths.
  void append(const PromptInput& more);
};

// Renders `messages` with the turn format (§5.1), expands each media placeholder in order of
// appearance with the next item of `media` (§5.2: image → <|image> N×<|image|> <image|>; audio →
// <|audio> n×<|audio|> <audio|>; a run of VideoFrame items for one video part → per frame
// "mm:ss <|image> N×<|video|> <image|>", frames joined by a space), tokenizes, and attaches the
// rows. The media parts of the messages must match `media` in count and kind (a video part
// consumes all consecutive VideoFrame items): throws EngineError otherwise, or when the vocabulary
// lacks one of the marker tokens (looked up by string, so small test vocabularies work).
PromptInput build_multimodal_prompt(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                    std::span<const MediaEmbedding> media, int64_t hidden,
                                    const ChatOptions& opt = {});

}  // namespace rawflow
