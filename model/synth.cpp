#include "model/synth.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <utility>

#include "model/error.h"
#include "model/gemma4_mmproj.h"
#include "model/gguf.h"
#include "model/quant.h"
#include "model/safetensors.h"

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

struct Plan {
  SynthPreset preset;
  int64_t vocab_size = 0;
  std::vector<SynthTensor> tensors;
};

// Element generator for one tensor: value(i) for any i in [0, nelements).
class TensorValues {
 public:
  TensorValues(const SynthPreset& p, int64_t vocab_size, const SynthTensor& t, uint64_t seed)
      : t_(t), key_(stream_key(seed, t.gguf_name)) {
    switch (t.init) {
      case SynthInit::Embedding:
        std_ = embedding_std(p, vocab_size);
        break;
      case SynthInit::Matrix:
        std_ = 1.0 / std::sqrt(static_cast<double>(t.ne[0]));
        break;
      case SynthInit::Norm:
        mean_ = 1.0;
        break;
      case SynthInit::KNorm:
        mean_ = k_norm_mean(t.ne[0]);
        break;
      case SynthInit::PostNorm:
        mean_ = post_norm_mean(p, vocab_size);
        break;
      case SynthInit::OutputScale:
      case SynthInit::RopeFreqs:
        break;
      case SynthInit::Bias:
        std_ = kBiasStd;
        break;
      case SynthInit::PositionTable:
        std_ = kPositionStd;
        break;
      case SynthInit::SoftTokenProjection:
        std_ = soft_token_projection_std(t.ne[0], vocab_size);
        break;
    }
    rotated_pairs_ = p.rope_full_rotated_pairs;
  }

  void fill(int64_t begin, int64_t count, float* out) const {
    for (int64_t j = 0; j < count; ++j) out[j] = value(static_cast<uint64_t>(begin + j));
  }

 private:
  float value(uint64_t i) const {
    switch (t_.init) {
      case SynthInit::Embedding:
      case SynthInit::Matrix:
      case SynthInit::PositionTable:
      case SynthInit::SoftTokenProjection:
        return static_cast<float>(std_ * unit_noise(key_, i));
      case SynthInit::Bias:
        return round_to_bf16_grid(static_cast<float>(std_ * unit_noise(key_, i)));
      case SynthInit::Norm:
      case SynthInit::KNorm:
      case SynthInit::PostNorm:
        return round_to_bf16_grid(
            static_cast<float>(mean_ * (1.0 + kNormRelNoise * unit_noise(key_, i))));
      case SynthInit::OutputScale:
        // ≈0.5–1: shrinks earlier layers' contributions (and the input embedding) a little per
        // layer, as the released per-layer scalars do (much more strongly) on the 12B.
        return round_to_bf16_grid(static_cast<float>(0.5 + 0.5 * uniform01(key_, i + 1)));
      case SynthInit::RopeFreqs:
        // Proportional RoPE through llama.cpp's frequency divisors (spec §2.6): 1 rotates, 1e30
        // makes the angle 0.
        return static_cast<int64_t>(i) < rotated_pairs_ ? 1.0f : 1e30f;
    }
    return 0.0f;
  }

  const SynthTensor& t_;
  uint64_t key_;
  double std_ = 0.0;
  double mean_ = 0.0;
  int64_t rotated_pairs_ = 0;
};

// Runs fn(begin_row, end_row) over [0, rows) on a few threads (the weights of 12b-2l are ~1.5 G
// elements; the tiny presets stay on the calling thread).
template <class Fn>
void parallel_rows(int64_t rows, int64_t row_elems, Fn fn) {
  const int64_t total = rows * row_elems;
  unsigned n_threads = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
  if (total < (int64_t{1} << 20) || rows < 2) n_threads = 1;
  n_threads = static_cast<unsigned>(std::min<int64_t>(n_threads, rows));
  if (n_threads == 1) {
    fn(int64_t{0}, rows);
    return;
  }
  std::vector<std::thread> threads;
  std::vector<std::exception_ptr> errors(n_threads);
  const int64_t per = (rows + n_threads - 1) / n_threads;
  for (unsigned t = 0; t < n_threads; ++t) {
    const int64_t b = std::min<int64_t>(rows, t * per), e = std::min<int64_t>(rows, b + per);
    threads.emplace_back([&, t, b, e] {
      try {
        if (b < e) fn(b, e);
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  }
  for (auto& th : threads) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// The tensor's bytes in `dtype` (ggml block layout, rows of ne[0] elements), generated row-chunk by
// row-chunk so a 1 G-element embedding never exists as a float array.
std::vector<uint8_t> encode_tensor(const SynthPreset& p, int64_t vocab_size, const SynthTensor& t,
                                   uint64_t seed, DType dtype) {
  const int64_t row = t.ne[0];
  const int64_t rows = t.nelements() / row;
  const size_t row_bytes = dtype_row_bytes(dtype, row);
  std::vector<uint8_t> out(row_bytes * static_cast<size_t>(rows));
  const TensorValues gen(p, vocab_size, t, seed);
  parallel_rows(rows, row, [&](int64_t r0, int64_t r1) {
    std::vector<float> buf(static_cast<size_t>(row));
    for (int64_t r = r0; r < r1; ++r) {
      gen.fill(r * row, row, buf.data());
      uint8_t* dst = out.data() + static_cast<size_t>(r) * row_bytes;
      switch (dtype) {
        case DType::F32:
          std::memcpy(dst, buf.data(), row_bytes);
          break;
        case DType::F16:
        case DType::BF16:
          for (int64_t i = 0; i < row; ++i) {
            const uint16_t h = dtype == DType::F16 ? f32_to_fp16(buf[i]) : f32_to_bf16(buf[i]);
            std::memcpy(dst + 2 * i, &h, 2);
          }
          break;
        default:
          quantize_row(dtype, buf.data(), dst, row);
      }
    }
  });
  return out;
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

// ---------------------------------------------------------------------------------------------

// llama.cpp's LLAMA_FTYPE for a file whose matrices are all `t` (general.file_type).
uint32_t llama_ftype(DType t) {
  switch (t) {
    case DType::F32:
      return 0;  // ALL_F32
    case DType::F16:
      return 1;  // MOSTLY_F16
    case DType::Q4_0:
      return 2;  // MOSTLY_Q4_0
    case DType::Q8_0:
      return 7;  // MOSTLY_Q8_0
    case DType::Q4_K:
      return 14;  // MOSTLY_Q4_K_S: every matrix Q4_K
    case DType::Q5_K:
      return 16;  // MOSTLY_Q5_K_S
    case DType::Q6_K:
      return 18;  // MOSTLY_Q6_K
    case DType::BF16:
      return 32;  // MOSTLY_BF16
  }
  return 0;
}

// Gemma 4 specials a real vocabulary should have; reported (not invented) when absent.
constexpr const char* kRequiredSpecials[] = {"<|turn>",   "<turn|>",    "<|image>",   "<image|>",
                                             "<|image|>", "<|audio>",   "<audio|>",   "<|audio|>",
                                             "<|video|>", "<|channel>", "<channel|>", "<|think|>"};

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
  for (const char* s : kRequiredSpecials)
    if (v.find(s) < 0) missing += std::string(missing.empty() ? "" : " ") + s;
  if (!missing.empty())
    notes.push_back(o.vocab_path + " lacks Gemma 4 specials (left out): " + missing);
  return v;
}

std::string hf_layer(int64_t il, const std::string& suffix) {
  return "model.language_model.layers." + std::to_string(il) + "." + suffix;
}

void check_dtype_fits(const SynthTensor& t, DType dtype) {
  const int64_t block = dtype_traits(dtype).block_elems;
  if (t.ne[0] % block != 0)
    throw EngineError("model synth: tensor `" + t.gguf_name + "` has rows of " +
                      std::to_string(t.ne[0]) + " elements, not a multiple of the " +
                      std::string(dtype_name(dtype)) + " block (" + std::to_string(block) + ")");
}

DType tensor_dtype(const SynthTensor& t, DType matrix, DType embd) {
  if (t.init == SynthInit::Embedding) return embd;
  if (t.init == SynthInit::Matrix) return matrix;
  return DType::F32;  // norms, scalars, rope_freqs: F32 as in every released GGUF
}

void write_gguf_metadata(GgufWriter& w, const SynthPreset& p, const Vocab& v, DType dtype) {
  const std::string a = "gemma4.";
  w.set_string("general.architecture", "gemma4");
  w.set_string("general.name", "rawflow-synth-" + p.name);
  w.set_u32("general.file_type", llama_ftype(dtype));
  w.set_u32("general.quantization_version", 2);
  w.set_f32("general.sampling.temp", 1.0f);
  w.set_f32("general.sampling.top_p", 0.95f);
  w.set_i32("general.sampling.top_k", 64);
  w.set_u32(a + "context_length", static_cast<uint32_t>(p.context_length));
  w.set_u32(a + "embedding_length", static_cast<uint32_t>(p.hidden));
  w.set_u32(a + "block_count", static_cast<uint32_t>(p.n_layer()));
  w.set_u32(a + "feed_forward_length", static_cast<uint32_t>(p.ffn));
  w.set_u32(a + "attention.head_count", static_cast<uint32_t>(p.n_head));
  std::vector<int32_t> kv;
  for (bool s : p.layer_sliding)
    kv.push_back(static_cast<int32_t>(s ? p.n_kv_head_swa : p.n_kv_head_full));
  w.set_array_i32(a + "attention.head_count_kv", kv);
  w.set_u32(a + "attention.key_length", static_cast<uint32_t>(p.head_dim_full));
  w.set_u32(a + "attention.value_length", static_cast<uint32_t>(p.head_dim_full));
  w.set_u32(a + "attention.key_length_swa", static_cast<uint32_t>(p.head_dim_swa));
  w.set_u32(a + "attention.value_length_swa", static_cast<uint32_t>(p.head_dim_swa));
  w.set_u32(a + "attention.sliding_window", static_cast<uint32_t>(p.sliding_window));
  w.set_array_bool(a + "attention.sliding_window_pattern", p.layer_sliding);
  w.set_f32(a + "attention.layer_norm_rms_epsilon", 1e-6f);
  w.set_u32(a + "attention.shared_kv_layers", 0);
  w.set_f32(a + "rope.freq_base", p.rope_theta_full);
  w.set_f32(a + "rope.freq_base_swa", p.rope_theta_swa);
  w.set_u32(a + "rope.dimension_count", static_cast<uint32_t>(p.head_dim_full));
  w.set_u32(a + "rope.dimension_count_swa", static_cast<uint32_t>(p.head_dim_swa));
  w.set_f32(a + "final_logit_softcapping", 30.0f);
  w.set_u32(a + "embedding_length_per_layer_input", 0);
  v.write_gguf(w);
}

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
  if (!o.mmproj_out.empty()) return o.mmproj_out;
  const std::filesystem::path out(o.out);
  return (out.parent_path() / ("mmproj-" + out.filename().string())).string();
}

void write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream f(path, std::ios::binary);
  f << j.dump(2) << "\n";
  if (!f) throw ModelFileError(path + ": cannot write");
}

// ---------------------------------------------------------------------------------------------
// Multimodal embedders (spec §3.3, §4, §7.3–7.4).

// The values of a tensor in its HF layout, generated on a few threads (patch_dense of 12b-2l has
// 26.5 M elements).
std::vector<float> embedder_values(const SynthPreset& p, int64_t vocab_size, const SynthTensor& t,
                                   uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(t.nelements()));
  const TensorValues gen(p, vocab_size, t, seed);
  const int64_t row = t.ne[0];
  parallel_rows(t.nelements() / row, row, [&](int64_t r0, int64_t r1) {
    gen.fill(r0 * row, (r1 - r0) * row, v.data() + r0 * row);
  });
  return v;
}

std::vector<uint8_t> encode_values(const std::vector<float>& v, DType dtype) {
  if (dtype == DType::F32) {
    std::vector<uint8_t> out(v.size() * sizeof(float));
    std::memcpy(out.data(), v.data(), out.size());
    return out;
  }
  std::vector<uint8_t> out(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = dtype == DType::F16 ? f32_to_fp16(v[i]) : f32_to_bf16(v[i]);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

void check_mmproj_dtype(DType d) {
  if (d != DType::F32 && d != DType::F16 && d != DType::BF16)
    throw EngineError("model synth: the embedders are stored in f32, f16 or bf16, not " +
                      std::string(dtype_name(d)));
}

// GGUF dtypes of llama.cpp's converter (§10.5): patch_embd and 1-D tensors F32, the rest as asked.
DType mmproj_gguf_dtype(const SynthTensor& t, DType dtype) {
  if (t.gguf_name == "v.patch_embd.weight" || t.ne.size() == 1) return DType::F32;
  return dtype;
}

// Every key llama.cpp's clip loader requires for both modalities (§7.3, §10.8), with the released
// file's values where they do not depend on the preset.
void write_mmproj_metadata(GgufWriter& w, const SynthPreset& p, DType dtype) {
  w.set_string("general.architecture", "clip");
  w.set_string("general.name", "rawflow-synth-" + p.name + "-mmproj");
  w.set_u32("general.file_type", llama_ftype(dtype));
  w.set_bool("clip.has_vision_encoder", true);
  w.set_bool("clip.has_audio_encoder", true);
  w.set_string("clip.vision.projector_type", "gemma4uv");
  w.set_string("clip.audio.projector_type", "gemma4ua");
  w.set_u32("clip.vision.image_size", 224);  // placeholder, unused by gemma4uv
  w.set_u32("clip.vision.patch_size", 16);   // the loader multiplies it by 3
  w.set_u32("clip.vision.embedding_length", static_cast<uint32_t>(p.vision_dim));
  w.set_u32("clip.vision.projection_dim", static_cast<uint32_t>(p.hidden));
  w.set_u32("clip.vision.block_count", 0);
  w.set_u32("clip.vision.feed_forward_length", 0);
  w.set_u32("clip.vision.attention.head_count", 0);
  w.set_f32("clip.vision.attention.layer_norm_epsilon", 1e-6f);
  w.set_array_f32("clip.vision.image_mean", {0.0f, 0.0f, 0.0f});
  w.set_array_f32("clip.vision.image_std", {1.0f, 1.0f, 1.0f});
  w.set_u32("clip.audio.embedding_length", static_cast<uint32_t>(kAudioFrameSamples));
  w.set_u32("clip.audio.projection_dim", static_cast<uint32_t>(p.hidden));
  w.set_u32("clip.audio.num_mel_bins", 128);  // stale in the release; the loader uses 640
  w.set_u32("clip.audio.block_count", 0);
  w.set_u32("clip.audio.feed_forward_length", 0);
  w.set_u32("clip.audio.attention.head_count", 0);
  w.set_f32("clip.audio.attention.layer_norm_epsilon", 1e-6f);
}

void write_mmproj_gguf(const SynthOptions& o, const SynthPreset& p, int64_t vocab_size,
                       const std::string& path, SynthReport& report) {
  GgufWriter w;
  write_mmproj_metadata(w, p, o.mmproj_dtype);
  for (const auto& t : synth_mmproj_plan(p)) {
    std::vector<int64_t> ne;
    const auto values = synth_mmproj_gguf_layout(t, embedder_values(p, vocab_size, t, o.seed), &ne);
    const DType dt = mmproj_gguf_dtype(t, o.mmproj_dtype);
    const auto bytes = encode_values(values, dt);
    w.add_tensor(t.gguf_name, dt, ne, bytes.data(), bytes.size());
    report.mmproj_bytes += bytes.size();
    report.mmproj_params += t.nelements();
    ++report.mmproj_tensor_count;
  }
  w.write(path);
  report.files.push_back(path);
}

// Google's on-disk tensors (HF layout), every one in `mmproj_dtype` as in the BF16 release.
void add_mmproj_safetensors(SafetensorsWriter& w, const SynthOptions& o, const SynthPreset& p,
                            int64_t vocab_size, SynthReport& report) {
  for (const auto& t : synth_mmproj_plan(p)) {
    auto bytes = encode_values(embedder_values(p, vocab_size, t, o.seed), o.mmproj_dtype);
    report.mmproj_bytes += bytes.size();
    report.mmproj_params += t.nelements();
    ++report.mmproj_tensor_count;
    w.add_tensor(t.hf_name, o.mmproj_dtype, std::vector<int64_t>(t.ne.rbegin(), t.ne.rend()),
                 std::move(bytes));
  }
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

int64_t SynthTensor::nelements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

std::vector<std::string> synth_preset_names() { return {"tiny", "geometry", "12b-2l"}; }

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

std::vector<SynthTensor> synth_tensor_plan(const SynthPreset& p, int64_t vocab_size) {
  std::vector<SynthTensor> t;
  const int64_t h = p.hidden;
  t.push_back({"token_embd.weight",
               "model.language_model.embed_tokens.weight",
               {h, vocab_size},
               SynthInit::Embedding});
  t.push_back({"rope_freqs.weight", "", {p.head_dim_full / 2}, SynthInit::RopeFreqs});
  for (int64_t il = 0; il < p.n_layer(); ++il) {
    const bool sliding = p.layer_sliding[il];
    const int64_t d = sliding ? p.head_dim_swa : p.head_dim_full;
    const int64_t n_kv = sliding ? p.n_kv_head_swa : p.n_kv_head_full;
    const int64_t q = p.n_head * d, kv = n_kv * d;
    const std::string g = "blk." + std::to_string(il) + ".";
    auto add = [&](const std::string& gg, const std::string& hf, std::vector<int64_t> ne,
                   SynthInit init) {
      t.push_back({g + gg, hf_layer(il, hf), std::move(ne), init});
    };
    add("attn_norm.weight", "input_layernorm.weight", {h}, SynthInit::Norm);
    add("attn_q.weight", "self_attn.q_proj.weight", {h, q}, SynthInit::Matrix);
    add("attn_k.weight", "self_attn.k_proj.weight", {h, kv}, SynthInit::Matrix);
    if (sliding) add("attn_v.weight", "self_attn.v_proj.weight", {h, kv}, SynthInit::Matrix);
    add("attn_output.weight", "self_attn.o_proj.weight", {q, h}, SynthInit::Matrix);
    add("attn_q_norm.weight", "self_attn.q_norm.weight", {d}, SynthInit::Norm);
    add("attn_k_norm.weight", "self_attn.k_norm.weight", {d}, SynthInit::KNorm);
    add("post_attention_norm.weight", "post_attention_layernorm.weight", {h}, SynthInit::PostNorm);
    add("ffn_norm.weight", "pre_feedforward_layernorm.weight", {h}, SynthInit::Norm);
    add("ffn_gate.weight", "mlp.gate_proj.weight", {h, p.ffn}, SynthInit::Matrix);
    add("ffn_up.weight", "mlp.up_proj.weight", {h, p.ffn}, SynthInit::Matrix);
    add("ffn_down.weight", "mlp.down_proj.weight", {p.ffn, h}, SynthInit::Matrix);
    add("post_ffw_norm.weight", "post_feedforward_layernorm.weight", {h}, SynthInit::PostNorm);
    add("layer_output_scale.weight", "layer_scalar", {1}, SynthInit::OutputScale);
  }
  t.push_back({"output_norm.weight", "model.language_model.norm.weight", {h}, SynthInit::Norm});
  return t;
}

std::vector<SynthTensor> synth_mmproj_plan(const SynthPreset& p) {
  const int64_t d = p.vision_dim, h = p.hidden, pv = kPatchValues;
  const std::string v = "model.vision_embedder.";
  return {
      {"v.patch_norm.1.weight", v + "patch_ln1.weight", {pv}, SynthInit::Norm},
      {"v.patch_norm.1.bias", v + "patch_ln1.bias", {pv}, SynthInit::Bias},
      {"v.patch_embd.weight", v + "patch_dense.weight", {pv, d}, SynthInit::Matrix},
      {"v.patch_embd.bias", v + "patch_dense.bias", {d}, SynthInit::Bias},
      {"v.patch_norm.2.weight", v + "patch_ln2.weight", {d}, SynthInit::Norm},
      {"v.patch_norm.2.bias", v + "patch_ln2.bias", {d}, SynthInit::Bias},
      {"v.position_embd.weight",
       v + "pos_embedding",
       {d, 2, p.position_rows},
       SynthInit::PositionTable},
      {"v.patch_norm.3.weight", v + "pos_norm.weight", {d}, SynthInit::Norm},
      {"v.patch_norm.3.bias", v + "pos_norm.bias", {d}, SynthInit::Bias},
      {"mm.input_projection.weight",
       "model.embed_vision.embedding_projection.weight",
       {d, h},
       SynthInit::SoftTokenProjection},
      {"mm.a.input_projection.weight",
       "model.embed_audio.embedding_projection.weight",
       {kAudioFrameSamples, h},
       SynthInit::SoftTokenProjection},
  };
}

std::vector<float> synth_mmproj_gguf_layout(const SynthTensor& t, const std::vector<float>& hf,
                                            std::vector<int64_t>* gguf_ne) {
  if (gguf_ne) *gguf_ne = t.ne;
  const bool patch_vector = t.gguf_name == "v.patch_norm.1.weight" ||
                            t.gguf_name == "v.patch_norm.1.bias" ||
                            t.gguf_name == "v.patch_embd.weight";
  if (patch_vector) {  // HWC → CHW along ne[0] (§7.4 perm)
    std::vector<float> out(hf.size());
    const int64_t rows = t.nelements() / kPatchValues;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < kPatchValues; ++i)
        out[r * kPatchValues + i] = hf[r * kPatchValues + patch_hwc_index(i)];
    return out;
  }
  if (t.gguf_name == "v.position_embd.weight") {  // [P][2][D] → [2][P][D]
    const int64_t d = t.ne[0], rows = t.ne[2];
    if (gguf_ne) *gguf_ne = {d, rows, 2};
    std::vector<float> out(hf.size());
    for (int64_t pos = 0; pos < rows; ++pos)
      for (int64_t axis = 0; axis < 2; ++axis)
        std::memcpy(out.data() + (axis * rows + pos) * d, hf.data() + (pos * 2 + axis) * d,
                    static_cast<size_t>(d) * sizeof(float));
    return out;
  }
  return hf;
}

std::vector<float> synth_tensor_values(const SynthPreset& p, int64_t vocab_size,
                                       const SynthTensor& t, uint64_t seed) {
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
  const DType embd = o.embd_dtype ? *o.embd_dtype : o.dtype == DType::Q4_0 ? DType::Q6_K : o.dtype;
  const bool st = o.format == "safetensors";
  const bool mmproj = o.mmproj || !o.mmproj_out.empty();
  if (mmproj) check_mmproj_dtype(o.mmproj_dtype);
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
  const auto plan = synth_tensor_plan(p, n_vocab);
  for (const auto& t : plan) check_dtype_fits(t, tensor_dtype(t, o.dtype, embd));

  if (!st) {
    GgufWriter w;
    write_gguf_metadata(w, p, vocab, o.dtype);
    for (const auto& t : plan) {
      const DType dt = tensor_dtype(t, o.dtype, embd);
      const auto bytes = encode_tensor(p, n_vocab, t, o.seed, dt);
      w.add_tensor(t.gguf_name, dt, t.ne, bytes.data(), bytes.size());
      report.bytes += bytes.size();
      if (t.init != SynthInit::RopeFreqs) report.params += t.nelements();
      ++report.tensor_count;
    }
    w.write(o.out);
    report.files.push_back(o.out);
    if (mmproj) write_mmproj_gguf(o, p, n_vocab, mmproj_gguf_path(o), report);
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
    const DType dt = t.init == SynthInit::Embedding ? embd : o.dtype;
    auto bytes = encode_tensor(p, n_vocab, t, o.seed, dt);
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
  check_mmproj_dtype(o.mmproj_dtype);
  SynthReport report;
  // The vocabulary only sets the soft-token scale; the synthetic one need not be built.
  report.vocab_size = o.vocab_path.empty()
                          ? p.vocab_size
                          : static_cast<int64_t>(load_vocab(o, p, report.notes).size());
  write_mmproj_gguf(o, p, report.vocab_size, o.mmproj_out, report);
  return report;
}

}  // namespace rawflow
