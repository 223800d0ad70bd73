#pragma once
// The Gemma 4 IT turn format rendered as text (spec §5.1–5.4), before placeholder expansion (§5.2)
// and tokenisation (§6).
//
// The output starts with the literal text "<bos>": the chat template emits it, so the tokenizer
// must parse it as the special token and must NOT add a second BOS (spec §6, "BOS").
//
// Tool declarations, tool calls and tool responses are not rendered (rawflow does not drive tools).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rawflow {

struct Vocab;

struct ChatPart {
  enum class Kind { Text, Image, Audio, Video } kind = Kind::Text;
  std::string text;  // Text only
};

struct ChatMessage {
  std::string role;  // system | developer | user | assistant | model
  std::vector<ChatPart> parts;
};

struct ChatOptions {
  bool add_generation_prompt = true;
  bool enable_thinking = false;
  // Newer 12B templates (a June-2026 commit, spec §5.1) also put the empty thought channel
  // `<|channel>thought\n<channel|>` after `<|turn>model\n` on earlier model turns when thinking is
  // off, so that turn N's KV cache is a prefix of turn N+1's prompt. Off by default: the template
  // version the spec's examples follow does not (spec §8.2: the exact template is not verified).
  bool thought_primer_in_history = false;
};

// Renders a conversation, e.g. for one user text turn with thinking off:
//   <bos><|turn>user\n{text}<turn|>\n<|turn>model\n<|channel>thought\n<channel|>
// Media parts render as their placeholders (image "\n\n<|image|>\n\n", video "\n\n<|video|>\n\n",
// audio "<|audio|>"); text parts are trimmed; assistant turns are rendered as "model" with their
// thinking stripped. A leading system/developer message becomes the system turn, which also carries
// "<|think|>\n" when thinking is enabled. Throws EngineError for an unknown role.
std::string render_chat(const std::vector<ChatMessage>& messages, const ChatOptions& opt = {});

// One user turn holding `text` (trimmed), with the generation prompt.
std::string render_user_prompt(const std::string& text, const ChatOptions& opt = {});

// The template's strip_thinking: removes every `<|channel>...<channel|>` span (an unclosed
// `<|channel>` drops the rest of its segment) and trims the result. Use it on a model answer before
// putting it back into the history.
std::string strip_thinking(std::string_view text);

// Trims whitespace as Python's str.strip() does (Jinja's `trim`): ASCII and Unicode whitespace.
std::string trim_whitespace(std::string_view text);

// Ids that end generation (spec §5.4): `<eos>`, `<turn|>`, `<|tool_response>` where the vocabulary
// has them, then vocab.eos_id / vocab.eot_id if valid and not already listed (for vocabularies
// without Gemma 4's chat tokens). No duplicates.
std::vector<int32_t> stop_ids(const Vocab& vocab);

}  // namespace rawflow
