#include "model/synth/synth.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <utility>

#include "model/error.h"
#include "model/formats/gguf.h"
#include "model/formats/quant.h"
#include "model/formats/safetensors.h"
#include "model/gemma4/gemma4_mmproj.h"

namespace rawflow {
namespace {

// ---------------------------------------------------------------------------------------------
// Counter-based generator: every element is a pure function of (seed, tensor name, index), so a
// tensor's values do not depend on its dtype, on other tensors or on the order of generation, and
// chunks can be generated in parallel.

constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;

uint64_t splitmix_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t stream_key(uint64_t seed, const std::string& name) {
  return splitmix_mix((seed ^ fnv1a64(name)) + kGamma);
}

// Uniform in [0, 1) from counter `ctr` of a stream (53 random bits, exact in double).
double uniform01(uint64_t key, uint64_t ctr) {
  return static_cast<double>(splitmix_mix(key + ctr * kGamma) >> 11) * 0x1.0p-53;
}

// Zero-mean, unit-variance, bell-shaped (Irwin–Hall of 4 uniforms): no libm call, so the values are
// the same on every platform and a numpy re-implementation reproduces them bit for bit.
double unit_noise(uint64_t key, uint64_t i) {
  double acc = 0.0;
  for (uint64_t k = 0; k < 4; ++k) acc += uniform01(key, 4 * i + k + 1);
  return (acc - 2.0) * std::sqrt(3.0);
}

float round_to_bf16_grid(float x) { return bf16_to_f32(f32_to_bf16(x)); }

// ---------------------------------------------------------------------------------------------
// Scales. Tuned with a numpy implementation of spec §2 on the tiny and geometry presets (mean
// next-token entropy ≈ 3 nats over random prompts, median top-1 logit margin ≈ 0.6–0.9, the input
// token is the argmax ≈ 10 % of the time instead of always).

// Std of the final logits over the vocabulary for a random hidden state. A Gaussian logit vector of
// std s over V entries has entropy ≈ ln V − s²/2; 1.74 nats below ln V measured ≈ 3 nats on tiny.
double logit_std(int64_t vocab_size) {
  return std::sqrt(2.0 * std::max(1.0, std::log(static_cast<double>(vocab_size)) - 1.74));
}
double embedding_std(const SynthPreset& p, int64_t vocab_size) {
  return logit_std(vocab_size) / std::sqrt(static_cast<double>(p.hidden));
}
// The tied head scores the input token by |E[id]|·√hidden ∝ √hidden times its share of the final
// residual; post-norms this many times the embedding's RMS keep that share small at every width.
double post_norm_mean(const SynthPreset& p, int64_t vocab_size) {
  return 2.0 * logit_std(vocab_size) * std::sqrt(static_cast<double>(p.hidden) / 256.0);
}
// Attention scale is 1.0 (spec §2.7): q is normed to ≈1 per element, so k_norm ≈ 2/√D makes the
// scores of random q, k ≈ N(0, 2²) at every head width (the released 12B: q_norm ≈1, k_norm ≈0.12).
double k_norm_mean(int64_t head_dim) { return 2.0 / std::sqrt(static_cast<double>(head_dim)); }
constexpr double kNormRelNoise = 0.1;
// Embedder LayerNorm biases and the patch_dense bias: small against the unit-variance rows.
constexpr double kBiasStd = 0.1;
// Each position row adds this std per element to the unit-variance LayerNorm'd patch embedding,
// so position carries 2·0.5² / (1 + 2·0.5²) = 1/3 of the variance: swapping positions visibly
// changes a soft token, as it must for tests of the x/y order to mean something.
constexpr double kPositionStd = 0.5;
// The projections take a unit-RMS row (weightless RMSNorm) to soft tokens whose elements have the
// std of a scaled text embedding row, E[id]·√hidden, i.e. logit_std: the decoder sees soft and
// text tokens at the same magnitude, as in the released model.
double soft_token_projection_std(int64_t in, int64_t vocab_size) {
  return logit_std(vocab_size) / std::sqrt(static_cast<double>(in));
}

// ---------------------------------------------------------------------------------------------

// Element generator for one tensor: value(i) for any i in [0, nelements).
class TensorValues {
 public:
  TensorValues(const SynthPreset& p, int64_t vocab_size, const PlannedTensor& t, uint64_t seed)
      : p_(p), role_(t.role), key_(stream_key(seed, t.gguf_name)) {
    switch (t.role) {
      case TensorRole::Embedding:
        std_ = embedding_std(p, vocab_size);
        break;
      case TensorRole::Matrix:
        std_ = 1.0 / std::sqrt(static_cast<double>(t.ne[0]));
        break;
      case TensorRole::Norm:
        mean_ = 1.0;
        break;
      case TensorRole::KNorm:
        mean_ = k_norm_mean(t.ne[0]);
        break;
      case TensorRole::PostNorm:
        mean_ = post_norm_mean(p, vocab_size);
        break;
      case TensorRole::OutputScale:
      case TensorRole::RopeFreqs:
        break;
      case TensorRole::Bias:
        std_ = kBiasStd;
        break;
      case TensorRole::PositionTable:
        std_ = kPositionStd;
        break;
      case TensorRole::SoftTokenProjection:
        std_ = soft_token_projection_std(t.ne[0], vocab_size);
        break;
    }
  }

  void fill(int64_t begin, int64_t count, float* out) const {
    for (int64_t j = 0; j < count; ++j) out[j] = value(static_cast<uint64_t>(begin + j));
  }

 private:
  float value(uint64_t i) const {
    switch (role_) {
      case TensorRole::Embedding:
      case TensorRole::Matrix:
      case TensorRole::PositionTable:
      case TensorRole::SoftTokenProjection:
        return static_cast<float>(std_ * unit_noise(key_, i));
      case TensorRole::Bias:
        return round_to_bf16_grid(static_cast<float>(std_ * unit_noise(key_, i)));
      case TensorRole::Norm:
      case TensorRole::KNorm:
      case TensorRole::PostNorm:
        return round_to_bf16_grid(
            static_cast<float>(mean_ * (1.0 + kNormRelNoise * unit_noise(key_, i))));
      case TensorRole::OutputScale:
        // ≈0.5–1: shrinks earlier layers' contributions (and the input embedding) a little per
        // layer, as the released per-layer scalars do (much more strongly) on the 12B.
        return round_to_bf16_grid(static_cast<float>(0.5 + 0.5 * uniform01(key_, i + 1)));
      case TensorRole::RopeFreqs:
        return rope_freqs_value(p_, static_cast<int64_t>(i));
    }
    return 0.0f;
  }

  const SynthPreset& p_;
  TensorRole role_;
  uint64_t key_;
  double std_ = 0.0;
  double mean_ = 0.0;
};

// The random values of every tensor, for the shared writers (model/formats/gguf_export.h).
RowFillerSource synth_source(const SynthPreset& p, int64_t vocab_size, uint64_t seed) {
  return [&p, vocab_size, seed](const PlannedTensor& t) -> RowFiller {
    auto gen = std::make_shared<const TensorValues>(p, vocab_size, t, seed);
    const int64_t row = t.ne[0];
    return [gen, row](int64_t first, int64_t rows, float* out) {
      gen->fill(first * row, rows * row, out);
    };
  };
}

// ---------------------------------------------------------------------------------------------
// Synthetic vocabulary.

// Text the BPE pieces are learnt from: everyday English, so that English prompts in tests tokenize
// into multi-character pieces ("▁the", "ing", ...) as they do with the real vocabulary.
constexpr const char* kCorpus =
    "The quick brown fox jumps over the lazy dog. A small model can still be tested with care, "
    "and the tests should be fast. When the weather is fine we walk to the river and watch the "
    "boats go by. She said that the report would be ready in the morning, but it was late again. "
    "There is a house on the hill where an old man lives with his cat and two dogs. They were "
    "looking for the station when it started to rain, so they stopped at a small cafe and had "
    "some tea. What is shown in this image? Describe the picture in one short sentence. "
    "Transcribe the following speech segment into text. The camera sees a person walking across "
    "the street while a car is waiting at the light. Please answer the question and explain your "
    "reasoning step by step. This is the first time that I have seen such a thing, and I think it "
    "will not be the last. People often ask how long it takes to learn a new language; the answer "
    "depends on how much time you spend each day. Our team worked through the night to finish the "
    "project before the deadline. The children played in the garden until their mother called them "
    "in for dinner. He opened the window, looked outside and saw that the snow had covered "
    "everything. In the beginning there was nothing but water and light. You can find more "
    "information about this topic in the documentation. It is important to remember that every "
    "number has a meaning. The meeting will start at ten and should end before noon. I would like "
    "to thank everyone who helped me with this work. After the storm the village was quiet and "
    "the streets were empty. We need to check the results again because something looks wrong. "
    "Music and art make the world a better place for all of us. The doctor told him to rest and "
    "drink plenty of water. Where are you going, and when will you come back home? The history of "
    "the city goes back more than a thousand years. Students should read the chapter before the "
    "next class. The system processes audio and video streams in real time and reports what it "
    "hears and sees. Good morning, how are you today? Thank you very much for your help. The "
    "number of people living in large cities is growing every year. He wanted to buy a new "
    "computer, but the prices were too high. Let me know if you have any other questions. The "
    "sun was setting behind the mountains and the sky turned red and gold. Water boils at one "
    "hundred degrees. A good story has a beginning, a middle and an end. The train leaves at "
    "seven thirty from platform four. My brother and my sister both work at the hospital. "
    "Nothing happened for a long time, and then everything changed at once.";

struct SpecialToken {
  const char* text;
  TokenType type;
};

// Spec §1.4 / §6. The seven chat-structure markers llama.cpp renders as text are USER_DEFINED.
constexpr SpecialToken kSpecials[] = {
    {"<pad>", TokenType::Control},
    {"<eos>", TokenType::Control},
    {"<bos>", TokenType::Control},
    {"<unk>", TokenType::Control},
    {"<mask>", TokenType::Control},
    {"<|turn>", TokenType::Control},
    {"<turn|>", TokenType::Control},
    {"<|channel>", TokenType::UserDefined},
    {"<channel|>", TokenType::UserDefined},
    {"<|think|>", TokenType::Control},
    {"<|tool>", TokenType::Control},
    {"<tool|>", TokenType::Control},
    {"<|tool_call>", TokenType::UserDefined},
    {"<tool_call|>", TokenType::UserDefined},
    {"<|tool_response>", TokenType::UserDefined},
    {"<tool_response|>", TokenType::UserDefined},
    {"<|\"|>", TokenType::UserDefined},
    {"<|image>", TokenType::Control},
    {"<image|>", TokenType::Control},
    {"<|image|>", TokenType::Control},
    {"<|audio>", TokenType::Control},
    {"<audio|>", TokenType::Control},
    {"<|audio|>", TokenType::Control},
    {"<|video|>", TokenType::Control},
};

constexpr const char* kSpace = "\xE2\x96\x81";  // U+2581

// Splits UTF-8 into code points (the corpus is ASCII plus U+2581).
std::vector<std::string> code_points(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

// Classic BPE training over the corpus words (each prefixed by ▁, as SentencePiece sees them):
// repeatedly merge the most frequent adjacent pair (ties: smallest "left right" string), until
// `budget` new pieces exist or every word is one piece.
void learn_merges(Vocab& v, std::map<std::string, int32_t>& index, int64_t size) {
  std::map<std::string, int64_t> word_freq;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) ++word_freq[std::string(kSpace) + word];
    word.clear();
  };
  for (const char* c = kCorpus; *c; ++c) {
    if (*c == ' ')
      flush();
    else
      word.push_back(*c);
  }
  flush();

  std::vector<std::pair<std::vector<std::string>, int64_t>> words;
  for (const auto& [w, f] : word_freq) words.emplace_back(code_points(w), f);

  auto add_piece = [&](const std::string& s) {
    if (index.count(s) || static_cast<int64_t>(v.tokens.size()) >= size) return;
    index[s] = static_cast<int32_t>(v.tokens.size());
    v.tokens.push_back(s);
    v.scores.push_back(0.0f);
    v.types.push_back(TokenType::Normal);
  };
  // Single characters first: letters and digits always (any English word can be spelt), then
  // whatever else the corpus uses.
  for (char c = 'a'; c <= 'z'; ++c) add_piece(std::string(1, c));
  for (char c = 'A'; c <= 'Z'; ++c) add_piece(std::string(1, c));
  for (char c = '0'; c <= '9'; ++c) add_piece(std::string(1, c));
  for (const char* c = ".,!?;:'\"-()/"; *c; ++c) add_piece(std::string(1, *c));
  for (const auto& [w, f] : words)
    for (const auto& cp : w) add_piece(cp);

  while (static_cast<int64_t>(v.tokens.size()) < size) {
    std::map<std::pair<std::string, std::string>, int64_t> pairs;
    for (const auto& [w, f] : words)
      for (size_t i = 0; i + 1 < w.size(); ++i) pairs[{w[i], w[i + 1]}] += f;
    if (pairs.empty()) break;
    auto best = pairs.begin();
    for (auto it = pairs.begin(); it != pairs.end(); ++it)
      if (it->second > best->second) best = it;  // map order breaks ties deterministically
    const auto [left, right] = best->first;
    v.merges.push_back(left + " " + right);
    add_piece(left + right);
    for (auto& [w, f] : words) {
      std::vector<std::string> merged;
      for (size_t i = 0; i < w.size(); ++i) {
        if (i + 1 < w.size() && w[i] == left && w[i + 1] == right) {
          merged.push_back(left + right);
          ++i;
        } else {
          merged.push_back(w[i]);
        }
      }
      w = std::move(merged);
    }
  }
}

Vocab load_vocab(const SynthOptions& o, const SynthPreset& p, std::vector<std::string>& notes) {
  if (o.vocab_path.empty()) return synth_vocab(p.vocab_size);
  Vocab v;
  const std::string ext = std::filesystem::path(o.vocab_path).extension().string();
  if (ext == ".gguf") {
    v = Vocab::from_gguf(*GgufFile::open(o.vocab_path));
  } else {
    v = Vocab::from_tokenizer_json(o.vocab_path);
  }
  // A Gemma 3 tokenizer.json (the real vocabulary available offline) has `<start_of_turn>` etc.
  // instead of Gemma 4's markers. It is used as is: the missing specials are listed for the user
  // and left out (no suppress id, no config token id) rather than given made-up ids.
  std::string missing;
  for (const auto& s : missing_gemma4_specials(v)) missing += (missing.empty() ? "" : " ") + s;
  if (!missing.empty())
    notes.push_back(o.vocab_path + " lacks Gemma 4 specials (left out): " + missing);
  return v;
}

constexpr const char* kWho = "model synth";  // prefix of error messages

// General names of the files (the mmproj's gets "-mmproj" appended).
std::string general_name(const SynthPreset& p) { return "rawflow-synth-" + p.name; }

// config.json of a `gemma4_unified` checkpoint (spec §1.1, §1.4) with the preset's dims.
nlohmann::json hf_config(const SynthPreset& p, const Vocab& v, DType dtype) {
  using nlohmann::json;
  json layer_types = json::array();
  for (bool s : p.layer_sliding) layer_types.push_back(s ? "sliding_attention" : "full_attention");
  const double partial =
      static_cast<double>(p.rope_full_rotated_pairs * 2) / static_cast<double>(p.head_dim_full);
  const std::string dt = dtype == DType::F32   ? "float32"
                         : dtype == DType::F16 ? "float16"
                                               : "bfloat16";
  json text = {
      {"model_type", "gemma4_unified_text"},
      {"vocab_size", static_cast<int64_t>(v.size())},
      {"hidden_size", p.hidden},
      {"intermediate_size", p.ffn},
      {"num_hidden_layers", p.n_layer()},
      {"num_attention_heads", p.n_head},
      {"num_key_value_heads", p.n_kv_head_swa},
      {"head_dim", p.head_dim_swa},
      {"global_head_dim", p.head_dim_full},
      {"num_global_key_value_heads", p.n_kv_head_full},
      {"attention_k_eq_v", true},
      {"layer_types", layer_types},
      {"sliding_window", p.sliding_window},
      {"rope_parameters",
       {{"sliding_attention", {{"rope_type", "default"}, {"rope_theta", p.rope_theta_swa}}},
        {"full_attention",
         {{"rope_type", "proportional"},
          {"partial_rotary_factor", partial},
          {"rope_theta", p.rope_theta_full}}}}},
      {"max_position_embeddings", p.context_length},
      {"final_logit_softcapping", 30.0},
      {"rms_norm_eps", 1e-6},
      {"hidden_activation", "gelu_pytorch_tanh"},
      {"tie_word_embeddings", true},
      {"use_bidirectional_attention", "vision"},
      {"attention_bias", false},
      {"num_kv_shared_layers", 0},
      {"use_double_wide_mlp", false},
      {"hidden_size_per_layer_input", 0},
      {"vocab_size_per_layer_input", static_cast<int64_t>(v.size())},
      {"enable_moe_block", false},
      {"pad_token_id", v.pad_id},
      {"bos_token_id", v.bos_id},
      {"eos_token_id", v.eos_id},
      {"dtype", dt},
  };
  json cfg = {
      {"architectures", json::array({"Gemma4UnifiedForConditionalGeneration"})},
      {"model_type", "gemma4_unified"},
      {"text_config", text},
      {"tie_word_embeddings", true},
      {"dtype", dt},
  };
  // Top-level multimodal token ids (spec §1.4), only for tokens the vocabulary has.
  const std::pair<const char*, const char*> ids[] = {
      {"boi_token_id", "<|image>"},    {"image_token_id", "<|image|>"},
      {"eoi_token_id", "<image|>"},    {"boa_token_id", "<|audio>"},
      {"audio_token_id", "<|audio|>"}, {"eoa_token_index", "<audio|>"},
      {"video_token_id", "<|video|>"},
  };
  for (const auto& [key, tok] : ids)
    if (v.find(tok) >= 0) cfg[key] = v.find(tok);
  json eos = json::array({v.eos_id});
  if (v.eot_id >= 0 && v.eot_id != v.eos_id) eos.push_back(v.eot_id);
  cfg["eos_token_id"] = eos;
  return cfg;
}

// A Hugging Face tokenizer.json holding the vocabulary (BPE with byte fallback, spec §6), so the
// safetensors directory is a complete checkpoint. Control and user-defined tokens are added tokens.
nlohmann::json hf_tokenizer(const Vocab& v) {
  using nlohmann::json;
  json vocab = json::object();
  json added = json::array();
  for (size_t i = 0; i < v.size(); ++i) {
    vocab[v.tokens[i]] = i;
    const bool control = v.types[i] == TokenType::Control;
    if (control || v.types[i] == TokenType::UserDefined)
      added.push_back({{"id", i},
                       {"content", v.tokens[i]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", control}});
  }
  return {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}}},
      {"pre_tokenizer", nullptr},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         json::array({{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                      {{"type", "ByteFallback"}},
                      {{"type", "Fuse"}}})}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", v.unk_id >= 0 ? json(v.tokens[v.unk_id]) : json(nullptr)},
        {"fuse_unk", true},
        {"byte_fallback", true},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", v.merges}}},
  };
}

// `mmproj-<file name>` next to the text model unless given (llama.cpp's naming).
std::string mmproj_gguf_path(const SynthOptions& o) {
  return o.mmproj_out.empty() ? default_mmproj_path(o.out) : o.mmproj_out;
}

void write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream f(path, std::ios::binary);
  f << j.dump(2) << "\n";
  if (!f) throw ModelFileError(path + ": cannot write");
}

// ---------------------------------------------------------------------------------------------
// Multimodal embedders (spec §3.3, §4, §7.3–7.4; the clip GGUF is written by gguf_export).

// Google's on-disk tensors (HF layout), every one in `mmproj_dtype` as in the BF16 release.
void add_mmproj_safetensors(SafetensorsWriter& w, const SynthOptions& o, const SynthPreset& p,
                            int64_t vocab_size, SynthReport& report) {
  const RowFillerSource source = synth_source(p, vocab_size, o.seed);
  for (const auto& t : gguf_mmproj_plan(p)) {
    auto bytes = encode_values(tensor_values(t, source(t)), o.mmproj_dtype);
    report.mmproj_bytes += bytes.size();
    report.mmproj_params += t.nelements();
    ++report.mmproj_tensor_count;
    w.add_tensor(t.hf_name, o.mmproj_dtype, std::vector<int64_t>(t.ne.rbegin(), t.ne.rend()),
                 std::move(bytes));
  }
}

void write_synth_mmproj(const SynthOptions& o, const SynthPreset& p, int64_t vocab_size,
                        const std::string& path, SynthReport& report) {
  GgufExportOptions eo;
  eo.who = "model synth";
  eo.general_name = general_name(p);
  eo.mmproj_dtype = o.mmproj_dtype;
  const GgufExportStats s = write_mmproj_gguf(path, p, eo, synth_source(p, vocab_size, o.seed));
  report.mmproj_bytes += s.bytes;
  report.mmproj_params += s.params;
  report.mmproj_tensor_count += s.tensor_count;
  report.files.push_back(path);
}

// `vision_config` and `audio_config` of config.json (spec §1.2, §1.3) with the preset's dims.
void add_mmproj_config(nlohmann::json& cfg, const SynthPreset& p) {
  cfg["vision_config"] = {
      {"model_type", "gemma4_unified_vision"},
      {"patch_size", 16},
      {"pooling_kernel_size", 3},
      {"model_patch_size", kPatchSide},
      {"mm_embed_dim", p.vision_dim},
      {"mm_posemb_size", p.position_rows},
      {"output_proj_dims", p.hidden},
      {"num_soft_tokens", 280},
      {"rms_norm_eps", 1e-6},
  };
  cfg["audio_config"] = {
      {"model_type", "gemma4_unified_audio"}, {"audio_embed_dim", kAudioFrameSamples},
      {"hidden_size", kAudioFrameSamples},    {"audio_samples_per_token", kAudioFrameSamples},
      {"output_proj_dims", p.hidden},         {"rms_norm_eps", 1e-6},
  };
}

SynthPreset make_preset(std::string name, int64_t hidden, int64_t ffn, int64_t n_head,
                        int64_t kv_swa, int64_t hd_swa, int64_t hd_full, std::vector<bool> sliding,
                        int64_t window, int64_t vocab, int64_t ctx) {
  SynthPreset p;
  p.name = std::move(name);
  p.hidden = hidden;
  p.ffn = ffn;
  p.n_head = n_head;
  p.n_kv_head_swa = kv_swa;
  p.n_kv_head_full = 1;
  p.head_dim_swa = hd_swa;
  p.head_dim_full = hd_full;
  p.layer_sliding = std::move(sliding);
  p.sliding_window = window;
  p.rope_theta_swa = 1e4f;
  p.rope_theta_full = 1e6f;
  // HF `_compute_proportional_rope_parameters`: int(partial_rotary_factor · head_dim // 2).
  p.rope_full_rotated_pairs = static_cast<int64_t>(0.25 * static_cast<double>(hd_full) / 2.0);
  p.vocab_size = vocab;
  p.context_length = ctx;
  p.vision_dim = hidden;
  p.position_rows = 1120;
  return p;
}

}  // namespace

std::vector<std::string> synth_preset_names() { return {"tiny", "geometry", "12b-2l", "micro"}; }

SynthPreset synth_preset(const std::string& name) {
  if (name == "tiny")
    // A window of 16 so that short test prompts cross it many times.
    return make_preset(name, 256, 512, 4, 2, 64, 128, {true, true, true, false}, 16, 512, 4096);
  if (name == "geometry")
    // The 12B's attention geometry (heads, head dims, window, RoPE) on a narrow residual stream.
    return make_preset(name, 256, 512, 16, 8, 256, 512, {true, true, true, true, true, false}, 1024,
                       1024, 8192);
  if (name == "12b-2l")
    // The 12B's layer shapes and vocabulary with one layer of each type.
    return make_preset(name, 3840, 15360, 16, 8, 256, 512, {true, false}, 1024, 262144, 262144);
  if (name == "micro")
    // The smallest complete files (every tensor, every key), for the fuzzers' seed corpora: a
    // fuzzer mutates a 100 kB file many times faster than a megabyte one.
    return make_preset(name, 32, 64, 2, 1, 16, 32, {true, false}, 16, 512, 512);
  std::string valid;
  for (const auto& n : synth_preset_names()) valid += (valid.empty() ? "" : ", ") + n;
  throw EngineError("model synth: unknown preset `" + name + "` (valid: " + valid + ")");
}

std::vector<bool> synth_layer_pattern(int64_t n_layers) {
  if (n_layers < 2)
    throw EngineError("model synth: " + std::to_string(n_layers) +
                      " layers: at least 2 are needed (one sliding and one full)");
  std::vector<bool> sliding(static_cast<size_t>(n_layers), true);
  for (int64_t i = 5; i < n_layers; i += 6) sliding[static_cast<size_t>(i)] = false;
  if (n_layers < 6) sliding.back() = false;
  return sliding;
}

SynthPreset synth_preset(const SynthOptions& o) {
  SynthPreset p = synth_preset(o.preset);
  if (o.layers != 0) {
    p.layer_sliding = synth_layer_pattern(o.layers);
    p.name.append("-").append(std::to_string(o.layers)).append("l");
  }
  return p;
}

std::vector<float> synth_tensor_values(const SynthPreset& p, int64_t vocab_size,
                                       const PlannedTensor& t, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(t.nelements()));
  TensorValues(p, vocab_size, t, seed).fill(0, t.nelements(), v.data());
  return v;
}

Vocab synth_vocab(int64_t size) {
  Vocab v;
  std::map<std::string, int32_t> index;
  auto add = [&](const std::string& s, TokenType type) {
    index[s] = static_cast<int32_t>(v.tokens.size());
    v.tokens.push_back(s);
    v.types.push_back(type);
    v.scores.push_back(type == TokenType::Control ? -1000.0f : 0.0f);
  };
  for (const auto& s : kSpecials) add(s.text, s.type);
  for (const char* nl : {"\n", "\n\n", "\n\n\n"}) add(nl, TokenType::Normal);
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    add(buf, TokenType::Byte);
  }
  add(kSpace, TokenType::Normal);
  if (size < static_cast<int64_t>(v.tokens.size()) + 64)
    throw EngineError("model synth: a synthetic vocabulary needs at least " +
                      std::to_string(v.tokens.size() + 64) + " tokens, not " +
                      std::to_string(size));
  learn_merges(v, index, size);
  // Once the corpus is exhausted (large vocabularies such as 12b-2l's 262,144), the rest are
  // placeholder pieces no merge produces: they occupy ids (and embedding rows) like the real
  // vocabulary's rare pieces, and never come out of the tokenizer.
  for (int64_t n = 0; static_cast<int64_t>(v.tokens.size()) < size; ++n)
    add("<unused" + std::to_string(n) + ">", TokenType::Normal);

  v.pad_id = index.at("<pad>");
  v.eos_id = index.at("<eos>");
  v.bos_id = index.at("<bos>");
  v.unk_id = index.at("<unk>");
  v.mask_id = index.at("<mask>");
  v.eot_id = index.at("<turn|>");
  v.add_bos = true;
  // Order as in the released generation_config: end-of-audio, end-of-image (spec §1.5).
  v.suppress_ids = {index.at("<audio|>"), index.at("<image|>")};
  return v;
}

SynthReport synth_model(const SynthOptions& o) {
  const SynthPreset p = synth_preset(o);
  if (o.format != "gguf" && o.format != "safetensors")
    throw EngineError("model synth: unknown format `" + o.format + "` (valid: gguf, safetensors)");
  if (o.out.empty()) throw EngineError("model synth: no output path");
  const DType embd = o.embd_dtype ? *o.embd_dtype : default_embd_dtype(o.dtype);
  const bool st = o.format == "safetensors";
  const bool mmproj = o.mmproj || !o.mmproj_out.empty();
  if (mmproj) check_mmproj_dtype(o.mmproj_dtype, kWho);
  if (st && !o.mmproj_out.empty())
    throw EngineError(
        "model synth: mmproj_out is for gguf; safetensors puts the embedders into the model "
        "directory");
  if (st) {
    for (DType d : {o.dtype, embd})
      if (d != DType::F32 && d != DType::F16 && d != DType::BF16)
        throw EngineError("model synth: safetensors holds f32, f16 or bf16 only, not " +
                          std::string(dtype_name(d)));
  }

  SynthReport report;
  const Vocab vocab = load_vocab(o, p, report.notes);
  const int64_t n_vocab = static_cast<int64_t>(vocab.size());
  report.vocab_size = n_vocab;
  report.embd_dtype = embd;
  const auto plan = gguf_text_plan(p, n_vocab);
  for (const auto& t : plan) check_dtype_fits(t, text_tensor_dtype(t, o.dtype, embd), kWho);
  const RowFillerSource source = synth_source(p, n_vocab, o.seed);

  if (!st) {
    GgufExportOptions eo;
    eo.who = kWho;
    eo.general_name = general_name(p);
    eo.dtype = o.dtype;
    eo.embd_dtype = embd;
    const GgufExportStats s = write_text_gguf(o.out, p, vocab, eo, source);
    report.bytes = s.bytes;
    report.params = s.params;
    report.tensor_count = s.tensor_count;
    report.files.push_back(o.out);
    if (mmproj) write_synth_mmproj(o, p, n_vocab, mmproj_gguf_path(o), report);
    return report;
  }

  // Safetensors: HF names and torch shapes; every tensor (norms too, as in the BF16 release) in the
  // requested dtype. The 1-D values lie on the bf16 grid, so they equal the GGUF's F32 norms.
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) throw ModelFileError(o.out + ": cannot create directory: " + ec.message());
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  for (const auto& t : plan) {
    if (t.hf_name.empty()) continue;  // rope_freqs is derived from config.json at load
    const DType dt = t.role == TensorRole::Embedding ? embd : o.dtype;
    auto bytes = encode_rows(t, dt, source(t));
    report.bytes += bytes.size();
    report.params += t.nelements();
    ++report.tensor_count;
    std::vector<int64_t> shape(t.ne.rbegin(), t.ne.rend());
    w.add_tensor(t.hf_name, dt, std::move(shape), std::move(bytes));
  }
  if (mmproj) add_mmproj_safetensors(w, o, p, n_vocab, report);
  const std::string st_path = (fs::path(o.out) / "model.safetensors").string();
  w.write(st_path);
  const std::string cfg_path = (fs::path(o.out) / "config.json").string();
  nlohmann::json cfg = hf_config(p, vocab, o.dtype);
  if (mmproj) add_mmproj_config(cfg, p);
  write_json(cfg_path, cfg);
  const std::string tok_path = (fs::path(o.out) / "tokenizer.json").string();
  write_json(tok_path, hf_tokenizer(vocab));
  report.files.push_back(cfg_path);
  report.files.push_back(tok_path);
  report.files.push_back(st_path);
  return report;
}

SynthReport synth_mmproj(const SynthOptions& o) {
  const SynthPreset p = synth_preset(o);
  if (o.format != "gguf")
    throw EngineError("model synth: a separate embedder file is written as gguf only");
  if (o.mmproj_out.empty()) throw EngineError("model synth: no mmproj output path");
  check_mmproj_dtype(o.mmproj_dtype, kWho);
  SynthReport report;
  // The vocabulary only sets the soft-token scale; the synthetic one need not be built.
  report.vocab_size = o.vocab_path.empty()
                          ? p.vocab_size
                          : static_cast<int64_t>(load_vocab(o, p, report.notes).size());
  write_synth_mmproj(o, p, report.vocab_size, o.mmproj_out, report);
  return report;
}

}  // namespace rawflow