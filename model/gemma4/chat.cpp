#include "model/gemma4/chat.h"

#include <algorithm>

#include "model/error.h"
#include "model/tokenizer/vocab.h"

namespace rawflow {
namespace {

constexpr std::string_view kTurnOpen = "<|turn>";
constexpr std::string_view kTurnClose = "<turn|>\n";
constexpr std::string_view kChannelOpen = "<|channel>";
constexpr std::string_view kChannelClose = "<channel|>";
// An empty, closed thought channel: tells the 12B IT model to answer without thinking.
constexpr std::string_view kEmptyThought = "<|channel>thought\n<channel|>";

// Code point of the UTF-8 sequence starting at s[pos] and its byte length; {-1, 1} when malformed
// (malformed bytes are never whitespace, so they simply stop the trim).
std::pair<int32_t, size_t> decode_utf8(std::string_view s, size_t pos) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  size_t len = b0 < 0x80           ? 1
               : (b0 >> 5) == 0x6  ? 2
               : (b0 >> 4) == 0xE  ? 3
               : (b0 >> 3) == 0x1E ? 4
                                   : 0;
  if (len == 0 || pos + len > s.size()) return {-1, 1};
  int32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (size_t i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s[pos + i]);
    if ((b & 0xC0) != 0x80) return {-1, 1};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, len};
}

// Python's str.isspace() set, which Jinja's `trim` (str.strip) removes.
bool is_python_space(int32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// The role name written after <|turn>; throws for roles the template has no turn for.
std::string turn_role(const std::string& role) {
  if (role == "assistant" || role == "model") return "model";
  if (role == "user" || role == "system" || role == "developer") return role;
  throw EngineError("render_chat: unsupported message role '" + role +
                    "' (expected system, developer, user, assistant or model)");
}

// The content of one turn: parts concatenated with nothing in between (spec §5.1).
std::string render_parts(const ChatMessage& m, bool model_turn) {
  std::string out;
  for (const ChatPart& part : m.parts) {
    switch (part.kind) {
      case ChatPart::Kind::Text:
        out += model_turn ? strip_thinking(part.text) : trim_whitespace(part.text);
        break;
      // The newlines around image/video follow the template version the spec quotes (§5.1, §5.3).
      // Some published template versions emit a bare "<|image|>" instead and (presumably) leave the
      // "\n\n" to the processor's expansion; the token sequence is the same as long as exactly one
      // of the two adds them. Unverified against the official 12B file: spec §8.2.
      case ChatPart::Kind::Image:
        out += "\n\n<|image|>\n\n";
        break;
      case ChatPart::Kind::Video:
        out += "\n\n<|video|>\n\n";
        break;
      case ChatPart::Kind::Audio:
        out += "<|audio|>";
        break;
    }
  }
  return out;
}

bool is_system_role(const std::string& role) { return role == "system" || role == "developer"; }

}  // namespace

std::string trim_whitespace(std::string_view text) {
  size_t begin = 0;
  while (begin < text.size()) {
    const auto [cp, len] = decode_utf8(text, begin);
    if (!is_python_space(cp)) break;
    begin += len;
  }
  size_t end = text.size();
  while (end > begin) {
    // Step back to the first byte of the last code point (at most 3 continuation bytes).
    size_t start = end - 1;
    while (start > begin && end - start < 4 &&
           (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) {
      --start;
    }
    const auto [cp, len] = decode_utf8(text, start);
    if (start + len != end || !is_python_space(cp)) break;
    end = start;
  }
  return std::string(text.substr(begin, end - begin));
}

std::string strip_thinking(std::string_view text) {
  // Mirrors the template macro: split on <channel|>; a segment holding <|channel> keeps only what
  // precedes its first <|channel>.
  std::string kept;
  size_t pos = 0;
  while (true) {
    const size_t close = text.find(kChannelClose, pos);
    const std::string_view segment =
        text.substr(pos, close == std::string_view::npos ? std::string_view::npos : close - pos);
    const size_t open = segment.find(kChannelOpen);
    kept += segment.substr(0, open);
    if (close == std::string_view::npos) break;
    pos = close + kChannelClose.size();
  }
  return trim_whitespace(kept);
}

std::string render_chat(const std::vector<ChatMessage>& messages, const ChatOptions& opt) {
  std::string out = "<bos>";
  size_t first = 0;
  const bool leading_system = !messages.empty() && is_system_role(messages.front().role);
  // The template opens a system turn for a leading system/developer message or for thinking (and
  // for tools, which rawflow does not render).
  if (leading_system || opt.enable_thinking) {
    out += kTurnOpen;
    out += "system\n";
    if (opt.enable_thinking) out += "<|think|>\n";
    if (leading_system) {
      out += render_parts(messages.front(), /*model_turn=*/false);
      first = 1;
    }
    out += kTurnClose;
  }
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const std::string role = turn_role(m.role);
    const bool model_turn = role == "model";
    out += kTurnOpen;
    out += role;
    out += '\n';
    if (model_turn && opt.thought_primer_in_history && !opt.enable_thinking) out += kEmptyThought;
    out += render_parts(m, model_turn);
    out += kTurnClose;
  }
  if (opt.add_generation_prompt) {
    out += kTurnOpen;
    out += "model\n";
    // With thinking on, the model opens <|channel>thought\n...<channel|> itself.
    if (!opt.enable_thinking) out += kEmptyThought;
  }
  return out;
}

std::string render_user_prompt(const std::string& text, const ChatOptions& opt) {
  return render_chat({ChatMessage{"user", {ChatPart{ChatPart::Kind::Text, text}}}}, opt);
}

std::vector<int32_t> stop_ids(const Vocab& vocab) {
  std::vector<int32_t> ids;
  const auto add = [&](int32_t id) {
    if (id >= 0 && static_cast<size_t>(id) < vocab.size() &&
        std::find(ids.begin(), ids.end(), id) == ids.end()) {
      ids.push_back(id);
    }
  };
  for (const char* piece : {"<eos>", "<turn|>", "<|tool_response>"}) add(vocab.find(piece));
  add(vocab.eos_id);
  add(vocab.eot_id);
  return ids;
}

}  // namespace rawflow
