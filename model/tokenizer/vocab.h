#pragma once
// The tokenizer's vocabulary as stored in GGUF `tokenizer.ggml.*` (spec §6) or a tokenizer.json.
#include <cstdint>
#include <string>
#include <vector>

namespace rawflow {

class GgufFile;
class GgufWriter;

// llama.cpp's token types (tokenizer.ggml.token_type).
enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

struct Vocab {
  std::vector<std::string> tokens;  // pieces with U+2581 for spaces, `<0xAB>` for byte tokens
  std::vector<float> scores;
  std::vector<TokenType> types;
  std::vector<std::string> merges;  // "left right", rank = index
  int32_t bos_id = 2;
  int32_t eos_id = 1;
  int32_t eot_id = -1;
  int32_t pad_id = 0;
  int32_t unk_id = 3;
  int32_t mask_id = 4;
  bool add_bos = true;
  std::vector<int32_t> suppress_ids;

  size_t size() const { return tokens.size(); }
  // Id of a token by its exact string, -1 when absent.
  int32_t find(const std::string& piece) const;

  // Reads tokenizer.ggml.* (model must be "gemma4"; "llama"/"gemma" SentencePiece-BPE vocabularies
  // of the same shape are accepted). Throws ModelFileError naming the key.
  static Vocab from_gguf(const GgufFile& f);
  // Reads a Hugging Face tokenizer.json (BPE model with byte_fallback, added_tokens).
  static Vocab from_tokenizer_json(const std::string& path);
  // Writes every tokenizer.ggml.* key the released files carry (spec §6), model "gemma4".
  void write_gguf(GgufWriter& w) const;
};

}  // namespace rawflow
