#pragma once
// Gemma 4 text <-> token ids, bit-compatible with llama.cpp's "gemma4" tokenizer (spec §6):
// special-token split, spaces -> U+2581, split into runs of '\n' and runs of other characters,
// lowest-rank BPE over UTF-8 code points, byte fallback to `<0xAB>` tokens.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer/vocab.h"

namespace rawflow {

class Tokenizer {
 public:
  // Builds the lookup tables (token index, merge ranks, special-token trie). Throws ModelFileError
  // when a merge names a piece that cannot be split.
  explicit Tokenizer(Vocab v);

  // Token ids of `text`; no BOS is added (the chat template emits `<bos>` as text). With
  // `parse_special`, control and user-defined token strings are matched whole; without it only
  // user-defined ones are (llama.cpp's rule).
  std::vector<int32_t> encode(std::string_view text, bool parse_special = true) const;
  // Concatenated pieces: U+2581 -> space, byte tokens -> their byte, special tokens as their text.
  // The result may hold invalid UTF-8 when byte tokens do not form whole characters.
  std::string decode(std::span<const int32_t> ids) const;
  // Display text of one token (the raw byte for byte tokens). Throws EngineError on a bad id.
  std::string piece(int32_t id) const;
  // Id of a token by its exact string; throws EngineError "vocabulary has no token `s`".
  int32_t special(std::string_view s) const;
  const Vocab& vocab() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;  // shared: copies are cheap and the tables are immutable
};

// Turns a stream of generated ids into text that is always valid UTF-8: a character whose bytes
// arrive as several byte tokens is emitted once complete; bytes that can never form a character are
// replaced by U+FFFD.
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tok) : tok_(&tok) {}
  std::string push(int32_t id);
  // Whatever is still held back, incomplete sequences replaced by U+FFFD.
  std::string flush();

 private:
  const Tokenizer* tok_;
  std::string pending_;
};

}  // namespace rawflow
