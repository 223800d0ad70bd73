#include "model/gemma4/multimodal_prompt.h"

#include <algorithm>

#include "model/error.h"

namespace rawflow {
namespace {

struct Markers {
  int32_t image_soft, audio_soft, video_soft;
};

int32_t require_special(const Tokenizer& tok, std::string_view s) {
  const int32_t id = tok.special(s);
  if (id < 0)
    throw EngineError("multimodal prompt: the model's vocabulary has no `" + std::string(s) +
                      "` token (not a Gemma 4 multimodal vocabulary?)");
  return id;
}

std::string repeat(std::string_view s, int64_t n) {
  std::string out;
  out.reserve(s.size() * static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out += s;
  return out;
}

// The text one media part expands to, consuming items from media[at...].
std::string expand_part(ChatPart::Kind kind, std::span<const MediaEmbedding> media, size_t& at) {
  using K = MediaEmbedding::Kind;
  auto need = [&](K k, const char* what) -> const MediaEmbedding& {
    if (at >= media.size() || media[at].kind != k)
      throw EngineError(std::string("multimodal prompt: the messages have ") + what +
                        " part number " + std::to_string(at + 1) +
                        " but the media list has no matching item there");
    return media[at++];
  };
  switch (kind) {
    case ChatPart::Kind::Image: {
      const auto& m = need(K::Image, "an image");
      return "<|image>" + repeat("<|image|>", m.rows) + "<image|>";
    }
    case ChatPart::Kind::Audio: {
      const auto& m = need(K::Audio, "an audio");
      return "<|audio>" + repeat("<|audio|>", m.rows) + "<audio|>";
    }
    case ChatPart::Kind::Video: {
      std::string out;
      need(K::VideoFrame, "a video");
      --at;
      while (at < media.size() && media[at].kind == K::VideoFrame) {
        const auto& f = media[at++];
        if (!out.empty()) out += ' ';
        out += f.timestamp + " <|image>" + repeat("<|video|>", f.rows) + "<image|>";
      }
      return out;
    }
    case ChatPart::Kind::Text:
      break;
  }
  return {};
}

}  // namespace

SequenceChunk PromptInput::chunk(KvCache* cache, size_t begin, size_t end,
                                 LogitsWanted logits) const {
  SequenceChunk ch;
  ch.cache = cache;
  ch.logits = logits;
  ch.tokens.assign(tokens.begin() + static_cast<ptrdiff_t>(begin),
                   tokens.begin() + static_cast<ptrdiff_t>(end));
  const bool any_soft = std::any_of(soft_index.begin() + static_cast<ptrdiff_t>(begin),
                                    soft_index.begin() + static_cast<ptrdiff_t>(end),
                                    [](int32_t i) { return i >= 0; });
  if (any_soft) {
    ch.soft_rows.resize(end - begin, nullptr);
    ch.block_ids.assign(block_ids.begin() + static_cast<ptrdiff_t>(begin),
                        block_ids.begin() + static_cast<ptrdiff_t>(end));
    for (size_t i = begin; i < end; ++i)
      if (soft_index[i] >= 0) ch.soft_rows[i - begin] = soft.data() + soft_index[i] * hidden;
  }
  return ch;
}

size_t PromptInput::prefill_cut(size_t begin, size_t max_tokens) const {
  size_t end = std::min(tokens.size(), begin + std::max<size_t>(max_tokens, 1));
  if (end == tokens.size() || block_ids[end] < 0 || block_ids[end] != block_ids[end - 1])
    return end;
  // `end` would split a block: end before it, or after it when it starts at `begin`.
  size_t start = end;
  while (start > begin && block_ids[start - 1] == block_ids[end]) --start;
  if (start > begin) return start;
  while (end < tokens.size() && block_ids[end] == block_ids[begin]) ++end;
  return end;
}

PromptInput PromptInput::slice(size_t begin, size_t end) const {
  if (begin > end || end > tokens.size())
    throw EngineError("prompt slice [" + std::to_string(begin) + ", " + std::to_string(end) +
                      ") outside a prompt of " + std::to_string(tokens.size()) + " tokens");
  PromptInput out;
  out.hidden = hidden;
  const auto b = static_cast<ptrdiff_t>(begin), e = static_cast<ptrdiff_t>(end);
  out.tokens.assign(tokens.begin() + b, tokens.begin() + e);
  out.block_ids.assign(block_ids.begin() + b, block_ids.begin() + e);
  out.soft_index.reserve(end - begin);
  for (size_t i = begin; i < end; ++i) {
    if (soft_index[i] < 0) {
      out.soft_index.push_back(-1);
      continue;
    }
    out.soft_index.push_back(static_cast<int32_t>(out.soft_rows()));
    const float* row = soft.data() + soft_index[i] * hidden;
    out.soft.insert(out.soft.end(), row, row + hidden);
  }
  return out;
}

void PromptInput::append(const PromptInput& more) {
  if (more.soft_rows() > 0 && soft_rows() > 0 && more.hidden != hidden)
    throw EngineError("cannot append a prompt with soft rows " + std::to_string(more.hidden) +
                      " wide to one with rows " + std::to_string(hidden) + " wide");
  if (hidden == 0) hidden = more.hidden;
  // A text-only prompt may leave its per-token lists empty.
  if (soft_index.empty()) soft_index.assign(tokens.size(), -1);
  if (block_ids.empty()) block_ids.assign(tokens.size(), -1);
  const auto row_offset = static_cast<int32_t>(soft_rows());
  int32_t block_offset = 0;
  for (int32_t id : block_ids) block_offset = std::max(block_offset, id + 1);
  tokens.insert(tokens.end(), more.tokens.begin(), more.tokens.end());
  for (size_t i = 0; i < more.size(); ++i) {
    const int32_t row = i < more.soft_index.size() ? more.soft_index[i] : -1;
    const int32_t block = i < more.block_ids.size() ? more.block_ids[i] : -1;
    soft_index.push_back(row < 0 ? -1 : row + row_offset);
    block_ids.push_back(block < 0 ? -1 : block + block_offset);
  }
  soft.insert(soft.end(), more.soft.begin(), more.soft.end());
}

PromptInput build_multimodal_prompt(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                    std::span<const MediaEmbedding> media, int64_t hidden,
                                    const ChatOptions& opt) {
  // The template writes each media part as its bare placeholder; expand them in order of
  // appearance, as HF's processor does after templating (§5.2).
  const std::string rendered = render_chat(messages, opt);
  static constexpr std::pair<std::string_view, ChatPart::Kind> kPlaceholders[] = {
      {"<|image|>", ChatPart::Kind::Image},
      {"<|audio|>", ChatPart::Kind::Audio},
      {"<|video|>", ChatPart::Kind::Video}};
  std::string text;
  size_t pos = 0, at = 0;
  for (;;) {
    size_t best = std::string::npos;
    const std::pair<std::string_view, ChatPart::Kind>* which = nullptr;
    for (const auto& ph : kPlaceholders) {
      const size_t f = rendered.find(ph.first, pos);
      if (f < best) {
        best = f;
        which = &ph;
      }
    }
    if (!which) break;
    text.append(rendered, pos, best - pos);
    text += expand_part(which->second, media, at);
    pos = best + which->first.size();
  }
  text.append(rendered, pos, std::string::npos);
  if (at != media.size())
    throw EngineError("multimodal prompt: " + std::to_string(media.size() - at) +
                      " media item(s) have no placeholder in the messages");

  Markers mk{-1, -1, -1};
  if (!media.empty()) {
    mk.image_soft = require_special(tok, "<|image|>");
    mk.audio_soft = require_special(tok, "<|audio|>");
    mk.video_soft = require_special(tok, "<|video|>");
    for (auto s : {"<|image>", "<image|>", "<|audio>", "<audio|>"}) require_special(tok, s);
  }

  PromptInput out;
  out.hidden = hidden;
  out.tokens = tok.encode(text, /*parse_special=*/true);
  const size_t n = out.tokens.size();
  out.soft_index.assign(n, -1);
  out.block_ids.assign(n, -1);
  // Walk the placeholder tokens: each media item supplies `rows` consecutive ones; every image
  // and every video frame is its own bidirectional block, audio is none (§2.8).
  int32_t blocks = 0;
  size_t item = 0;
  int64_t row = 0;
  for (size_t i = 0; i < n; ++i) {
    const int32_t id = out.tokens[i];
    const bool visual = id == mk.image_soft || id == mk.video_soft;
    if (!visual && id != mk.audio_soft) continue;
    while (item < media.size() && row >= media[item].rows) {
      ++item;
      row = 0;
    }
    if (item >= media.size())
      throw EngineError("multimodal prompt: more placeholder tokens than embedder rows");
    const MediaEmbedding& m = media[item];
    const bool kind_ok = visual == (m.kind != MediaEmbedding::Kind::Audio);
    if (!kind_ok || static_cast<int64_t>(m.values.size()) != m.rows * hidden)
      throw EngineError("multimodal prompt: placeholder token at " + std::to_string(i) +
                        " does not match media item " + std::to_string(item + 1) +
                        " (kind, or rows × hidden values)");
    if (visual) {
      if (row == 0) ++blocks;
      out.block_ids[i] = blocks - 1;
    }
    out.soft_index[i] = static_cast<int32_t>(out.soft_rows());
    out.soft.insert(out.soft.end(), m.values.begin() + row * hidden,
                    m.values.begin() + (row + 1) * hidden);
    ++row;
  }
  while (item < media.size() && row >= media[item].rows) {
    ++item;
    row = 0;
  }
  if (item != media.size())
    throw EngineError("multimodal prompt: fewer placeholder tokens than embedder rows");
  return out;
}

}  // namespace rawflow
