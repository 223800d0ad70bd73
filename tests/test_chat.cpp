#define BOOST_TEST_MODULE test_chat
#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

#include "model/error.h"
#include "model/gemma4/chat.h"
#include "model/tokenizer/vocab.h"

using namespace rawflow;

namespace {

using Kind = ChatPart::Kind;

ChatMessage text_message(std::string role, std::string text) {
  return ChatMessage{std::move(role), {ChatPart{Kind::Text, std::move(text)}}};
}

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// Placeholder expansion of spec §5.2, done here only to compare with §5.3's post-expansion text.
std::string expand(std::string text, const std::string& placeholder, const std::string& open,
                   const std::string& close, int n) {
  const std::string block = open + repeat(placeholder, n) + close;
  const size_t at = text.find(placeholder);
  BOOST_REQUIRE(at != std::string::npos);
  text.replace(at, placeholder.size(), block);
  return text;
}

const std::string kGenPrompt = "<|turn>model\n<|channel>thought\n<channel|>";

}  // namespace

BOOST_AUTO_TEST_CASE(text_only_prompt) {
  BOOST_CHECK_EQUAL(render_user_prompt("  Why is the sky blue?\n"),
                    "<bos><|turn>user\nWhy is the sky blue?<turn|>\n" + kGenPrompt);
  ChatOptions no_gen;
  no_gen.add_generation_prompt = false;
  BOOST_CHECK_EQUAL(render_user_prompt("Hi", no_gen), "<bos><|turn>user\nHi<turn|>\n");
}

BOOST_AUTO_TEST_CASE(image_example_of_spec_5_3) {
  const std::vector<ChatMessage> msgs = {
      {"user", {{Kind::Image, ""}, {Kind::Text, "What is shown in this image?"}}}};
  const std::string rendered = render_chat(msgs);
  BOOST_CHECK_EQUAL(
      rendered,
      "<bos><|turn>user\n\n\n<|image|>\n\nWhat is shown in this image?<turn|>\n" + kGenPrompt);
  // §5.3 verbatim, N = 256 soft tokens for a square image.
  const std::string spec_5_3 = "<bos><|turn>user\n\n\n<|image>" + repeat("<|image|>", 256) +
                               "<image|>\n\nWhat is shown in this image?<turn|>\n<|turn>model\n"
                               "<|channel>thought\n<channel|>";
  BOOST_CHECK_EQUAL(expand(rendered, "<|image|>", "<|image>", "<image|>", 256), spec_5_3);
}

BOOST_AUTO_TEST_CASE(audio_example_of_spec_5_3) {
  const std::vector<ChatMessage> msgs = {
      {"user", {{Kind::Text, "Transcribe this audio. "}, {Kind::Audio, ""}}}};
  const std::string rendered = render_chat(msgs);
  BOOST_CHECK_EQUAL(rendered,
                    "<bos><|turn>user\nTranscribe this audio.<|audio|><turn|>\n" + kGenPrompt);
  // §5.3: "…<|turn>user\nTranscribe this audio.<|audio>" + n×"<|audio|>" + "<audio|><turn|>\n…"
  BOOST_CHECK_EQUAL(expand(rendered, "<|audio|>", "<|audio>", "<audio|>", 25),
                    "<bos><|turn>user\nTranscribe this audio.<|audio>" + repeat("<|audio|>", 25) +
                        "<audio|><turn|>\n" + kGenPrompt);
}

BOOST_AUTO_TEST_CASE(video_and_mixed_parts_concatenate_without_separator) {
  const std::vector<ChatMessage> msgs = {{"user",
                                          {{Kind::Text, "Compare "},
                                           {Kind::Video, ""},
                                           {Kind::Image, ""},
                                           {Kind::Audio, ""},
                                           {Kind::Text, "\tand say which is louder. "}}}};
  BOOST_CHECK_EQUAL(render_chat(msgs),
                    "<bos><|turn>user\nCompare\n\n<|video|>\n\n\n\n<|image|>\n\n<|audio|>and say "
                    "which is louder.<turn|>\n" +
                        kGenPrompt);
}

BOOST_AUTO_TEST_CASE(multi_turn_strips_earlier_thinking) {
  const std::vector<ChatMessage> msgs = {
      text_message("user", "Hi"),
      text_message("assistant",
                   "<|channel>thought\nThe user greets me.\n<channel|>Hello! How can I help?\n"),
      text_message("user", "Tell me a joke."),
  };
  BOOST_CHECK_EQUAL(render_chat(msgs),
                    "<bos><|turn>user\nHi<turn|>\n<|turn>model\nHello! How can I help?<turn|>\n"
                    "<|turn>user\nTell me a joke.<turn|>\n" +
                        kGenPrompt);
  // The newer template's primer on history turns (spec §5.1, June-2026 commit).
  ChatOptions primer;
  primer.thought_primer_in_history = true;
  BOOST_CHECK_EQUAL(
      render_chat(msgs, primer),
      "<bos><|turn>user\nHi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>Hello! "
      "How can I help?<turn|>\n<|turn>user\nTell me a joke.<turn|>\n" +
          kGenPrompt);
  // "model" is accepted as a role name too and renders identically.
  std::vector<ChatMessage> as_model = msgs;
  as_model[1].role = "model";
  BOOST_CHECK_EQUAL(render_chat(as_model), render_chat(msgs));
}

BOOST_AUTO_TEST_CASE(system_turn) {
  const std::vector<ChatMessage> msgs = {text_message("system", " You are a concise assistant.\n"),
                                         text_message("user", "Answer with OK.")};
  BOOST_CHECK_EQUAL(render_chat(msgs),
                    "<bos><|turn>system\nYou are a concise assistant.<turn|>\n"
                    "<|turn>user\nAnswer with OK.<turn|>\n" +
                        kGenPrompt);
  std::vector<ChatMessage> dev = msgs;
  dev[0].role = "developer";  // a leading developer message is the system turn as well
  BOOST_CHECK_EQUAL(render_chat(dev), render_chat(msgs));
}

BOOST_AUTO_TEST_CASE(thinking_on) {
  ChatOptions think;
  think.enable_thinking = true;
  const std::vector<ChatMessage> msgs = {text_message("system", "You are a concise assistant."),
                                         text_message("user", "Answer with OK.")};
  // With thinking on the generation prompt stops at "<|turn>model\n": the model opens the channel.
  BOOST_CHECK_EQUAL(render_chat(msgs, think),
                    "<bos><|turn>system\n<|think|>\nYou are a concise assistant.<turn|>\n"
                    "<|turn>user\nAnswer with OK.<turn|>\n<|turn>model\n");
  // No system message: thinking alone opens a system turn.
  BOOST_CHECK_EQUAL(render_user_prompt("Answer with OK.", think),
                    "<bos><|turn>system\n<|think|>\n<turn|>\n<|turn>user\nAnswer with OK.<turn|>\n"
                    "<|turn>model\n");
  // History thinking is stripped with thinking on as well, and the primer is never added then.
  think.thought_primer_in_history = true;
  const std::vector<ChatMessage> hist = {
      text_message("user", "2+2?"), text_message("assistant", "<|channel>thought\nadd<channel|>4"),
      text_message("user", "3+3?")};
  BOOST_CHECK_EQUAL(render_chat(hist, think),
                    "<bos><|turn>system\n<|think|>\n<turn|>\n<|turn>user\n2+2?<turn|>\n"
                    "<|turn>model\n4<turn|>\n<|turn>user\n3+3?<turn|>\n<|turn>model\n");
}

BOOST_AUTO_TEST_CASE(strip_thinking_follows_the_template_macro) {
  BOOST_CHECK_EQUAL(strip_thinking("<|channel>thought\nhmm<channel|>Answer"), "Answer");
  BOOST_CHECK_EQUAL(strip_thinking("A<|channel>x<channel|>B<|channel>y<channel|> C "), "AB C");
  // An unclosed channel drops the rest of the text (split on <channel|> leaves one segment).
  BOOST_CHECK_EQUAL(strip_thinking("Visible <|channel>thought\nunfinished"), "Visible");
  // A stray closer is removed, the text on both sides kept.
  BOOST_CHECK_EQUAL(strip_thinking("left<channel|>right"), "leftright");
  BOOST_CHECK_EQUAL(strip_thinking("plain answer"), "plain answer");
}

BOOST_AUTO_TEST_CASE(trim_matches_python_strip) {
  // U+3000 ideographic space, U+00A0 no-break space, U+2028 line separator: all str.isspace().
  BOOST_CHECK_EQUAL(trim_whitespace("\xE3\x80\x80 hi there\xC2\xA0\n\xE2\x80\xA8"), "hi there");
  // U+00E9 (é) and U+200B (zero-width space, not isspace) are kept.
  BOOST_CHECK_EQUAL(trim_whitespace("\xE2\x80\x8B\xC3\xA9 "), "\xE2\x80\x8B\xC3\xA9");
  BOOST_CHECK_EQUAL(trim_whitespace(" \t\r\n\v\f"), "");
  // A malformed trailing byte is not whitespace and stops the trim.
  BOOST_CHECK_EQUAL(trim_whitespace(" a\x80 "), "a\x80");
}

BOOST_AUTO_TEST_CASE(unknown_role_is_an_error) {
  BOOST_CHECK_THROW(render_chat({text_message("tool", "x")}), EngineError);
  BOOST_CHECK_THROW(render_chat({text_message("user", "x"), text_message("robot", "y")}),
                    EngineError);
}

BOOST_AUTO_TEST_CASE(stop_ids_from_vocab) {
  // The ids of spec §1.4 for the tokens that matter; the rest are filler pieces.
  Vocab v;
  v.tokens.resize(262144);
  for (size_t i = 0; i < v.tokens.size(); ++i) v.tokens[i] = "<unused" + std::to_string(i) + ">";
  v.tokens[0] = "<pad>";
  v.tokens[1] = "<eos>";
  v.tokens[2] = "<bos>";
  v.tokens[50] = "<|tool_response>";
  v.tokens[105] = "<|turn>";
  v.tokens[106] = "<turn|>";
  v.scores.assign(v.tokens.size(), 0.0f);
  v.types.assign(v.tokens.size(), TokenType::Normal);
  v.eos_id = 106;  // as in unsloth's GGUF (spec §6): already in the list, not repeated
  v.eot_id = 106;
  BOOST_CHECK(stop_ids(v) == (std::vector<int32_t>{1, 106, 50}));

  // A vocabulary without Gemma 4's chat tokens (Gemma 3 layout): fall back to eos/eot ids.
  Vocab g3 = v;
  g3.tokens[50] = "<unused50>";
  g3.tokens[106] = "<end_of_turn>";
  g3.eos_id = 1;
  g3.eot_id = 106;
  BOOST_CHECK(stop_ids(g3) == (std::vector<int32_t>{1, 106}));

  // Out-of-range ids are ignored rather than returned.
  Vocab tiny;
  tiny.tokens = {"<pad>", "<eos>"};
  tiny.eos_id = 1;
  tiny.eot_id = 7;
  BOOST_CHECK(stop_ids(tiny) == (std::vector<int32_t>{1}));
}
