// Vocabulary I/O: GGUF `tokenizer.ggml.*` (spec §6) and Hugging Face tokenizer.json.
#include "model/tokenizer/vocab.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "model/error.h"
#include "model/formats/gguf.h"

namespace rawflow {
namespace {

// Byte-fallback pieces are exactly `<0xAB>` with two hex digits (SentencePiece convention, which
// llama.cpp's converter uses to mark BYTE tokens).
bool is_byte_piece(const std::string& s) {
  auto hex = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  };
  return s.size() == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && hex(s[3]) && hex(s[4]) &&
         s[5] == '>';
}

// llama.cpp splits a merge at the first space after position 0; a left part with a space in it
// would be split differently from how it was meant, so such a merge cannot be stored.
std::string merge_string(const std::string& path, const std::string& left,
                         const std::string& right) {
  if (left.empty() || right.empty() || left.find(' ', 1) != std::string::npos)
    throw ModelFileError(path + ": merge `" + left + "` + `" + right +
                         "` cannot be stored as a \"left right\" string");
  return left + " " + right;
}

// tokenizer.json's optional string and boolean keys: a key of another type is the file's error,
// named, rather than the JSON library's type_error escaping.
std::string json_string_or(const std::string& path, const nlohmann::json& obj, const char* where,
                           const char* key, std::string def) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return def;
  if (!it->is_string()) throw ModelFileError(path + ": `" + where + key + "` is not a string");
  return it->get<std::string>();
}

bool json_bool_or(const std::string& path, const nlohmann::json& obj, const char* where,
                  const char* key, bool def) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return def;
  if (!it->is_boolean()) throw ModelFileError(path + ": `" + where + key + "` is not a boolean");
  return it->get<bool>();
}

int64_t json_id(const std::string& path, const nlohmann::json& id, const std::string& where) {
  if (!id.is_number_integer()) throw ModelFileError(path + ": " + where + " is not an integer id");
  return id.get<int64_t>();
}

int32_t id_or(const Vocab& v, const char* piece, int32_t def) {
  int32_t id = v.find(piece);
  return id >= 0 ? id : def;
}

int32_t checked_id(const GgufFile& f, const char* key, int64_t def, size_t n_tokens) {
  const int64_t id = f.get_int_or(key, def);
  if (id < -1 || id >= static_cast<int64_t>(n_tokens))
    throw ModelFileError(f.path() + ": metadata key `" + key + "` = " + std::to_string(id) +
                         " is outside the vocabulary of " + std::to_string(n_tokens) + " tokens");
  return static_cast<int32_t>(id);
}

}  // namespace

int32_t Vocab::find(const std::string& piece) const {
  // Linear on purpose: Vocab is plain data; the Tokenizer keeps the hash index for hot paths.
  // The last duplicate wins, as in llama.cpp's token_to_id map.
  for (size_t i = tokens.size(); i-- > 0;)
    if (tokens[i] == piece) return static_cast<int32_t>(i);
  return -1;
}

Vocab Vocab::from_gguf(const GgufFile& f) {
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model != "gemma4" && model != "llama" && model != "gemma")
    throw ModelFileError(f.path() + ": metadata key `tokenizer.ggml.model` is \"" + model +
                         "\"; rawflow reads \"gemma4\" (SentencePiece-style BPE) vocabularies");
  Vocab v;
  v.tokens = f.get_string_array("tokenizer.ggml.tokens");
  const size_t n = v.tokens.size();
  if (n == 0) throw ModelFileError(f.path() + ": metadata key `tokenizer.ggml.tokens` is empty");

  if (f.has("tokenizer.ggml.scores")) {
    const auto scores = f.get_float_array("tokenizer.ggml.scores");
    if (scores.size() != n)
      throw ModelFileError(f.path() + ": metadata key `tokenizer.ggml.scores` has " +
                           std::to_string(scores.size()) + " entries for " + std::to_string(n) +
                           " tokens");
    v.scores.assign(scores.begin(), scores.end());
  } else {
    v.scores.assign(n, 0.0f);
  }
  if (f.has("tokenizer.ggml.token_type")) {
    const auto types = f.get_int_array("tokenizer.ggml.token_type");
    if (types.size() != n)
      throw ModelFileError(f.path() + ": metadata key `tokenizer.ggml.token_type` has " +
                           std::to_string(types.size()) + " entries for " + std::to_string(n) +
                           " tokens");
    v.types.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      if (types[i] < 0 || types[i] > static_cast<int64_t>(TokenType::Byte))
        throw ModelFileError(f.path() + ": metadata key `tokenizer.ggml.token_type`[" +
                             std::to_string(i) + "] = " + std::to_string(types[i]) +
                             " is not a token type");
      v.types.push_back(static_cast<TokenType>(types[i]));
    }
  } else {
    v.types.assign(n, TokenType::Normal);
  }
  if (!f.has("tokenizer.ggml.merges"))
    throw ModelFileError(f.path() +
                         ": metadata key `tokenizer.ggml.merges` is missing (a BPE "
                         "vocabulary needs its merges)");
  v.merges = f.get_string_array("tokenizer.ggml.merges");

  v.bos_id = checked_id(f, "tokenizer.ggml.bos_token_id", v.bos_id, n);
  v.eos_id = checked_id(f, "tokenizer.ggml.eos_token_id", v.eos_id, n);
  v.eot_id = checked_id(f, "tokenizer.ggml.eot_token_id", v.eot_id, n);
  v.pad_id = checked_id(f, "tokenizer.ggml.padding_token_id", v.pad_id, n);
  v.unk_id = checked_id(f, "tokenizer.ggml.unknown_token_id", v.unk_id, n);
  v.mask_id = checked_id(f, "tokenizer.ggml.mask_token_id", v.mask_id, n);
  v.add_bos = f.get_bool_or("tokenizer.ggml.add_bos_token", v.add_bos);
  if (f.has("tokenizer.ggml.suppress_tokens")) {
    for (int64_t id : f.get_int_array("tokenizer.ggml.suppress_tokens")) {
      // llama.cpp drops out-of-range ids silently; so do we, the list is advisory.
      if (id >= 0 && id < static_cast<int64_t>(n))
        v.suppress_ids.push_back(static_cast<int32_t>(id));
    }
  }
  return v;
}

Vocab Vocab::from_tokenizer_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelFileError(path + ": cannot open tokenizer.json");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw ModelFileError(path + ": not valid JSON: " + e.what());
  }
  if (!j.contains("model") || !j["model"].is_object())
    throw ModelFileError(path + ": key `model` is missing");
  const auto& m = j["model"];
  if (json_string_or(path, m, "model.", "type", "") != "BPE")
    throw ModelFileError(path + ": key `model.type` is not \"BPE\"");
  if (!m.contains("vocab") || !m["vocab"].is_object())
    throw ModelFileError(path + ": key `model.vocab` is missing or not an object");
  if (!m.contains("merges") || !m["merges"].is_array())
    throw ModelFileError(path + ": key `model.merges` is missing or not an array");

  // Ids below the model vocabulary's size keep the type llama.cpp's converter (LlamaHfVocab) gives
  // them: BYTE for `<0xAB>`, CONTROL for special added tokens, NORMAL otherwise; added tokens above
  // it are CONTROL when special and USER_DEFINED when not.
  std::vector<std::string> tokens;
  std::vector<char> present;
  auto put = [&](int64_t id, const std::string& s, const char* where) {
    if (id < 0 || id > (1 << 24))
      throw ModelFileError(path + ": " + where + " id " + std::to_string(id) + " of `" + s +
                           "` is out of range");
    if (static_cast<size_t>(id) >= tokens.size()) {
      tokens.resize(id + 1);
      present.resize(id + 1, 0);
    }
    tokens[id] = s;
    present[id] = 1;
  };
  for (const auto& [piece, id] : m["vocab"].items())
    put(json_id(path, id, "the id of `" + piece + "` in model.vocab"), piece, "model.vocab");
  const size_t n_model = tokens.size();

  std::vector<std::pair<int64_t, bool>> added;  // id, special
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    if (!j["added_tokens"].is_array())
      throw ModelFileError(path + ": key `added_tokens` is not an array");
    for (const auto& a : j["added_tokens"]) {
      const std::string where = "added_tokens[" + std::to_string(added.size()) + "]";
      if (!a.is_object() || !a.contains("content") || !a["content"].is_string())
        throw ModelFileError(path + ": " + where + " has no string `content`");
      const int64_t id =
          json_id(path, a.contains("id") ? a["id"] : nlohmann::json(), where + ".id");
      put(id, a["content"].get<std::string>(), "added_tokens");
      added.emplace_back(id, json_bool_or(path, a, "added_tokens[].", "special", false));
    }
  }
  for (size_t i = 0; i < tokens.size(); ++i)
    if (!present[i])
      throw ModelFileError(path + ": token id " + std::to_string(i) +
                           " is missing (ids must be contiguous)");

  Vocab v;
  v.tokens = std::move(tokens);
  const size_t n = v.tokens.size();
  v.types.assign(n, TokenType::Normal);
  for (size_t i = 0; i < n; ++i)
    if (is_byte_piece(v.tokens[i])) v.types[i] = TokenType::Byte;
  for (const auto& [id, special] : added) {
    if (special)
      v.types[id] = TokenType::Control;
    else if (static_cast<size_t>(id) >= n_model)
      v.types[id] = TokenType::UserDefined;
  }
  // llama.cpp's Gemma4Model.set_vocab forces these to USER_DEFINED so they are rendered as text
  // (the chat parser reads them); the released GGUFs carry them that way (spec §6).
  for (const char* s : {"<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>",
                        "<|tool_response>", "<tool_response|>", "<|\"|>"}) {
    const int32_t id = v.find(s);
    if (id >= 0) v.types[id] = TokenType::UserDefined;
  }
  v.scores.assign(n, 0.0f);
  for (size_t i = 0; i < n; ++i)
    if (v.types[i] == TokenType::Control) v.scores[i] = -1000.0f;

  v.merges.reserve(m["merges"].size());
  for (const auto& e : m["merges"]) {
    if (e.is_string()) {
      const std::string s = e.get<std::string>();
      const size_t pos = s.find(' ', 1);
      if (pos == std::string::npos || s.find(' ', pos + 1) != std::string::npos)
        throw ModelFileError(path + ": merge \"" + s + "\" is not \"left right\"");
      v.merges.push_back(s);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      v.merges.push_back(merge_string(path, e[0].get<std::string>(), e[1].get<std::string>()));
    } else {
      throw ModelFileError(path + ": merge #" + std::to_string(v.merges.size()) +
                           " is neither \"left right\" nor [left, right]");
    }
  }

  v.bos_id = id_or(v, "<bos>", v.bos_id);
  v.eos_id = id_or(v, "<eos>", v.eos_id);
  v.pad_id = id_or(v, "<pad>", v.pad_id);
  v.unk_id = id_or(v, json_string_or(path, m, "model.", "unk_token", "<unk>").c_str(), v.unk_id);
  v.mask_id = id_or(v, "<mask>", v.mask_id);
  // Gemma 4 ends a turn with `<turn|>`; Gemma 3 vocabularies (used in tests) with `<end_of_turn>`.
  v.eot_id = id_or(v, "<turn|>", id_or(v, "<end_of_turn>", -1));
  v.add_bos = true;
  // Spec §1.5: the end-of-audio and end-of-image markers must never be sampled.
  for (const char* s : {"<audio|>", "<image|>"}) {
    const int32_t id = v.find(s);
    if (id >= 0) v.suppress_ids.push_back(id);
  }
  return v;
}

void Vocab::write_gguf(GgufWriter& w) const {
  const size_t n = tokens.size();
  if (scores.size() != n || types.size() != n)
    throw ModelFileError("vocabulary: " + std::to_string(n) + " tokens but " +
                         std::to_string(scores.size()) + " scores and " +
                         std::to_string(types.size()) + " token types");
  w.set_string("tokenizer.ggml.model", "gemma4");
  w.set_array_string("tokenizer.ggml.tokens", tokens);
  w.set_array_f32("tokenizer.ggml.scores", scores);
  std::vector<int32_t> t(n);
  for (size_t i = 0; i < n; ++i) t[i] = static_cast<int32_t>(types[i]);
  w.set_array_i32("tokenizer.ggml.token_type", t);
  w.set_array_string("tokenizer.ggml.merges", merges);
  auto put_id = [&](const char* key, int32_t id) {
    if (id >= 0) w.set_u32(key, static_cast<uint32_t>(id));
  };
  put_id("tokenizer.ggml.bos_token_id", bos_id);
  put_id("tokenizer.ggml.eos_token_id", eos_id);
  put_id("tokenizer.ggml.eot_token_id", eot_id);
  put_id("tokenizer.ggml.unknown_token_id", unk_id);
  put_id("tokenizer.ggml.padding_token_id", pad_id);
  put_id("tokenizer.ggml.mask_token_id", mask_id);
  w.set_bool("tokenizer.ggml.add_bos_token", add_bos);
  w.set_bool("tokenizer.ggml.add_space_prefix", false);
  if (!suppress_ids.empty()) w.set_array_i32("tokenizer.ggml.suppress_tokens", suppress_ids);
}

}  // namespace rawflow
