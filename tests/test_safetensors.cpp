// Safetensors reader/writer, the HF checkpoint directory (GGUF names over HF tensors) and
// Gemma4Config::from_hf_config, on files written here.
#define BOOST_TEST_MODULE test_safetensors
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/error.h"
#include "model/formats/hf_checkpoint.h"
#include "model/formats/safetensors.h"
#include "model/gemma4/gemma4_config.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace rawflow;

namespace {

// A fresh scratch directory per test case, removed afterwards.
struct ScratchDir {
  fs::path dir;
  ScratchDir() {
    static int counter = 0;
    const char* work = std::getenv("RAWFLOW_TEST_WORK");
    fs::path root = work ? fs::path(work) : fs::temp_directory_path();
    dir =
        root / ("test_safetensors-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void write_text(const std::string& path, const json& j) { write_bytes(path, j.dump(2)); }

// A safetensors file built by hand from the format description: LE u64 length, JSON padded with
// spaces so that the data starts on 8 bytes (as the writers do; `pad` false leaves it as it is),
// data.
std::string hand_built(std::string header_json, const std::string& data, bool pad = true) {
  if (pad) header_json.append((8 - header_json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  uint64_t n = header_json.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>(n >> (8 * i));
  return out + header_json + data;
}

std::string floats_bytes(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

std::string model_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const ModelFileError& e) {
    return e.what();
  }
  BOOST_ERROR("expected a ModelFileError");
  return {};
}

#define CHECK_HAS(text, part)                                            \
  BOOST_CHECK_MESSAGE(std::string(text).find(part) != std::string::npos, \
                      "message `" << (text) << "` does not contain `" << (part) << "`")

std::string open_error(const std::string& path) {
  return model_error([&] { SafetensorsFile::open(path); });
}

std::vector<uint8_t> pattern_bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + 7 * i);
  return b;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// SafetensorsFile / SafetensorsWriter

BOOST_AUTO_TEST_CASE(writer_round_trip_keeps_dtypes_bytes_and_reverses_shapes) {
  ScratchDir tmp;
  const auto bf16 = pattern_bytes(2 * 3 * 2, 1);
  const auto f16 = pattern_bytes(4 * 2, 2);
  const auto f32 = pattern_bytes(2 * 2 * 3 * 4, 3);
  const auto scalar = pattern_bytes(4, 4);
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.add_tensor("w.bf16", DType::BF16, {2, 3}, bf16.data(), bf16.size());
  w.add_tensor("w.f16", DType::F16, {4}, f16.data(), f16.size());
  w.add_tensor("w.f32", DType::F32, {2, 2, 3}, f32.data(), f32.size());
  w.add_tensor("w.scalar", DType::F32, {}, scalar.data(), scalar.size());
  w.add_tensor("w.empty", DType::F32, {0, 5}, nullptr, 0);
  w.write(tmp.path("a.safetensors"));

  auto f = SafetensorsFile::open(tmp.path("a.safetensors"));
  BOOST_CHECK_EQUAL(f->tensors().size(), 5u);
  BOOST_CHECK_EQUAL(f->metadata().at("format"), "pt");
  BOOST_CHECK_EQUAL(f->data_offset() % 8, 0u);  // header padded as the reference writer does
  BOOST_CHECK_EQUAL(f->file_size(),
                    f->data_offset() + bf16.size() + f16.size() + f32.size() + scalar.size());

  auto check = [&](const char* name, DType dt, std::vector<int64_t> ne,
                   const std::vector<uint8_t>& bytes) {
    const TensorRef* t = f->find(name);
    BOOST_REQUIRE_MESSAGE(t, name);
    BOOST_CHECK(t->dtype == dt);
    BOOST_CHECK(t->ne == ne);
    BOOST_CHECK_EQUAL(t->nbytes, bytes.size());
    BOOST_CHECK(bytes.empty() || std::memcmp(t->data, bytes.data(), bytes.size()) == 0);
  };
  check("w.bf16", DType::BF16, {3, 2}, bf16);
  check("w.f16", DType::F16, {4}, f16);
  check("w.f32", DType::F32, {3, 2, 2}, f32);
  check("w.scalar", DType::F32, {1}, scalar);
  check("w.empty", DType::F32, {5, 0}, {});
  BOOST_CHECK(f->torch_shape(*f->find("w.f32")) == (std::vector<int64_t>{2, 2, 3}));
  BOOST_CHECK(f->find("nope") == nullptr);
  // Data-offset order: widest elements first, then the order of addition (Hugging Face's layout,
  // which keeps every tensor on its element size).
  auto at = [&](const char* name) { return static_cast<const uint8_t*>(f->find(name)->data); };
  BOOST_CHECK(at("w.f32") < at("w.scalar"));
  BOOST_CHECK(at("w.scalar") < at("w.bf16"));
  BOOST_CHECK(at("w.bf16") < at("w.f16"));
}

BOOST_AUTO_TEST_CASE(writer_output_matches_the_format_byte_for_byte) {
  ScratchDir tmp;
  const std::vector<float> v = {1.5f, -2.0f};
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.add_tensor("a", DType::F32, {2, 1}, v.data(), 8);
  w.write(tmp.path("w.safetensors"));
  // 87 bytes of JSON padded with one space to 88.
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2,1]}})";
  const std::string expected = hand_built(header + " ", floats_bytes(v));
  std::ifstream in(tmp.path("w.safetensors"), std::ios::binary);
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BOOST_CHECK_EQUAL(header.size(), 87u);
  BOOST_CHECK(got == expected);
}

BOOST_AUTO_TEST_CASE(reader_reads_a_hand_built_file) {
  ScratchDir tmp;
  // Unpadded header, tensors listed out of data order, a non-string metadata value.
  const std::string header =
      R"({"b":{"dtype":"BF16","shape":[3],"data_offsets":[12,18]},)"
      R"("a":{"dtype":"F32","shape":[1,3],"data_offsets":[0,12]},"__metadata__":{"n":5}})";
  const std::string data =
      floats_bytes({1.0f, 2.0f, 3.0f}) + std::string("\x80\x3f\x00\x40\x40\x40", 6);
  write_bytes(tmp.path("h.safetensors"), hand_built(header, data, /*pad=*/false));
  auto f = SafetensorsFile::open(tmp.path("h.safetensors"));
  BOOST_CHECK_EQUAL(f->metadata().at("n"), "5");
  BOOST_REQUIRE_EQUAL(f->tensors().size(), 2u);
  BOOST_CHECK_EQUAL(f->tensors()[0].name, "a");
  const TensorRef* a = f->find("a");
  BOOST_CHECK(a->ne == (std::vector<int64_t>{3, 1}));
  float av[3];
  std::memcpy(av, a->data, 12);
  BOOST_CHECK_EQUAL(av[2], 3.0f);
  const TensorRef* b = f->find("b");
  BOOST_CHECK(b->dtype == DType::BF16);
  BOOST_CHECK_EQUAL(static_cast<const uint8_t*>(b->data) - f->map_base(),
                    static_cast<std::ptrdiff_t>(8 + header.size() + 12));
}

BOOST_AUTO_TEST_CASE(bad_files_are_refused_with_a_clear_message) {
  ScratchDir tmp;
  const std::string data = floats_bytes({1, 2, 3, 4, 5, 6});
  auto tensor = [](const char* name, const char* dtype, const char* shape, int b, int e) {
    return std::string("\"") + name + R"(":{"dtype":")" + dtype + R"(","shape":)" + shape +
           R"(,"data_offsets":[)" + std::to_string(b) + "," + std::to_string(e) + "]}";
  };
  auto check = [&](const std::string& name, const std::string& bytes,
                   std::vector<std::string> parts) {
    const std::string path = tmp.path(name);
    write_bytes(path, bytes);
    const std::string msg = open_error(path);
    CHECK_HAS(msg, path);
    for (const auto& p : parts) CHECK_HAS(msg, p);
  };

  // A good file cut short: its last tensor now ends past the end of the data section.
  const std::string good = hand_built("{" + tensor("x", "F32", "[2,3]", 0, 24) + "}", data);
  check("truncated.safetensors", good.substr(0, good.size() - 3),
        {"tensor `x`", "[0, 24]", "outside the data section (21 bytes"});
  check("tiny.safetensors", std::string("\x10\x00\x00", 3), {"too short"});
  {
    std::string b = good;
    b[0] = static_cast<char>(0xff);
    b[1] = static_cast<char>(0xff);
    check("hdrlen.safetensors", b, {"header length 65535", "runs past the end of the file"});
  }
  {
    std::string b = good;
    for (int i = 0; i < 8; ++i) b[static_cast<size_t>(i)] = static_cast<char>(0xff);
    check("hdrlen_huge.safetensors", b, {"header length 18446744073709551615"});
  }
  check("range.safetensors", hand_built("{" + tensor("x", "F32", "[2,3]", 8, 32) + "}", data),
        {"tensor `x`", "[8, 32]", "outside the data section (24 bytes"});
  check("overlap.safetensors",
        hand_built("{" + tensor("p", "F32", "[3]", 0, 12) + "," + tensor("q", "F32", "[3]", 8, 20) +
                       "," + tensor("r", "F32", "[1]", 20, 24) + "}",
                   data),
        {"tensors `p` [0, 12) and `q` [8, 20) overlap"});
  // An empty tensor between two overlapping ones must not hide the overlap.
  check("overlap_empty.safetensors",
        hand_built("{" + tensor("p", "F32", "[6]", 0, 24) + "," + tensor("e", "F32", "[0]", 4, 4) +
                       "," + tensor("q", "F32", "[1]", 8, 12) + "}",
                   data),
        {"`p` [0, 24)", "`q` [8, 12) overlap"});
  check("size.safetensors", hand_built("{" + tensor("x", "F32", "[2,3]", 0, 20) + "}", data),
        {"tensor `x`", "shape [2, 3] of F32 needs 24 bytes but data_offsets span 20"});
  check("dtype.safetensors", hand_built("{" + tensor("ids", "I64", "[3]", 0, 24) + "}", data),
        {"tensor `ids` has dtype I64", "BF16, F16 or F32"});
  check("json.safetensors", hand_built("{\"x\":", data), {"header is not valid JSON"});
  check("shape.safetensors", hand_built("{" + tensor("x", "F32", "[-1,3]", 0, 24) + "}", data),
        {"tensor `x`", "shape [-1,3]"});
  check("offsets.safetensors",
        hand_built(R"({"x":{"dtype":"F32","shape":[6],"data_offsets":[0]}})", data),
        {"tensor `x`", "data_offsets"});
  // Floats are read in place: data off its element size is refused (fuzz/regressions).
  check("misaligned.safetensors", hand_built("{" + tensor("x", "F32", "[5]", 2, 22) + "}", data),
        {"tensor `x`", "is not aligned to its 4-byte elements"});
  BOOST_CHECK(model_error([&] {
                SafetensorsFile::open(tmp.path("absent.safetensors"));
              }).find("cannot open") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(writer_rejects_bad_arguments) {
  const std::vector<uint8_t> b(10);
  SafetensorsWriter w;
  BOOST_CHECK_THROW(w.add_tensor("x", DType::F32, {3}, b.data(), b.size()), EngineError);
  BOOST_CHECK_THROW(w.add_tensor("x", DType::Q8_0, {10}, b.data(), b.size()), EngineError);
  w.add_tensor("x", DType::BF16, {5}, b.data(), b.size());
  BOOST_CHECK_THROW(w.add_tensor("x", DType::BF16, {5}, b.data(), b.size()), EngineError);
}

// ---------------------------------------------------------------------------------------------
// HF names → GGUF names (spec §7.2, §7.4, §10.4)

BOOST_AUTO_TEST_CASE(hf_names_map_to_gguf_names) {
  const std::vector<std::pair<std::string, std::string>> layer = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"},
      {"post_attention_layernorm.weight", "post_attention_norm.weight"},
      {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
      {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
      {"layer_scalar", "layer_output_scale.weight"},
  };
  for (const std::string prefix : {"model.language_model.", "model."}) {
    BOOST_CHECK_EQUAL(hf_to_gguf_name(prefix + "embed_tokens.weight").value_or("-"),
                      "token_embd.weight");
    BOOST_CHECK_EQUAL(hf_to_gguf_name(prefix + "norm.weight").value_or("-"), "output_norm.weight");
    for (const auto& [hf, gguf] : layer) {
      BOOST_CHECK_EQUAL(hf_to_gguf_name(prefix + "layers.0." + hf).value_or("-"), "blk.0." + gguf);
      BOOST_CHECK_EQUAL(hf_to_gguf_name(prefix + "layers.47." + hf).value_or("-"),
                        "blk.47." + gguf);
    }
  }
  const std::vector<std::pair<std::string, std::string>> vision = {
      {"patch_ln1.weight", "v.patch_norm.1.weight"}, {"patch_ln1.bias", "v.patch_norm.1.bias"},
      {"patch_dense.weight", "v.patch_embd.weight"}, {"patch_dense.bias", "v.patch_embd.bias"},
      {"patch_ln2.weight", "v.patch_norm.2.weight"}, {"patch_ln2.bias", "v.patch_norm.2.bias"},
      {"pos_embedding", "v.position_embd.weight"},   {"pos_norm.weight", "v.patch_norm.3.weight"},
      {"pos_norm.bias", "v.patch_norm.3.bias"},
  };
  for (const std::string prefix : {"model.vision_embedder.", "model.embed_vision."})
    for (const auto& [hf, gguf] : vision)
      BOOST_CHECK_EQUAL(hf_to_gguf_name(prefix + hf).value_or("-"), gguf);
  BOOST_CHECK_EQUAL(hf_to_gguf_name("model.embed_vision.embedding_projection.weight").value_or("-"),
                    "mm.input_projection.weight");
  BOOST_CHECK_EQUAL(
      hf_to_gguf_name("model.embed_vision.multimodal_embedder.embedding_projection.weight")
          .value_or("-"),
      "mm.input_projection.weight");
  BOOST_CHECK_EQUAL(hf_to_gguf_name("model.embed_audio.embedding_projection.weight").value_or("-"),
                    "mm.a.input_projection.weight");
  BOOST_CHECK_EQUAL(
      hf_to_gguf_name("model.embed_audio.multimodal_embedder.embedding_projection.weight")
          .value_or("-"),
      "mm.a.input_projection.weight");
  for (const char* unknown :
       {"lm_head.weight", "model.language_model.layers.x.mlp.up_proj.weight",
        "model.language_model.layers.3.self_attn.v_norm.weight", "model.layers.03.layer_scalar",
        "model.language_model.layers.3", "model.language_model.rope_freqs.weight",
        "model.vision_embedder.patch_ln3.weight", "language_model.model.norm.weight"})
    BOOST_CHECK_MESSAGE(!hf_to_gguf_name(unknown), unknown);
}

// ---------------------------------------------------------------------------------------------
// Gemma4Config::from_hf_config

namespace {

// config.json of google/gemma-4-12B-it as described by spec §1.1–1.4.
const char* const kConfig12B = R"({
  "architectures": ["Gemma4UnifiedForConditionalGeneration"],
  "model_type": "gemma4_unified",
  "boi_token_id": 255999,
  "eoi_token_id": 258882,
  "image_token_id": 258880,
  "boa_token_id": 256000,
  "audio_token_id": 258881,
  "eoa_token_index": 258883,
  "video_token_id": 258884,
  "eos_token_id": [1, 106],
  "tie_word_embeddings": true,
  "initializer_range": 0.02,
  "dtype": "bfloat16",
  "text_config": {
    "model_type": "gemma4_unified_text",
    "vocab_size": 262144,
    "hidden_size": 3840,
    "intermediate_size": 15360,
    "num_hidden_layers": 48,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 256,
    "global_head_dim": 512,
    "num_global_key_value_heads": 1,
    "attention_k_eq_v": true,
    "layer_types": [
      "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "full_attention",
      "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "full_attention",
      "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "full_attention",
      "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "full_attention",
      "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "full_attention",
      "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "full_attention",
      "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "full_attention",
      "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "full_attention"
    ],
    "sliding_window": 1024,
    "rope_parameters": {
      "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
      "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1000000.0}
    },
    "max_position_embeddings": 262144,
    "final_logit_softcapping": 30.0,
    "rms_norm_eps": 1e-06,
    "hidden_activation": "gelu_pytorch_tanh",
    "tie_word_embeddings": true,
    "use_bidirectional_attention": "vision",
    "attention_bias": false,
    "attention_dropout": 0.0,
    "num_kv_shared_layers": 0,
    "use_double_wide_mlp": false,
    "hidden_size_per_layer_input": 0,
    "vocab_size_per_layer_input": 262144,
    "enable_moe_block": false,
    "num_experts": null,
    "top_k_experts": null,
    "moe_intermediate_size": null,
    "pad_token_id": 0,
    "bos_token_id": 2,
    "eos_token_id": 1,
    "dtype": "bfloat16"
  },
  "vision_config": {
    "model_type": "gemma4_unified_vision",
    "patch_size": 16,
    "pooling_kernel_size": 3,
    "mm_embed_dim": 3840,
    "mm_posemb_size": 1120,
    "output_proj_dims": 3840,
    "num_soft_tokens": 280,
    "rms_norm_eps": 1e-06
  },
  "audio_config": {
    "model_type": "gemma4_unified_audio",
    "audio_embed_dim": 640,
    "rms_norm_eps": 1e-06
  }
})";

json config_12b() { return json::parse(kConfig12B); }

// The newer transformers encoding: full-layer geometry as per-layer overrides.
json config_12b_per_layer() {
  json c = config_12b();
  json& t = c["text_config"];
  t.erase("global_head_dim");
  t.erase("num_global_key_value_heads");
  json plc = json::object();
  for (int il = 5; il < 48; il += 6)
    plc[std::to_string(il)] = {{"head_dim", 512}, {"num_key_value_heads", 1}};
  t["per_layer_config"] = plc;
  return c;
}

Gemma4Config parse(const ScratchDir& tmp, const json& config) {
  write_text(tmp.path("config.json"), config);
  return Gemma4Config::from_hf_config(tmp.path("config.json"));
}

std::string parse_error(const ScratchDir& tmp, const json& config) {
  write_text(tmp.path("config.json"), config);
  const std::string msg =
      model_error([&] { Gemma4Config::from_hf_config(tmp.path("config.json")); });
  CHECK_HAS(msg, tmp.path("config.json"));
  return msg;
}

void check_12b(const Gemma4Config& c) {
  BOOST_CHECK_EQUAL(c.vocab_size, 262144);
  BOOST_CHECK_EQUAL(c.hidden, 3840);
  BOOST_CHECK_EQUAL(c.ffn, 15360);
  BOOST_CHECK_EQUAL(c.n_layer, 48);
  BOOST_CHECK_EQUAL(c.n_head, 16);
  BOOST_CHECK_EQUAL(c.n_kv_head_swa, 8);
  BOOST_CHECK_EQUAL(c.n_kv_head_full, 1);
  BOOST_CHECK_EQUAL(c.head_dim_swa, 256);
  BOOST_CHECK_EQUAL(c.head_dim_full, 512);
  BOOST_CHECK_EQUAL(c.sliding_window, 1024);
  BOOST_REQUIRE_EQUAL(c.layer_sliding.size(), 48u);
  for (size_t il = 0; il < 48; ++il) BOOST_CHECK_EQUAL(c.layer_sliding[il], il % 6 != 5);
  BOOST_CHECK_EQUAL(c.rope_theta_swa, 1e4f);
  BOOST_CHECK_EQUAL(c.rope_theta_full, 1e6f);
  BOOST_CHECK_EQUAL(c.rope_full_rotated_pairs, 64);  // int(0.25 * 512 // 2)
  BOOST_CHECK(c.full_k_eq_v);
  BOOST_CHECK_EQUAL(c.rms_eps, 1e-6f);
  BOOST_CHECK_EQUAL(c.final_logit_softcap, 30.0f);
  BOOST_CHECK_EQUAL(c.context_length, 262144);
  BOOST_CHECK_EQUAL(c.bos_id, 2);
  BOOST_CHECK_EQUAL(c.eos_id, 1);
}

}  // namespace

BOOST_AUTO_TEST_CASE(config_of_the_released_12b) {
  ScratchDir tmp;
  Gemma4Config c = parse(tmp, config_12b());
  check_12b(c);
  BOOST_CHECK_EQUAL(c.source, tmp.path("config.json"));
  BOOST_CHECK(c.suppress_ids == (std::vector<int32_t>{258882, 258883}));
}

BOOST_AUTO_TEST_CASE(config_with_per_layer_overrides_reads_the_same) {
  ScratchDir tmp;
  check_12b(parse(tmp, config_12b_per_layer()));
  // A serialisation that repeats unchanged attributes in the overrides, keyed by every layer.
  json c = config_12b_per_layer();
  json& plc = c["text_config"]["per_layer_config"];
  for (int il = 0; il < 48; ++il) {
    json& e = plc[std::to_string(il)];
    if (e.is_null()) e = {{"head_dim", 256}, {"num_key_value_heads", 8}};
    e["num_attention_heads"] = 16;
    e["intermediate_size"] = 15360;
  }
  check_12b(parse(tmp, c));
  // The attributes are ignored when per_layer_config is present (transformers pops them).
  c["text_config"]["global_head_dim"] = 128;
  check_12b(parse(tmp, c));
}

BOOST_AUTO_TEST_CASE(bare_text_config) {
  ScratchDir tmp;
  json text = config_12b()["text_config"];
  Gemma4Config c = parse(tmp, text);
  check_12b(c);
  BOOST_CHECK(c.suppress_ids.empty());
  text.erase("model_type");
  check_12b(parse(tmp, text));
}

BOOST_AUTO_TEST_CASE(generation_config_sets_suppression_and_sampling) {
  ScratchDir tmp;
  write_text(tmp.path("generation_config.json"),
             json::parse(R"({"eos_token_id": [1, 106, 50], "suppress_tokens": [258883, 258882],
                             "do_sample": true, "temperature": 0.7, "top_k": 40, "top_p": 0.9})"));
  Gemma4Config c = parse(tmp, config_12b());
  BOOST_CHECK(c.suppress_ids == (std::vector<int32_t>{258883, 258882}));
  BOOST_CHECK_EQUAL(c.sampling_temp, 0.7f);
  BOOST_CHECK_EQUAL(c.sampling_top_k, 40);
  BOOST_CHECK_EQUAL(c.sampling_top_p, 0.9f);
}

BOOST_AUTO_TEST_CASE(rope_variants) {
  ScratchDir tmp;
  json c = config_12b();
  json& full = c["text_config"]["rope_parameters"]["full_attention"];
  full["partial_rotary_factor"] = 0.5;
  BOOST_CHECK_EQUAL(parse(tmp, c).rope_full_rotated_pairs, 128);
  full["partial_rotary_factor"] = 0.3;  // 0.3 * 512 = 153.6, // 2 → 76
  BOOST_CHECK_EQUAL(parse(tmp, c).rope_full_rotated_pairs, 76);
  full = {{"rope_type", "default"}, {"rope_theta", 5e5}};
  Gemma4Config d = parse(tmp, c);
  BOOST_CHECK_EQUAL(d.rope_full_rotated_pairs, 256);
  BOOST_CHECK_EQUAL(d.rope_theta_full, 5e5f);
  full = {{"rope_type", "yarn"}, {"rope_theta", 5e5}, {"factor", 8.0}};
  CHECK_HAS(parse_error(tmp, c),
            "`text_config.rope_parameters.full_attention.rope_type` = \"yarn\"");
  full = {{"rope_type", "proportional"}, {"rope_theta", 1e6}, {"factor", 8.0}};
  CHECK_HAS(parse_error(tmp, c), "RoPE scaling is not supported");
  full = {{"rope_type", "default"}, {"rope_theta", 1e6}, {"partial_rotary_factor", 0.25}};
  CHECK_HAS(parse_error(tmp, c), "full_attention.partial_rotary_factor");
  c["text_config"]["rope_parameters"].erase("full_attention");
  CHECK_HAS(parse_error(tmp, c), "`text_config.rope_parameters.full_attention` is missing");
}

BOOST_AUTO_TEST_CASE(unsupported_variants_are_refused) {
  ScratchDir tmp;
  struct Case {
    const char* key;
    json value;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"hidden_size_per_layer_input", 256, "per-layer embeddings (PLE) are not supported"},
      {"enable_moe_block", true, "mixture-of-experts"},
      {"num_experts", 128, "mixture-of-experts"},
      {"num_kv_shared_layers", 20, "KV sharing"},
      {"use_double_wide_mlp", true, "double-wide MLP"},
      {"attention_bias", true, "attention biases"},
      {"attn_logit_softcapping", 50.0, "soft-capping"},
      {"hidden_activation", "gelu", "gelu_pytorch_tanh"},
      {"use_bidirectional_attention", "all", "\"vision\""},
      {"tie_word_embeddings", false, "separate LM head"},
  };
  for (const Case& k : cases) {
    json c = config_12b();
    c["text_config"][k.key] = k.value;
    const std::string msg = parse_error(tmp, c);
    CHECK_HAS(msg, std::string("`text_config.") + k.key + "`");
    CHECK_HAS(msg, k.message);
  }
  json c = config_12b();
  c["model_type"] = "gemma3";
  CHECK_HAS(parse_error(tmp, c), "key `model_type` = \"gemma3\"");
}

BOOST_AUTO_TEST_CASE(missing_and_malformed_keys_are_named) {
  ScratchDir tmp;
  for (const char* key :
       {"hidden_size", "vocab_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "num_key_value_heads", "head_dim", "sliding_window", "layer_types",
        "rope_parameters", "rms_norm_eps", "final_logit_softcapping", "max_position_embeddings",
        "global_head_dim"}) {
    json c = config_12b();
    c["text_config"].erase(key);
    CHECK_HAS(parse_error(tmp, c), std::string("`text_config.") + key + "` is missing");
  }
  json c = config_12b();
  c.erase("text_config");
  CHECK_HAS(parse_error(tmp, c), "key `text_config` is missing");
  c = config_12b();
  c["text_config"]["hidden_size"] = 3840.5;
  CHECK_HAS(parse_error(tmp, c), "`text_config.hidden_size` is not an integer");
  c = config_12b();
  c["text_config"]["layer_types"][3] = "chunked_attention";
  CHECK_HAS(parse_error(tmp, c), "`text_config.layer_types` [3] = \"chunked_attention\"");
  c = config_12b();
  c["text_config"]["layer_types"].erase(0);
  CHECK_HAS(parse_error(tmp, c), "num_hidden_layers = 48");
  c = config_12b();
  c["text_config"]["num_key_value_heads"] = 5;
  CHECK_HAS(parse_error(tmp, c), "does not divide num_attention_heads = 16");
  // Full layers that disagree cannot be described by one Gemma4Config.
  c = config_12b_per_layer();
  c["text_config"]["per_layer_config"]["11"]["head_dim"] = 256;
  CHECK_HAS(parse_error(tmp, c), "full layers different shapes: layer 5");
  c = config_12b_per_layer();
  c["text_config"]["per_layer_config"]["5"]["intermediate_size"] = 30720;
  CHECK_HAS(parse_error(tmp, c), "`text_config.per_layer_config.5.intermediate_size` = 30720");
  c = config_12b_per_layer();
  c["text_config"]["per_layer_config"]["48"] = {{"head_dim", 512}};
  CHECK_HAS(parse_error(tmp, c), "not a layer index below 48");
  write_bytes(tmp.path("config.json"), "{\"text_config\": ");
  CHECK_HAS(model_error([&] { Gemma4Config::from_hf_config(tmp.path("config.json")); }),
            "not valid JSON");
}

BOOST_AUTO_TEST_CASE(k_eq_v_off_keeps_the_sliding_kv_head_count_on_full_layers) {
  // transformers applies num_global_key_value_heads only when attention_k_eq_v is set.
  ScratchDir tmp;
  json c = config_12b();
  c["text_config"]["attention_k_eq_v"] = false;
  Gemma4Config g = parse(tmp, c);
  BOOST_CHECK(!g.full_k_eq_v);
  BOOST_CHECK_EQUAL(g.n_kv_head_full, 8);
  BOOST_CHECK_EQUAL(g.head_dim_full, 512);
}

// ---------------------------------------------------------------------------------------------
// HfCheckpoint

namespace {

// A small but complete Gemma 4 unified text config: 2 layers, sliding then full.
json tiny_config() {
  json c = config_12b();
  json& t = c["text_config"];
  t["vocab_size"] = 16;
  t["hidden_size"] = 8;
  t["intermediate_size"] = 16;
  t["num_hidden_layers"] = 2;
  t["num_attention_heads"] = 2;
  t["num_key_value_heads"] = 1;
  t["head_dim"] = 4;
  t["global_head_dim"] = 8;
  t["layer_types"] = {"sliding_attention", "full_attention"};
  t["sliding_window"] = 4;
  return c;
}

}  // namespace

BOOST_AUTO_TEST_CASE(checkpoint_maps_text_and_multimodal_names) {
  ScratchDir tmp;
  write_text(tmp.path("config.json"), tiny_config());
  const auto embd = pattern_bytes(16 * 8 * 2, 11);
  const auto q = pattern_bytes(8 * 8 * 2, 12);
  const auto scalar = pattern_bytes(2, 13);
  const auto pos = pattern_bytes(5 * 2 * 8 * 4, 14);
  const auto patch = pattern_bytes(8 * 12 * 4, 15);
  SafetensorsWriter w;
  w.add_tensor("model.language_model.embed_tokens.weight", DType::BF16, {16, 8}, embd.data(),
               embd.size());
  w.add_tensor("model.language_model.layers.1.self_attn.q_proj.weight", DType::BF16, {8, 8},
               q.data(), q.size());
  w.add_tensor("model.language_model.layers.1.layer_scalar", DType::BF16, {1}, scalar.data(),
               scalar.size());
  w.add_tensor("model.vision_embedder.pos_embedding", DType::F32, {5, 2, 8}, pos.data(),
               pos.size());
  w.add_tensor("model.vision_embedder.patch_dense.weight", DType::F32, {8, 12}, patch.data(),
               patch.size());
  w.add_tensor("model.embed_audio.multimodal_embedder.embedding_projection.weight", DType::BF16,
               {8, 8}, q.data(), q.size());
  w.add_tensor("model.some_future_block.weight", DType::F32, {2}, patch.data(), 8);
  w.write(tmp.path("model.safetensors"));

  auto ck = HfCheckpoint::open(tmp.path(""));
  const WeightSource& src = *ck;
  BOOST_CHECK_EQUAL(src.config().n_layer, 2);
  BOOST_CHECK_EQUAL(src.config().head_dim_full, 8);
  BOOST_CHECK_EQUAL(src.all().size(), 6u);
  BOOST_CHECK_EQUAL(src.file_bytes(), fs::file_size(tmp.path("model.safetensors")));
  BOOST_CHECK(ck->patch_layout_hwc());
  BOOST_CHECK(ck->unused() == std::vector<std::string>{"model.some_future_block.weight"});

  const TensorRef* e = src.find("token_embd.weight");
  BOOST_REQUIRE(e);
  BOOST_CHECK(e->ne == (std::vector<int64_t>{8, 16}));
  BOOST_CHECK(e->dtype == DType::BF16);
  BOOST_CHECK(std::memcmp(e->data, embd.data(), embd.size()) == 0);
  const TensorRef* s = src.find("blk.1.layer_output_scale.weight");
  BOOST_REQUIRE(s);
  BOOST_CHECK(s->ne == std::vector<int64_t>{1});
  BOOST_CHECK(std::memcmp(s->data, scalar.data(), 2) == 0);
  const TensorRef* p = src.find("v.position_embd.weight");
  BOOST_REQUIRE(p);
  BOOST_CHECK(p->ne == (std::vector<int64_t>{8, 2, 5}));  // HF layout, not permuted
  BOOST_CHECK(std::memcmp(p->data, pos.data(), pos.size()) == 0);
  const TensorRef* d = src.find("v.patch_embd.weight");
  BOOST_REQUIRE(d);
  BOOST_CHECK(d->ne == (std::vector<int64_t>{12, 8}));
  BOOST_CHECK(std::memcmp(d->data, patch.data(), patch.size()) == 0);
  BOOST_CHECK(src.find("mm.a.input_projection.weight"));
  BOOST_CHECK(src.find("blk.1.attn_q.weight"));
  BOOST_CHECK(src.find("rope_freqs.weight") == nullptr);  // derived from the config, not stored
  BOOST_CHECK(src.find("blk.1.attn_v.weight") == nullptr);
  CHECK_HAS(ck->origin("blk.1.attn_q.weight"),
            "model.language_model.layers.1.self_attn.q_proj.weight in ");
  CHECK_HAS(ck->origin("blk.1.attn_q.weight"), "model.safetensors");
  BOOST_CHECK(ck->origin("nope").empty());
  // A file inside the directory names the directory too.
  BOOST_CHECK_EQUAL(HfCheckpoint::open(tmp.path("config.json"))->all().size(), 6u);
}

BOOST_AUTO_TEST_CASE(checkpoint_reads_the_shards_of_an_index) {
  ScratchDir tmp;
  json config = tiny_config()["text_config"];  // a text-only checkpoint: `model.*` names
  write_text(tmp.path("config.json"), config);
  const auto a = pattern_bytes(8 * 2, 21);
  const auto b = pattern_bytes(16 * 8 * 4, 22);
  {
    SafetensorsWriter w;
    w.add_tensor("model.layers.0.input_layernorm.weight", DType::BF16, {8}, a.data(), a.size());
    w.add_tensor("model.norm.weight", DType::BF16, {8}, a.data(), a.size());
    w.write(tmp.path("model-00001-of-00002.safetensors"));
  }
  {
    SafetensorsWriter w;
    w.add_tensor("model.embed_tokens.weight", DType::F32, {16, 8}, b.data(), b.size());
    w.write(tmp.path("model-00002-of-00002.safetensors"));
  }
  {
    // Not in the index: must not be read (it would otherwise collide on token_embd).
    SafetensorsWriter w;
    w.add_tensor("model.embed_tokens.weight", DType::F32, {16, 8}, b.data(), b.size());
    w.write(tmp.path("consolidated.safetensors"));
  }
  json index = {{"metadata", {{"total_size", a.size() * 2 + b.size()}}},
                {"weight_map",
                 {{"model.layers.0.input_layernorm.weight", "model-00001-of-00002.safetensors"},
                  {"model.norm.weight", "model-00001-of-00002.safetensors"},
                  {"model.embed_tokens.weight", "model-00002-of-00002.safetensors"}}}};
  write_text(tmp.path("model.safetensors.index.json"), index);

  auto ck = HfCheckpoint::open(tmp.path(""));
  BOOST_CHECK_EQUAL(ck->files().size(), 2u);
  BOOST_CHECK_EQUAL(ck->all().size(), 3u);
  BOOST_CHECK_EQUAL(ck->file_bytes(),
                    fs::file_size(tmp.path("model-00001-of-00002.safetensors")) +
                        fs::file_size(tmp.path("model-00002-of-00002.safetensors")));
  const TensorRef* e = ck->find("token_embd.weight");
  BOOST_REQUIRE(e);
  BOOST_CHECK(e->dtype == DType::F32);
  BOOST_CHECK(std::memcmp(e->data, b.data(), b.size()) == 0);
  BOOST_CHECK(ck->find("blk.0.attn_norm.weight"));
  BOOST_CHECK(ck->find("output_norm.weight"));
  CHECK_HAS(ck->origin("token_embd.weight"), "model-00002-of-00002.safetensors");

  // The index names a tensor its shard lacks.
  index["weight_map"]["model.layers.0.ffn.weight"] = "model-00002-of-00002.safetensors";
  write_text(tmp.path("model.safetensors.index.json"), index);
  std::string msg = model_error([&] { HfCheckpoint::open(tmp.path("")); });
  CHECK_HAS(msg, "model-00002-of-00002.safetensors: tensor `model.layers.0.ffn.weight` listed in");
  // The index names a shard that does not exist.
  index["weight_map"].erase("model.layers.0.ffn.weight");
  index["weight_map"]["model.layers.1.ffn.weight"] = "model-00003-of-00003.safetensors";
  write_text(tmp.path("model.safetensors.index.json"), index);
  msg = model_error([&] { HfCheckpoint::open(tmp.path("")); });
  CHECK_HAS(msg, "model-00003-of-00003.safetensors: cannot open");
  // Without an index every *.safetensors is read, and the duplicate embedding is caught.
  fs::remove(tmp.path("model.safetensors.index.json"));
  msg = model_error([&] { HfCheckpoint::open(tmp.path("")); });
  CHECK_HAS(msg, "both map to `token_embd.weight`");
}

BOOST_AUTO_TEST_CASE(checkpoint_refuses_two_names_for_one_tensor_and_empty_dirs) {
  ScratchDir tmp;
  write_text(tmp.path("config.json"), tiny_config());
  BOOST_CHECK(model_error([&] { HfCheckpoint::open(tmp.path("")); }).find("no *.safetensors") !=
              std::string::npos);
  const auto b = pattern_bytes(8 * 4, 31);
  SafetensorsWriter w;
  w.add_tensor("model.vision_embedder.patch_ln2.weight", DType::F32, {8}, b.data(), b.size());
  w.add_tensor("model.embed_vision.patch_ln2.weight", DType::F32, {8}, b.data(), b.size());
  w.write(tmp.path("model.safetensors"));
  const std::string msg = model_error([&] { HfCheckpoint::open(tmp.path("")); });
  CHECK_HAS(msg, "model.embed_vision.patch_ln2.weight");
  CHECK_HAS(msg, "model.vision_embedder.patch_ln2.weight");
  CHECK_HAS(msg, "both map to `v.patch_norm.2.weight`");
  BOOST_CHECK(model_error([&] { HfCheckpoint::open(tmp.path("absent")); }).find("not a Hugging") !=
              std::string::npos);
}
