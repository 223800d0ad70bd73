// The tokenizer targets: text of any bytes through a Gemma 4 vocabulary, and tokenizer.json files.
#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>

#include "fuzz/fuzz_targets.h"
#include "fuzz/scratch_files.h"
#include "fuzz/utf8.h"
#include "model/error.h"
#include "model/synth/synth.h"
#include "model/tokenizer/tokenizer.h"

namespace rawflow::fuzz {

namespace {

// rawflow's synthetic vocabulary: Gemma 4's specials, byte fallback and BPE merges, as the released
// vocabulary has (the released one is 262,144 tokens and not in the repository).
const Tokenizer& gemma_like_tokenizer() {
  static const Tokenizer tok(synth_vocab(2048));
  return tok;
}

// What decode gives back for `text`: the tokenizer writes spaces as U+2581, and decodes U+2581
// as a space, so a U+2581 in the text comes back as a space (as in llama.cpp).
std::string expected_decode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text.substr(i, 3) == "\xE2\x96\x81") {
      out += ' ';
      i += 3;
    } else {
      out += text[i++];
    }
  }
  return out;
}

}  // namespace

void tokenizer_text(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const Tokenizer& tok = gemma_like_tokenizer();
  for (const bool parse_special : {false, true}) {
    const auto ids = tok.encode(text, parse_special);
    for (const int32_t id : ids)
      if (id < 0 || static_cast<size_t>(id) >= tok.vocab().size())
        fail("tokenizer_text", "encode gave id " + std::to_string(id) + " outside the vocabulary");
    const std::string back = tok.decode(ids);
    // Byte fallback makes every byte string encodable; the round trip is promised for text.
    if (valid_utf8(text) && back != expected_decode(text))
      fail("tokenizer_text", "decode(encode(text)) differs from the text");
    StreamingDetokenizer stream(tok);
    std::string streamed;
    for (const int32_t id : ids) streamed += stream.push(id);
    streamed += stream.flush();
    if (!valid_utf8(streamed)) fail("tokenizer_text", "the streaming detokenizer gave bad UTF-8");
    if (valid_utf8(back) && streamed != back)
      fail("tokenizer_text", "the streaming detokenizer differs from decode on valid text");
  }
}

void tokenizer_json(const uint8_t* data, size_t size) {
  const std::string path = write_scratch("tokenizer/tokenizer.json", data, size);
  try {
    const Tokenizer tok(Vocab::from_tokenizer_json(path));
    (void)tok.decode(tok.encode("<bos><|turn>user\nhello world \xE2\x82\xAC<turn|>"));
  } catch (const ModelFileError&) {
  } catch (const std::exception& e) {
    fail("tokenizer_json",
         std::string("threw ") + typeid(e).name() + " instead of ModelFileError: " + e.what());
  }
}

}  // namespace rawflow::fuzz
