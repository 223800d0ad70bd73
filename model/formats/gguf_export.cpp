#include "model/formats/gguf_export.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <filesystem>
#include <thread>

#include "model/error.h"
#include "model/formats/gguf.h"
#include "model/formats/quant.h"
#include "model/gemma4/gemma4_mmproj.h"

namespace rawflow {
namespace {

std::string hf_layer(int64_t il, const std::string& suffix) {
  return "model.language_model.layers." + std::to_string(il) + "." + suffix;
}

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

// Gemma 4 specials a real vocabulary should have (spec §1.4, §6).
constexpr const char* kRequiredSpecials[] = {"<|turn>",   "<turn|>",    "<|image>",   "<image|>",
                                             "<|image|>", "<|audio>",   "<audio|>",   "<|audio|>",
                                             "<|video|>", "<|channel>", "<channel|>", "<|think|>"};

}  // namespace

int64_t PlannedTensor::nelements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

std::vector<PlannedTensor> gguf_text_plan(const Gemma4Geometry& g, int64_t vocab_size) {
  std::vector<PlannedTensor> t;
  const int64_t h = g.hidden;
  t.push_back({"token_embd.weight",
               "model.language_model.embed_tokens.weight",
               {h, vocab_size},
               TensorRole::Embedding});
  t.push_back({"rope_freqs.weight", "", {g.head_dim_full / 2}, TensorRole::RopeFreqs});
  for (int64_t il = 0; il < g.n_layer(); ++il) {
    const bool sliding = g.layer_sliding[il];
    const int64_t d = sliding ? g.head_dim_swa : g.head_dim_full;
    const int64_t n_kv = sliding ? g.n_kv_head_swa : g.n_kv_head_full;
    const int64_t q = g.n_head * d, kv = n_kv * d;
    const std::string gg = "blk." + std::to_string(il) + ".";
    auto add = [&](const std::string& name, const std::string& hf, std::vector<int64_t> ne,
                   TensorRole role) {
      t.push_back({gg + name, hf_layer(il, hf), std::move(ne), role});
    };
    add("attn_norm.weight", "input_layernorm.weight", {h}, TensorRole::Norm);
    add("attn_q.weight", "self_attn.q_proj.weight", {h, q}, TensorRole::Matrix);
    add("attn_k.weight", "self_attn.k_proj.weight", {h, kv}, TensorRole::Matrix);
    if (sliding || !g.full_k_eq_v)
      add("attn_v.weight", "self_attn.v_proj.weight", {h, kv}, TensorRole::Matrix);
    add("attn_output.weight", "self_attn.o_proj.weight", {q, h}, TensorRole::Matrix);
    add("attn_q_norm.weight", "self_attn.q_norm.weight", {d}, TensorRole::Norm);
    add("attn_k_norm.weight", "self_attn.k_norm.weight", {d}, TensorRole::KNorm);
    add("post_attention_norm.weight", "post_attention_layernorm.weight", {h}, TensorRole::PostNorm);
    add("ffn_norm.weight", "pre_feedforward_layernorm.weight", {h}, TensorRole::Norm);
    add("ffn_gate.weight", "mlp.gate_proj.weight", {h, g.ffn}, TensorRole::Matrix);
    add("ffn_up.weight", "mlp.up_proj.weight", {h, g.ffn}, TensorRole::Matrix);
    add("ffn_down.weight", "mlp.down_proj.weight", {g.ffn, h}, TensorRole::Matrix);
    add("post_ffw_norm.weight", "post_feedforward_layernorm.weight", {h}, TensorRole::PostNorm);
    add("layer_output_scale.weight", "layer_scalar", {1}, TensorRole::OutputScale);
  }
  t.push_back({"output_norm.weight", "model.language_model.norm.weight", {h}, TensorRole::Norm});
  return t;
}

std::vector<PlannedTensor> gguf_mmproj_plan(const Gemma4Geometry& g) {
  const int64_t d = g.vision_dim, h = g.hidden, pv = kPatchValues;
  const std::string v = "model.vision_embedder.";
  std::vector<PlannedTensor> t;
  if (g.has_vision)
    t = {
        {"v.patch_norm.1.weight", v + "patch_ln1.weight", {pv}, TensorRole::Norm},
        {"v.patch_norm.1.bias", v + "patch_ln1.bias", {pv}, TensorRole::Bias},
        {"v.patch_embd.weight", v + "patch_dense.weight", {pv, d}, TensorRole::Matrix},
        {"v.patch_embd.bias", v + "patch_dense.bias", {d}, TensorRole::Bias},
        {"v.patch_norm.2.weight", v + "patch_ln2.weight", {d}, TensorRole::Norm},
        {"v.patch_norm.2.bias", v + "patch_ln2.bias", {d}, TensorRole::Bias},
        {"v.position_embd.weight",
         v + "pos_embedding",
         {d, 2, g.position_rows},
         TensorRole::PositionTable},
        {"v.patch_norm.3.weight", v + "pos_norm.weight", {d}, TensorRole::Norm},
        {"v.patch_norm.3.bias", v + "pos_norm.bias", {d}, TensorRole::Bias},
        {"mm.input_projection.weight",
         "model.embed_vision.embedding_projection.weight",
         {d, h},
         TensorRole::SoftTokenProjection},
    };
  if (g.has_audio)
    t.push_back({"mm.a.input_projection.weight",
                 "model.embed_audio.embedding_projection.weight",
                 {kAudioFrameSamples, h},
                 TensorRole::SoftTokenProjection});
  return t;
}

std::vector<float> mmproj_gguf_layout(const PlannedTensor& t, const std::vector<float>& hf,
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

float rope_freqs_value(const Gemma4Geometry& g, int64_t i) {
  return i < g.rope_full_rotated_pairs ? 1.0f : 1e30f;
}

DType default_embd_dtype(DType matrix) { return matrix == DType::Q4_0 ? DType::Q6_K : matrix; }

DType text_tensor_dtype(const PlannedTensor& t, DType matrix, DType embd) {
  if (t.role == TensorRole::Embedding) return embd;
  if (t.role == TensorRole::Matrix) return matrix;
  return DType::F32;  // norms, scalars, rope_freqs: F32 as in every released GGUF
}

DType mmproj_tensor_dtype(const PlannedTensor& t, DType dtype) {
  if (t.gguf_name == "v.patch_embd.weight" || t.ne.size() == 1) return DType::F32;
  return dtype;
}

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

void check_dtype_fits(const PlannedTensor& t, DType dtype, const std::string& who) {
  const int64_t block = dtype_traits(dtype).block_elems;
  if (t.ne[0] % block != 0)
    throw EngineError(who + ": tensor `" + t.gguf_name + "` has rows of " +
                      std::to_string(t.ne[0]) + " elements, not a multiple of the " +
                      std::string(dtype_name(dtype)) + " block (" + std::to_string(block) + ")");
}

void check_mmproj_dtype(DType d, const std::string& who) {
  if (d != DType::F32 && d != DType::F16 && d != DType::BF16)
    throw EngineError(who + ": the embedders are stored in f32, f16 or bf16, not " +
                      std::string(dtype_name(d)));
}

std::string default_mmproj_path(const std::string& out) {
  const std::filesystem::path p(out);
  return (p.parent_path() / ("mmproj-" + p.filename().string())).string();
}

std::vector<std::string> missing_gemma4_specials(const Vocab& v) {
  std::vector<std::string> missing;
  for (const char* s : kRequiredSpecials)
    if (v.find(s) < 0) missing.emplace_back(s);
  return missing;
}

void write_text_metadata(GgufWriter& w, const Gemma4Geometry& g, const Vocab& v, DType dtype,
                         const std::string& general_name) {
  const std::string a = "gemma4.";
  w.set_string("general.architecture", "gemma4");
  w.set_string("general.name", general_name);
  w.set_u32("general.file_type", llama_ftype(dtype));
  w.set_u32("general.quantization_version", 2);
  w.set_f32("general.sampling.temp", g.sampling_temp);
  w.set_f32("general.sampling.top_p", g.sampling_top_p);
  w.set_i32("general.sampling.top_k", g.sampling_top_k);
  w.set_u32(a + "context_length", static_cast<uint32_t>(g.context_length));
  w.set_u32(a + "embedding_length", static_cast<uint32_t>(g.hidden));
  w.set_u32(a + "block_count", static_cast<uint32_t>(g.n_layer()));
  w.set_u32(a + "feed_forward_length", static_cast<uint32_t>(g.ffn));
  w.set_u32(a + "attention.head_count", static_cast<uint32_t>(g.n_head));
  std::vector<int32_t> kv;
  for (bool s : g.layer_sliding)
    kv.push_back(static_cast<int32_t>(s ? g.n_kv_head_swa : g.n_kv_head_full));
  w.set_array_i32(a + "attention.head_count_kv", kv);
  w.set_u32(a + "attention.key_length", static_cast<uint32_t>(g.head_dim_full));
  w.set_u32(a + "attention.value_length", static_cast<uint32_t>(g.head_dim_full));
  w.set_u32(a + "attention.key_length_swa", static_cast<uint32_t>(g.head_dim_swa));
  w.set_u32(a + "attention.value_length_swa", static_cast<uint32_t>(g.head_dim_swa));
  w.set_u32(a + "attention.sliding_window", static_cast<uint32_t>(g.sliding_window));
  w.set_array_bool(a + "attention.sliding_window_pattern", g.layer_sliding);
  w.set_f32(a + "attention.layer_norm_rms_epsilon", g.rms_eps);
  w.set_u32(a + "attention.shared_kv_layers", 0);
  w.set_f32(a + "rope.freq_base", g.rope_theta_full);
  w.set_f32(a + "rope.freq_base_swa", g.rope_theta_swa);
  w.set_u32(a + "rope.dimension_count", static_cast<uint32_t>(g.head_dim_full));
  w.set_u32(a + "rope.dimension_count_swa", static_cast<uint32_t>(g.head_dim_swa));
  w.set_f32(a + "final_logit_softcapping", g.final_logit_softcap);
  w.set_u32(a + "embedding_length_per_layer_input", 0);
  v.write_gguf(w);
}

// Every key llama.cpp's clip loader requires for each modality present (§7.3, §10.8), with the
// released file's values where they do not depend on the geometry.
void write_mmproj_metadata(GgufWriter& w, const Gemma4Geometry& g, DType dtype,
                           const std::string& general_name) {
  w.set_string("general.architecture", "clip");
  w.set_string("general.name", general_name);
  w.set_u32("general.file_type", llama_ftype(dtype));
  w.set_bool("clip.has_vision_encoder", g.has_vision);
  w.set_bool("clip.has_audio_encoder", g.has_audio);
  if (g.has_vision) w.set_string("clip.vision.projector_type", "gemma4uv");
  if (g.has_audio) w.set_string("clip.audio.projector_type", "gemma4ua");
  if (g.has_vision) {
    w.set_u32("clip.vision.image_size", 224);  // placeholder, unused by gemma4uv
    w.set_u32("clip.vision.patch_size", 16);   // the loader multiplies it by 3
    w.set_u32("clip.vision.embedding_length", static_cast<uint32_t>(g.vision_dim));
    w.set_u32("clip.vision.projection_dim", static_cast<uint32_t>(g.hidden));
    w.set_u32("clip.vision.block_count", 0);
    w.set_u32("clip.vision.feed_forward_length", 0);
    w.set_u32("clip.vision.attention.head_count", 0);
    w.set_f32("clip.vision.attention.layer_norm_epsilon", g.vision_rms_eps);
    w.set_array_f32("clip.vision.image_mean", {0.0f, 0.0f, 0.0f});
    w.set_array_f32("clip.vision.image_std", {1.0f, 1.0f, 1.0f});
  }
  if (g.has_audio) {
    w.set_u32("clip.audio.embedding_length", static_cast<uint32_t>(kAudioFrameSamples));
    w.set_u32("clip.audio.projection_dim", static_cast<uint32_t>(g.hidden));
    w.set_u32("clip.audio.num_mel_bins", 128);  // stale in the release; the loader uses 640
    w.set_u32("clip.audio.block_count", 0);
    w.set_u32("clip.audio.feed_forward_length", 0);
    w.set_u32("clip.audio.attention.head_count", 0);
    w.set_f32("clip.audio.attention.layer_norm_epsilon", 1e-6f);
  }
}

std::vector<uint8_t> encode_rows(const PlannedTensor& t, DType dtype, const RowFiller& fill) {
  const int64_t row = t.ne[0];
  const int64_t rows = t.nelements() / row;
  const size_t row_bytes = dtype_row_bytes(dtype, row);
  std::vector<uint8_t> out(row_bytes * static_cast<size_t>(rows));
  parallel_rows(rows, row, [&](int64_t r0, int64_t r1) {
    std::vector<float> buf(static_cast<size_t>(row));
    for (int64_t r = r0; r < r1; ++r) {
      fill(r, 1, buf.data());
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

std::vector<float> tensor_values(const PlannedTensor& t, const RowFiller& fill) {
  std::vector<float> v(static_cast<size_t>(t.nelements()));
  const int64_t row = t.ne[0];
  parallel_rows(t.nelements() / row, row,
                [&](int64_t r0, int64_t r1) { fill(r0, r1 - r0, v.data() + r0 * row); });
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

GgufExportStats write_text_gguf(const std::string& path, const Gemma4Geometry& g, const Vocab& v,
                                const GgufExportOptions& o, const RowFillerSource& source) {
  const auto plan = gguf_text_plan(g, static_cast<int64_t>(v.size()));
  for (const auto& t : plan)
    check_dtype_fits(t, text_tensor_dtype(t, o.dtype, o.embd_dtype), o.who);
  GgufWriter w;
  write_text_metadata(w, g, v, o.dtype, o.general_name);
  GgufExportStats stats;
  const RowFiller rope_freqs = [&g](int64_t first, int64_t rows, float* out) {
    const int64_t n = g.head_dim_full / 2;
    for (int64_t i = first * n; i < (first + rows) * n; ++i) *out++ = rope_freqs_value(g, i);
  };
  for (const auto& t : plan) {
    const DType dt = text_tensor_dtype(t, o.dtype, o.embd_dtype);
    const bool generated = t.role == TensorRole::RopeFreqs;
    const auto bytes = encode_rows(t, dt, generated ? rope_freqs : source(t));
    w.add_tensor(t.gguf_name, dt, t.ne, bytes.data(), bytes.size());
    stats.bytes += bytes.size();
    if (!generated) stats.params += t.nelements();
    ++stats.tensor_count;
  }
  w.write(path);
  return stats;
}

GgufExportStats write_mmproj_gguf(const std::string& path, const Gemma4Geometry& g,
                                  const GgufExportOptions& o, const RowFillerSource& source) {
  check_mmproj_dtype(o.mmproj_dtype, o.who);
  GgufWriter w;
  write_mmproj_metadata(w, g, o.mmproj_dtype, o.general_name + "-mmproj");
  GgufExportStats stats;
  for (const auto& t : gguf_mmproj_plan(g)) {
    std::vector<int64_t> ne;
    const auto values = mmproj_gguf_layout(t, tensor_values(t, source(t)), &ne);
    const DType dt = mmproj_tensor_dtype(t, o.mmproj_dtype);
    const auto bytes = encode_values(values, dt);
    w.add_tensor(t.gguf_name, dt, ne, bytes.data(), bytes.size());
    stats.bytes += bytes.size();
    stats.params += t.nelements();
    ++stats.tensor_count;
  }
  w.write(path);
  return stats;
}

}  // namespace rawflow
