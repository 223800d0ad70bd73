#define BOOST_TEST_MODULE test_mmproj
// The mmproj loader (model/gemma4/gemma4_mmproj.h) and the gemma4uv / gemma4ua embedders
// (model/gemma4/gemma4_vision.h, model/gemma4/gemma4_audio.h) on files written by `model synth`:
// both file kinds, both HF naming variants, the errors, and the rows against a plain double
// reference written from spec §3.2–3.3 and §4 (not from rawflow's code).
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "model/error.h"
#include "model/formats/gguf.h"
#include "model/formats/quant.h"
#include "model/formats/safetensors.h"
#include "model/gemma4/gemma4_audio.h"
#include "model/gemma4/gemma4_mmproj.h"
#include "model/gemma4/gemma4_vision.h"
#include "model/model_loader.h"
#include "model/synth/synth.h"

namespace fs = std::filesystem;
using namespace rawflow;

namespace {

fs::path work_dir() {
  const char* env = std::getenv("RAWFLOW_TEST_WORK");
  fs::path d = env ? fs::path(env) : fs::temp_directory_path();
  d /= "test_mmproj";
  fs::create_directories(d);
  return d;
}

constexpr uint64_t kSeed = 7;

// A tiny text model with its embedders, as GGUF + clip GGUF and as a safetensors directory, from
// one seed: the two are the same model (synth docs).
struct Fixture {
  std::string gguf, mmproj, hf_dir;
  int64_t vocab_size = 0;
};

const Fixture& fixture(DType mmproj_dtype) {
  static std::map<DType, Fixture> cache;
  auto it = cache.find(mmproj_dtype);
  if (it != cache.end()) return it->second;
  const std::string tag(dtype_name(mmproj_dtype));
  Fixture f;
  SynthOptions o;
  o.preset = "tiny";
  o.seed = kSeed;
  o.mmproj = true;
  o.mmproj_dtype = mmproj_dtype;
  o.out = (work_dir() / ("tiny-" + tag + ".gguf")).string();
  const SynthReport r = synth_model(o);
  f.gguf = o.out;
  f.mmproj = (work_dir() / ("mmproj-tiny-" + tag + ".gguf")).string();
  f.vocab_size = r.vocab_size;
  BOOST_REQUIRE(fs::exists(f.mmproj));
  o.format = "safetensors";
  o.out = (work_dir() / ("tiny-" + tag + "-hf")).string();
  synth_model(o);
  f.hf_dir = o.out;
  return cache.emplace(mmproj_dtype, f).first->second;
}

template <class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// File rewriting for the error cases.

// Copies a GGUF; `edit_meta` may change metadata; `edit_tensor` may rename/drop/replace tensors
// (return false to drop).
struct TensorCopy {
  std::string name;
  DType dtype;
  std::vector<int64_t> ne;
  std::vector<uint8_t> bytes;
};
void rewrite_gguf(const std::string& src, const std::string& dst,
                  const std::function<void(GgufWriter&)>& edit_meta,
                  const std::function<bool(TensorCopy&)>& edit_tensor) {
  auto f = GgufFile::open(src);
  GgufWriter w;
  for (const auto& [k, v] : f->metadata()) w.set_value(k, v);
  if (edit_meta) edit_meta(w);
  for (const auto& t : f->tensors()) {
    const auto* p = f->tensor_data(t);
    TensorCopy c{t.name, t.dtype, t.ne, std::vector<uint8_t>(p, p + t.nbytes)};
    if (edit_tensor && !edit_tensor(c)) continue;
    w.add_tensor(c.name, c.dtype, c.ne, c.bytes.data(), c.bytes.size());
  }
  w.write(dst);
}

// Copies an HF directory (config.json, tokenizer.json, model.safetensors) with edits;
// `duplicates` adds copies of tensors under other names (existing name → new name).
void rewrite_hf(const std::string& src, const std::string& dst,
                const std::function<void(nlohmann::json&)>& edit_config,
                const std::function<bool(TensorCopy&)>& edit_tensor,
                const std::map<std::string, std::string>& duplicates = {}) {
  fs::remove_all(dst);
  fs::create_directories(dst);
  std::ifstream in(fs::path(src) / "config.json");
  nlohmann::json cfg = nlohmann::json::parse(in);
  if (edit_config) edit_config(cfg);
  std::ofstream(fs::path(dst) / "config.json") << cfg.dump(2);
  fs::copy_file(fs::path(src) / "tokenizer.json", fs::path(dst) / "tokenizer.json");
  auto st = SafetensorsFile::open((fs::path(src) / "model.safetensors").string());
  SafetensorsWriter w;
  for (const auto& t : st->tensors()) {
    const auto* p = static_cast<const uint8_t*>(t.data);
    TensorCopy c{t.name, t.dtype, st->torch_shape(t), std::vector<uint8_t>(p, p + t.nbytes)};
    if (auto d = duplicates.find(t.name); d != duplicates.end())
      w.add_tensor(d->second, c.dtype, c.ne, std::vector<uint8_t>(c.bytes));
    if (edit_tensor && !edit_tensor(c)) continue;
    w.add_tensor(c.name, c.dtype, c.ne, std::move(c.bytes));
  }
  w.write((fs::path(dst) / "model.safetensors").string());
}

std::string replace_prefix(const std::string& s, const std::string& from, const std::string& to) {
  return s.rfind(from, 0) == 0 ? to + s.substr(from.size()) : s;
}

// ---------------------------------------------------------------------------------------------
// Inputs, and the reference.

std::vector<uint8_t> random_image(int width, int height, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> img(static_cast<size_t>(width) * height * 3);
  for (auto& v : img) v = static_cast<uint8_t>(rng() & 0xFF);
  return img;
}

// Spec §3.2, written out: tiles in row-major order, each a 6912-vector in HWC
// (v[(r·48 + c)·3 + ch]) or CHW (v[ch·2304 + r·48 + c]) order, values pixel / 255.
struct Tiles {
  std::vector<float> values;
  std::vector<int32_t> x, y;
  int64_t n = 0;
};
Tiles tile_image(const std::vector<uint8_t>& rgb, int width, int height, bool chw) {
  Tiles t;
  const int cols = width / 48, rows = height / 48;
  for (int gy = 0; gy < rows; ++gy)
    for (int gx = 0; gx < cols; ++gx) {
      std::vector<float> v(6912);
      for (int r = 0; r < 48; ++r)
        for (int c = 0; c < 48; ++c)
          for (int ch = 0; ch < 3; ++ch) {
            const float px = rgb[((48 * gy + r) * width + 48 * gx + c) * 3 + ch] / 255.0f;
            v[chw ? ch * 2304 + r * 48 + c : (r * 48 + c) * 3 + ch] = px;
          }
      t.values.insert(t.values.end(), v.begin(), v.end());
      t.x.push_back(gx);
      t.y.push_back(gy);
      ++t.n;
    }
  return t;
}

// The synthetic weights in the HF layout as doubles, each rounded to the dtype the file under
// test stores it in.
struct RefWeights {
  std::map<std::string, std::vector<double>> w;  // by GGUF name
  int64_t dim = 0, out = 0, pos_rows = 0;
  double vision_eps = 1e-6;
  const std::vector<double>& operator[](const std::string& n) const { return w.at(n); }
};

double round_to(DType t, float v) {
  if (t == DType::F16) return fp16_to_f32(f32_to_fp16(v));
  if (t == DType::BF16) return bf16_to_f32(f32_to_bf16(v));
  return v;
}

RefWeights reference_weights(const Gemma4Mmproj& mm, int64_t vocab_size) {
  const SynthPreset p = synth_preset("tiny");
  std::map<std::string, DType> stored;
  const auto& v = mm.vision();
  for (const TensorRef* t : {&v.patch_norm1_w, &v.patch_norm1_b, &v.patch_embd_w, &v.patch_embd_b,
                             &v.patch_norm2_w, &v.patch_norm2_b, &v.position_embd, &v.patch_norm3_w,
                             &v.patch_norm3_b, &v.input_projection, &mm.audio().input_projection})
    stored[t->name] = t->dtype;
  RefWeights r;
  for (const auto& t : gguf_mmproj_plan(p)) {
    const auto f = synth_tensor_values(p, vocab_size, t, kSeed);
    std::vector<double> d(f.size());
    for (size_t i = 0; i < f.size(); ++i) d[i] = round_to(stored.at(t.gguf_name), f[i]);
    r.w[t.gguf_name] = std::move(d);
  }
  r.dim = p.vision_dim;
  r.out = p.hidden;
  r.pos_rows = p.position_rows;
  return r;
}

void ref_layer_norm(std::vector<double>& x, const std::vector<double>& g,
                    const std::vector<double>& b) {
  double mean = 0, var = 0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(x.size());
  for (double v : x) var += (v - mean) * (v - mean);
  var /= static_cast<double>(x.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = (x[i] - mean) / std::sqrt(var + 1e-5) * g[i] + b[i];
}

void ref_rms_norm(std::vector<double>& x, double eps) {
  double ms = 0;
  for (double v : x) ms += v * v;
  ms /= static_cast<double>(x.size());
  for (double& v : x) v /= std::sqrt(ms + eps);
}

// y = W x with W in PyTorch layout [out][in].
std::vector<double> ref_linear(const std::vector<double>& w, const std::vector<double>& x,
                               int64_t out) {
  const size_t in = x.size();
  std::vector<double> y(static_cast<size_t>(out));
  for (int64_t n = 0; n < out; ++n) {
    double s = 0;
    for (size_t k = 0; k < in; ++k) s += w[n * in + k] * x[k];
    y[n] = s;
  }
  return y;
}

// Spec §3.3 steps 1–7 for one HWC tile.
std::vector<double> ref_vision_token(const RefWeights& w, const float* hwc, int32_t x, int32_t y) {
  std::vector<double> a(hwc, hwc + 6912);
  ref_layer_norm(a, w["v.patch_norm.1.weight"], w["v.patch_norm.1.bias"]);
  std::vector<double> h = ref_linear(w["v.patch_embd.weight"], a, w.dim);
  for (int64_t i = 0; i < w.dim; ++i) h[i] += w["v.patch_embd.bias"][i];
  ref_layer_norm(h, w["v.patch_norm.2.weight"], w["v.patch_norm.2.bias"]);
  const auto& pos = w["v.position_embd.weight"];  // HF [P][2][D]
  for (int64_t i = 0; i < w.dim; ++i)
    h[i] += pos[(x * 2 + 0) * w.dim + i] + pos[(y * 2 + 1) * w.dim + i];
  ref_layer_norm(h, w["v.patch_norm.3.weight"], w["v.patch_norm.3.bias"]);
  ref_rms_norm(h, w.vision_eps);
  return ref_linear(w["mm.input_projection.weight"], h, w.out);
}

// Spec §4 step 3 for one frame.
std::vector<double> ref_audio_token(const RefWeights& w, const float* frame) {
  std::vector<double> u(frame, frame + 640);
  ref_rms_norm(u, 1e-6);
  return ref_linear(w["mm.a.input_projection.weight"], u, w.out);
}

// ‖a − b‖ / ‖b‖ of one row.
double rel_diff(const float* a, const double* b, int64_t n) {
  double d = 0, r = 0;
  for (int64_t i = 0; i < n; ++i) {
    d += (a[i] - b[i]) * (a[i] - b[i]);
    r += b[i] * b[i];
  }
  return std::sqrt(d / r);
}
double rel_diff(const float* a, const float* b, int64_t n) {
  std::vector<double> bd(b, b + n);
  return rel_diff(a, bd.data(), n);
}
double rms(const float* a, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * a[i];
  return std::sqrt(s / static_cast<double>(n));
}

std::vector<float> run_vision(const Gemma4VisionEmbedder& e, const Tiles& t) {
  std::vector<float> out(static_cast<size_t>(t.n * e.out_dim()));
  e.embed_patches(t.values.data(), t.x.data(), t.y.data(), t.n, out.data());
  return out;
}

std::vector<float> random_frames(int64_t n, uint32_t seed, float amplitude) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-amplitude, amplitude);
  std::vector<float> f(static_cast<size_t>(n * 640));
  for (auto& v : f) v = u(rng);
  return f;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Loading.

BOOST_AUTO_TEST_CASE(gguf_mmproj_loads) {
  const auto mm = Gemma4Mmproj::open(fixture(DType::BF16).mmproj);
  BOOST_TEST(mm->is_gguf());
  BOOST_TEST(mm->has_vision());
  BOOST_TEST(mm->has_audio());
  BOOST_TEST((mm->patch_order() == PatchOrder::CHW));
  BOOST_TEST(mm->out_dim() == 256);
  BOOST_TEST(mm->vision_dim() == 256);
  BOOST_TEST(mm->position_rows() == 1120);
  BOOST_TEST(mm->vision_rms_eps() == 1e-6f);
  BOOST_TEST(mm->audio_rms_eps() == 1e-6f);
  const auto& v = mm->vision();
  BOOST_TEST((v.position_layout == PositionTableLayout::AxisMajor));
  BOOST_TEST((v.position_embd.ne == std::vector<int64_t>{256, 1120, 2}));
  BOOST_TEST((v.patch_embd_w.ne == std::vector<int64_t>{6912, 256}));
  // llama.cpp's converter dtypes (§10.5): patch_embd and 1-D tensors F32, the rest as chosen.
  BOOST_TEST((v.patch_embd_w.dtype == DType::F32));
  BOOST_TEST((v.patch_norm1_w.dtype == DType::F32));
  BOOST_TEST((v.position_embd.dtype == DType::BF16));
  BOOST_TEST((v.input_projection.dtype == DType::BF16));
  BOOST_TEST((mm->audio().input_projection.dtype == DType::BF16));
  BOOST_TEST((mm->audio().input_projection.ne == std::vector<int64_t>{640, 256}));

  // Every key llama.cpp's clip loader requires (§10.8).
  const auto f = GgufFile::open(fixture(DType::BF16).mmproj);
  for (const char* m : {"vision", "audio"})
    for (const char* k : {"embedding_length", "attention.head_count", "feed_forward_length",
                          "block_count", "projection_dim", "attention.layer_norm_epsilon"})
      BOOST_TEST(f->has(std::string("clip.") + m + "." + k), m << "." << k);
  for (const char* k :
       {"clip.vision.image_size", "clip.vision.patch_size", "clip.audio.num_mel_bins"})
    BOOST_TEST(f->has(k), k);
  BOOST_TEST(f->get_float_array("clip.vision.image_mean").size() == 3u);
  BOOST_TEST(f->get_float_array("clip.vision.image_std").size() == 3u);
}

BOOST_AUTO_TEST_CASE(hf_directory_loads) {
  const auto mm = Gemma4Mmproj::open(fixture(DType::BF16).hf_dir);
  BOOST_TEST(!mm->is_gguf());
  BOOST_TEST(mm->has_vision());
  BOOST_TEST(mm->has_audio());
  BOOST_TEST((mm->patch_order() == PatchOrder::HWC));
  BOOST_TEST(mm->out_dim() == 256);
  BOOST_TEST(mm->vision_dim() == 256);
  BOOST_TEST(mm->position_rows() == 1120);
  const auto& v = mm->vision();
  BOOST_TEST((v.position_layout == PositionTableLayout::PosMajor));
  BOOST_TEST((v.position_embd.ne == std::vector<int64_t>{256, 2, 1120}));
  BOOST_TEST((v.patch_embd_w.dtype == DType::BF16));  // the release stores everything in BF16
  // A file inside the directory works too.
  BOOST_TEST(Gemma4Mmproj::open(fixture(DType::BF16).hf_dir + "/config.json")->has_vision());
  // The text model still loads from a directory that also holds the embedders.
  const LoadedModel text = load_model(fixture(DType::BF16).hf_dir);
  BOOST_TEST(text.text->config().hidden == 256);
}

BOOST_AUTO_TEST_CASE(hf_transformers_names_give_the_same_model) {
  const Fixture& fx = fixture(DType::F32);
  const std::string renamed = (work_dir() / "tiny-f32-hf-transformers-names").string();
  rewrite_hf(fx.hf_dir, renamed, nullptr, [](TensorCopy& c) {
    c.name = replace_prefix(c.name, "model.vision_embedder.", "model.embed_vision.");
    if (c.name == "model.embed_vision.embedding_projection.weight")
      c.name = "model.embed_vision.multimodal_embedder.embedding_projection.weight";
    if (c.name == "model.embed_audio.embedding_projection.weight")
      c.name = "model.embed_audio.multimodal_embedder.embedding_projection.weight";
    return true;
  });
  const auto st = SafetensorsFile::open(renamed + "/model.safetensors");
  BOOST_REQUIRE(st->find("model.embed_vision.patch_dense.weight") != nullptr);
  BOOST_REQUIRE(st->find("model.vision_embedder.patch_dense.weight") == nullptr);

  const auto a = Gemma4Mmproj::open(fx.hf_dir);
  const auto b = Gemma4Mmproj::open(renamed);
  const Tiles t = tile_image(random_image(96, 96, 3), 96, 96, false);
  const auto ra = run_vision(Gemma4VisionEmbedder(*a), t);
  const auto rb = run_vision(Gemma4VisionEmbedder(*b), t);
  BOOST_TEST(ra == rb);  // same bytes, same code path: bit-identical
  const auto frames = random_frames(3, 5, 0.3f);
  std::vector<float> fa(3 * 256), fb(3 * 256);
  Gemma4AudioEmbedder(*a).embed_audio_frames(frames.data(), 3, fa.data());
  Gemma4AudioEmbedder(*b).embed_audio_frames(frames.data(), 3, fb.data());
  BOOST_TEST(fa == fb);
}

BOOST_AUTO_TEST_CASE(gguf_errors_name_file_and_tensor) {
  const std::string src = fixture(DType::F32).mmproj;
  const std::string dst = (work_dir() / "broken.gguf").string();
  auto open_err = [&] { return error_of([&] { Gemma4Mmproj::open(dst); }); };

  rewrite_gguf(src, dst, nullptr, [](TensorCopy& c) { return c.name != "v.patch_norm.3.bias"; });
  std::string e = open_err();
  BOOST_TEST(contains(e, dst), e);
  BOOST_TEST(contains(e, "`v.patch_norm.3.bias` is missing"), e);

  rewrite_gguf(src, dst, nullptr, [](TensorCopy& c) {
    if (c.name == "v.patch_embd.weight") {
      c.ne = {6912, 128};
      c.bytes.resize(c.bytes.size() / 2);
    }
    return true;
  });
  e = open_err();
  BOOST_TEST(contains(e, "`v.patch_embd.weight` has ne [6912, 128], expected [6912, 256]"), e);

  // Block-quantized weights are not an mmproj dtype (§10.5).
  rewrite_gguf(src, dst, nullptr, [](TensorCopy& c) {
    if (c.name == "mm.input_projection.weight") {
      std::vector<float> f(c.bytes.size() / 4);
      std::memcpy(f.data(), c.bytes.data(), c.bytes.size());
      c.dtype = DType::Q8_0;
      c.bytes.assign(dtype_row_bytes(DType::Q8_0, 256) * 256, 0);
      for (int r = 0; r < 256; ++r)
        quantize_row(DType::Q8_0, f.data() + r * 256,
                     c.bytes.data() + r * dtype_row_bytes(DType::Q8_0, 256), 256);
    }
    return true;
  });
  e = open_err();
  BOOST_TEST(contains(e, "`mm.input_projection.weight` is q8_0"), e);
  BOOST_TEST(contains(e, "f32, f16 or bf16"), e);

  rewrite_gguf(
      src, dst, [](GgufWriter& w) { w.set_string("clip.vision.projector_type", "gemma3"); },
      nullptr);
  e = open_err();
  BOOST_TEST(contains(e, "vision projector type `gemma3` is not supported"), e);
  rewrite_gguf(
      src, dst, [](GgufWriter& w) { w.set_string("clip.audio.projector_type", "gemma4a"); },
      nullptr);
  e = open_err();
  BOOST_TEST(contains(e, "audio projector type `gemma4a` is not supported"), e);
  // The generic key overrides the per-modality ones, as in llama.cpp.
  rewrite_gguf(
      src, dst, [](GgufWriter& w) { w.set_string("clip.projector_type", "qwen2vl_merger"); },
      nullptr);
  e = open_err();
  BOOST_TEST(contains(e, "`qwen2vl_merger` is not supported"), e);

  rewrite_gguf(
      src, dst,
      [](GgufWriter& w) {
        w.set_array_f32("clip.vision.image_mean", {0.5f, 0.5f, 0.5f});
      },
      nullptr);
  e = open_err();
  BOOST_TEST(contains(e, "clip.vision.image_mean"), e);

  rewrite_gguf(
      src, dst, [](GgufWriter& w) { w.set_u32("clip.audio.projection_dim", 512); }, nullptr);
  e = open_err();
  BOOST_TEST(contains(e, "clip.audio.projection_dim = 512"), e);

  // The text model is not an mmproj.
  e = error_of([&] { Gemma4Mmproj::open(fixture(DType::F32).gguf); });
  BOOST_TEST(contains(e, "expected `clip`"), e);
  BOOST_TEST(contains(e, "text model"), e);

  // Audio only: vision tensors are not required, and asking for vision says what is missing.
  rewrite_gguf(
      src, dst, [](GgufWriter& w) { w.set_bool("clip.has_vision_encoder", false); },
      [](TensorCopy& c) { return c.name.rfind("v.", 0) != 0; });
  const auto audio_only = Gemma4Mmproj::open(dst);
  BOOST_TEST(!audio_only->has_vision());
  BOOST_TEST(audio_only->has_audio());
  e = error_of([&] { Gemma4VisionEmbedder v(*audio_only); });
  BOOST_TEST(contains(e, "no vision embedder"), e);
}

BOOST_AUTO_TEST_CASE(hf_errors_name_file_and_tensor) {
  const std::string src = fixture(DType::F32).hf_dir;
  const std::string dst = (work_dir() / "broken-hf").string();
  auto open_err = [&] { return error_of([&] { Gemma4Mmproj::open(dst); }); };

  rewrite_hf(src, dst, nullptr,
             [](TensorCopy& c) { return c.name != "model.vision_embedder.pos_embedding"; });
  std::string e = open_err();
  BOOST_TEST(contains(e, dst), e);
  BOOST_TEST(contains(e,
                      "`model.vision_embedder.pos_embedding` (or "
                      "`model.embed_vision.pos_embedding`) is missing"),
             e);

  rewrite_hf(src, dst, nullptr, [](TensorCopy& c) {
    if (c.name == "model.embed_audio.embedding_projection.weight") {
      c.ne = {256, 320};
      c.bytes.resize(c.bytes.size() / 2);
    }
    return true;
  });
  e = open_err();
  BOOST_TEST(contains(e, "model.embed_audio.embedding_projection.weight in " + dst), e);
  BOOST_TEST(contains(e, "has shape [256, 320], expected [256, 640]"), e);

  // Both naming variants of one tensor in one checkpoint are ambiguous.
  rewrite_hf(src, dst, nullptr, nullptr,
             {{"model.vision_embedder.patch_ln2.bias", "model.embed_vision.patch_ln2.bias"}});
  e = open_err();
  BOOST_TEST(contains(e, "both map to `v.patch_norm.2.bias`"), e);

  // 16-bit and 32-bit tensors may be mixed freely (§10.5); other safetensors dtypes cannot be
  // read at all, so a wrong dtype shows up as a shape/size error from the reader.
  rewrite_hf(src, dst, nullptr, [](TensorCopy& c) {
    if (c.name == "model.vision_embedder.pos_norm.weight") {
      std::vector<float> f(c.bytes.size() / 4);
      std::memcpy(f.data(), c.bytes.data(), c.bytes.size());
      c.dtype = DType::F16;
      c.bytes.resize(f.size() * 2);
      for (size_t i = 0; i < f.size(); ++i) {
        const uint16_t h = f32_to_fp16(f[i]);
        std::memcpy(c.bytes.data() + 2 * i, &h, 2);
      }
    }
    return true;
  });
  BOOST_TEST((Gemma4Mmproj::open(dst)->vision().patch_norm3_w.dtype == DType::F16));

  rewrite_hf(
      src, dst, [](nlohmann::json& c) { c["vision_config"]["model_type"] = "gemma4_vision"; },
      nullptr);
  e = open_err();
  BOOST_TEST(contains(e, "vision_config.model_type"), e);
  BOOST_TEST(contains(e, "gemma4_vision"), e);

  rewrite_hf(
      src, dst, [](nlohmann::json& c) { c["vision_config"]["mm_posemb_size"] = 1000; }, nullptr);
  e = open_err();
  BOOST_TEST(contains(e, "has shape [1120, 2, 256], expected [1000, 2, 256]"), e);

  rewrite_hf(
      src, dst, [](nlohmann::json& c) { c["audio_config"]["audio_samples_per_token"] = 320; },
      nullptr);
  e = open_err();
  BOOST_TEST(contains(e, "audio_config.audio_samples_per_token"), e);

  // A text-only checkpoint.
  rewrite_hf(
      src, dst,
      [](nlohmann::json& c) {
        c.erase("vision_config");
        c.erase("audio_config");
      },
      [](TensorCopy& c) { return c.name.find("language_model") != std::string::npos; });
  e = open_err();
  BOOST_TEST(contains(e, "text-only"), e);
}

// ---------------------------------------------------------------------------------------------
// Numerics.

// Tolerance 1e-4 (the issue's): rawflow computes in f32 (6912-long products, three LayerNorms),
// the reference in double on the same stored weights; measured worst rows ≈ 5e-7 in every case.
// The text decoder's tensors go through the same checks (model/formats/tensor_source.h), with
// messages in the names and shape order of the file the user has.
BOOST_AUTO_TEST_CASE(text_tensors_are_checked_like_the_embedders) {
  const Fixture& fx = fixture(DType::F32);
  auto load_err = [](const std::string& path) { return error_of([&] { load_model(path); }); };
  const std::string gguf = (work_dir() / "broken-text.gguf").string();
  rewrite_gguf(fx.gguf, gguf, nullptr, [](TensorCopy& c) {
    if (c.name == "blk.0.attn_q.weight") {
      c.ne = {256, 128};
      c.bytes.resize(c.bytes.size() / 2);
    }
    return true;
  });
  std::string e = load_err(gguf);
  BOOST_TEST(contains(e, gguf + ": tensor `blk.0.attn_q.weight` has ne [256, 128], expected [256, "
                                "256]"),
             e);
  rewrite_gguf(fx.gguf, gguf, nullptr,
               [](TensorCopy& c) { return c.name != "blk.1.ffn_up.weight"; });
  e = load_err(gguf);
  BOOST_TEST(contains(e, gguf + ": tensor `blk.1.ffn_up.weight` is missing"), e);

  const std::string dir = (work_dir() / "broken-text-hf").string();
  rewrite_hf(fx.hf_dir, dir, nullptr, [](TensorCopy& c) {
    if (c.name == "model.language_model.layers.0.self_attn.q_proj.weight") {
      c.ne = {128, 256};
      c.bytes.resize(c.bytes.size() / 2);
    }
    return true;
  });
  e = load_err(dir);
  BOOST_TEST(contains(e, "tensor model.language_model.layers.0.self_attn.q_proj.weight in " + dir),
             e);
  BOOST_TEST(contains(e, "has shape [128, 256], expected [256, 256]"), e);
  // A norm vector stored in a block format cannot be read as floats: named with its dtype.
  rewrite_gguf(fx.gguf, gguf, nullptr, [](TensorCopy& c) {
    if (c.name == "blk.0.attn_norm.weight") {
      c.dtype = DType::Q8_0;
      c.bytes.assign(256 / 32 * 34, 0);
    }
    return true;
  });
  e = load_err(gguf);
  BOOST_TEST(contains(e,
                      "tensor `blk.0.attn_norm.weight` is q8_0; norm vectors must be f32, f16 "
                      "or bf16"),
             e);
}

BOOST_AUTO_TEST_CASE(vision_rows_match_the_reference_in_every_dtype_and_layout) {
  const std::vector<uint8_t> img = random_image(144, 96, 11);
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    const Fixture& fx = fixture(dt);
    for (const std::string& path : {fx.mmproj, fx.hf_dir}) {
      const auto mm = Gemma4Mmproj::open(path);
      const RefWeights w = reference_weights(*mm, fx.vocab_size);
      const Gemma4VisionEmbedder e(*mm);
      const bool chw = e.patch_order() == PatchOrder::CHW;
      const Tiles t = tile_image(img, 144, 96, chw);
      const Tiles hwc = tile_image(img, 144, 96, false);
      BOOST_REQUIRE(t.n == 6);
      const auto rows = run_vision(e, t);
      double worst = 0;
      for (int64_t i = 0; i < t.n; ++i) {
        const auto ref = ref_vision_token(w, hwc.values.data() + i * 6912, hwc.x[i], hwc.y[i]);
        worst = std::max(worst, rel_diff(rows.data() + i * 256, ref.data(), 256));
      }
      BOOST_TEST_MESSAGE(path << ": worst row rel diff " << worst);
      BOOST_TEST(worst <= 1e-4, path << ": worst row rel diff " << worst);
    }
  }
}

BOOST_AUTO_TEST_CASE(gguf_chw_and_hf_hwc_are_the_same_model) {
  const Fixture& fx = fixture(DType::F32);
  const auto g = Gemma4Mmproj::open(fx.mmproj);
  const auto h = Gemma4Mmproj::open(fx.hf_dir);
  // Each file fed the same image in its own order, cut by the engine's patchify.
  const std::vector<uint8_t> img = random_image(192, 144, 21);
  auto cut = [&](PatchOrder order) {
    const Patches p = patchify(img.data(), 192, 144, order);
    Tiles t;
    t.values = p.values;
    t.x = p.pos_x;
    t.y = p.pos_y;
    t.n = p.tokens();
    return t;
  };
  const Tiles chw = cut(g->patch_order());
  const Tiles hwc = cut(h->patch_order());
  BOOST_TEST(chw.values == tile_image(img, 192, 144, true).values);  // spec §3.2's CHW
  const Gemma4VisionEmbedder eg(*g), eh(*h);
  const auto rg = run_vision(eg, chw);
  const auto rh = run_vision(eh, hwc);
  // Same F32 weights, permuted: only the summation order of the 6912-long products differs
  // (measured ≈ 5e-7).
  double worst = 0;
  for (int64_t i = 0; i < chw.n; ++i)
    worst = std::max(worst, rel_diff(rg.data() + i * 256, rh.data() + i * 256, 256));
  BOOST_TEST_MESSAGE("GGUF vs HF: worst row rel diff " << worst);
  BOOST_TEST(worst <= 1e-5, "worst row rel diff " << worst);

  // The layout matters: the GGUF fed HWC patches gives other rows.
  const auto wrong = run_vision(eg, hwc);
  BOOST_TEST(rel_diff(wrong.data(), rh.data(), 256) > 0.05);

  // Audio rows of the two files agree as well.
  const auto frames = random_frames(5, 9, 0.5f);
  std::vector<float> ag(5 * 256), ah(5 * 256);
  Gemma4AudioEmbedder(*g).embed_audio_frames(frames.data(), 5, ag.data());
  Gemma4AudioEmbedder(*h).embed_audio_frames(frames.data(), 5, ah.data());
  for (int i = 0; i < 5; ++i)
    BOOST_TEST(rel_diff(ag.data() + i * 256, ah.data() + i * 256, 256) <= 1e-5);
}

BOOST_AUTO_TEST_CASE(positions_matter_and_are_checked) {
  const auto mm = Gemma4Mmproj::open(fixture(DType::F32).mmproj);
  const Gemma4VisionEmbedder e(*mm);
  Tiles t = tile_image(random_image(48, 48, 5), 48, 48, true);
  t.x = {3};
  t.y = {7};
  const auto a = run_vision(e, t);
  std::swap(t.x[0], t.y[0]);
  const auto b = run_vision(e, t);
  BOOST_TEST(rel_diff(a.data(), b.data(), 256) > 0.1);  // x and y tables are different
  t.x = {1119};
  t.y = {1119};
  BOOST_CHECK_NO_THROW(run_vision(e, t));  // last row of each table
  for (auto [x, y] : {std::pair{1120, 0}, std::pair{0, 1120}, std::pair{-1, 0}}) {
    t.x = {x};
    t.y = {y};
    const std::string err = error_of([&] { run_vision(e, t); });
    BOOST_TEST(contains(err, "outside the position table [0, 1120)"), err);
  }
}

BOOST_AUTO_TEST_CASE(a_batch_equals_tiles_one_by_one) {
  // 600 tiles cross the embedder's 512-tile chunk; positions spread over the whole table.
  const auto mm = Gemma4Mmproj::open(fixture(DType::BF16).mmproj);
  const Gemma4VisionEmbedder e(*mm);
  const int64_t n = 600;
  Tiles t;
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  t.values.resize(n * 6912);
  for (auto& v : t.values) v = u(rng);
  for (int64_t i = 0; i < n; ++i) {
    t.x.push_back(static_cast<int32_t>((i * 37) % 1120));
    t.y.push_back(static_cast<int32_t>((i * 101) % 1120));
  }
  t.n = n;
  const auto all = run_vision(e, t);
  const RefWeights w = reference_weights(*mm, fixture(DType::BF16).vocab_size);
  double worst = 0;
  for (int64_t i : {int64_t{0}, int64_t{1}, int64_t{511}, int64_t{512}, int64_t{599}}) {
    std::vector<float> one(256);
    e.embed_patches(t.values.data() + i * 6912, &t.x[i], &t.y[i], 1, one.data());
    // One row through oneDNN vs a row of a 600-row product: same sums, possibly other blocking.
    BOOST_TEST(rel_diff(one.data(), all.data() + i * 256, 256) <= 1e-5, "tile " << i);
    // CHW values: the reference wants them in HWC.
    std::vector<float> hwc(6912);
    for (int64_t k = 0; k < 6912; ++k) hwc[patch_hwc_index(k)] = t.values[i * 6912 + k];
    const auto ref = ref_vision_token(w, hwc.data(), t.x[i], t.y[i]);
    worst = std::max(worst, rel_diff(all.data() + i * 256, ref.data(), 256));
  }
  BOOST_TEST(worst <= 1e-4, "worst " << worst);
}

BOOST_AUTO_TEST_CASE(audio_rows_match_the_reference) {
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    const Fixture& fx = fixture(dt);
    for (const std::string& path : {fx.mmproj, fx.hf_dir}) {
      const auto mm = Gemma4Mmproj::open(path);
      const RefWeights w = reference_weights(*mm, fx.vocab_size);
      const Gemma4AudioEmbedder e(*mm);
      BOOST_TEST(e.out_dim() == 256);
      // Loud and very quiet frames: the RMSNorm brings both to unit RMS (spec §4 step 3).
      auto frames = random_frames(4, 3, 0.8f);
      for (int i = 640; i < 1280; ++i) frames[i] *= 1e-3f;
      std::vector<float> out(4 * 256);
      e.embed_audio_frames(frames.data(), 4, out.data());
      for (int64_t i = 0; i < 4; ++i) {
        const auto ref = ref_audio_token(w, frames.data() + i * 640);
        BOOST_TEST(rel_diff(out.data() + i * 256, ref.data(), 256) <= 1e-4, path << " frame " << i);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(zero_audio_frame_gives_zero_row) {
  const auto mm = Gemma4Mmproj::open(fixture(DType::BF16).mmproj);
  const Gemma4AudioEmbedder e(*mm);
  auto frames = random_frames(3, 4, 0.5f);
  std::fill(frames.begin() + 640, frames.begin() + 1280, 0.0f);
  std::vector<float> out(3 * 256, 1.0f);
  e.embed_audio_frames(frames.data(), 3, out.data());
  BOOST_TEST(std::all_of(out.begin() + 256, out.begin() + 512, [](float v) { return v == 0.0f; }));
  BOOST_TEST(rms(out.data(), 256) > 0.1);
}

// The synthetic scales put soft tokens at the magnitude of scaled text embeddings (synth docs):
// neither drowned by nor drowning the text rows.
BOOST_AUTO_TEST_CASE(soft_tokens_have_text_embedding_magnitude) {
  const Fixture& fx = fixture(DType::F32);
  const auto text = GgufFile::open(fx.gguf);
  const TensorRef emb = text->ref(text->tensor("token_embd.weight"));
  const float* e = static_cast<const float*>(emb.data);
  const double text_rms = rms(e, emb.nelements()) * std::sqrt(256.0);

  const auto mm = Gemma4Mmproj::open(fx.mmproj);
  const Tiles t = tile_image(random_image(144, 144, 8), 144, 144, true);
  const auto v = run_vision(Gemma4VisionEmbedder(*mm), t);
  const auto frames = random_frames(8, 6, 0.2f);
  std::vector<float> a(8 * 256);
  Gemma4AudioEmbedder(*mm).embed_audio_frames(frames.data(), 8, a.data());
  for (double r : {rms(v.data(), static_cast<int64_t>(v.size())),
                   rms(a.data(), static_cast<int64_t>(a.size()))}) {
    BOOST_TEST(r > 0.5 * text_rms, r << " vs text " << text_rms);
    BOOST_TEST(r < 2.0 * text_rms, r << " vs text " << text_rms);
  }
  // Not degenerate: different tiles give clearly different rows.
  BOOST_TEST(rel_diff(v.data(), v.data() + 256, 256) > 0.3);
}

BOOST_AUTO_TEST_CASE(cli_writes_a_matching_mmproj) {
  const char* bin = std::getenv("RAWFLOW_BIN");
  BOOST_REQUIRE_MESSAGE(bin != nullptr, "RAWFLOW_BIN is not set (run through CTest)");
  const fs::path dir = work_dir() / "cli";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string out = (dir / "m.gguf").string();
  const std::string cmd = std::string(bin) + " model synth --preset tiny --seed " +
                          std::to_string(kSeed) + " --mmproj --mmproj-dtype f16 --out " + out +
                          " > " + (dir / "log.txt").string() + " 2>&1";
  BOOST_REQUIRE_EQUAL(std::system(cmd.c_str()), 0);
  const auto mm = Gemma4Mmproj::open((dir / "mmproj-m.gguf").string());  // the default path
  BOOST_TEST((mm->vision().input_projection.dtype == DType::F16));
  // Same seed, same values as the API's file (stored as F16 here).
  const auto ref = Gemma4Mmproj::open(fixture(DType::F16).mmproj);
  const TensorRef& a = mm->vision().input_projection;
  const TensorRef& b = ref->vision().input_projection;
  BOOST_TEST(std::memcmp(a.data, b.data, a.nbytes) == 0);

  const std::string bad = std::string(bin) + " model synth --preset tiny --format safetensors " +
                          "--mmproj-out x.gguf --out " + (dir / "st").string() + " > " +
                          (dir / "log2.txt").string() + " 2>&1";
  BOOST_TEST(std::system(bad.c_str()) != 0);
}

// Throughput at the real 12B shapes (D = 3840, 1120-row table): printed, not asserted, for
// docs/mmproj.md. Release-like dtypes: patch_embd F32, position table and projections BF16.
BOOST_AUTO_TEST_CASE(throughput_at_12b_shapes) {
  SynthOptions o;
  o.preset = "12b-2l";
  o.seed = kSeed;
  o.mmproj_dtype = DType::BF16;
  o.mmproj_out = (work_dir() / "mmproj-12b.gguf").string();
  if (!fs::exists(o.mmproj_out)) synth_mmproj(o);
  const auto mm = Gemma4Mmproj::open(o.mmproj_out);
  BOOST_REQUIRE(mm->vision_dim() == 3840);
  BOOST_REQUIRE(mm->out_dim() == 3840);
  const Gemma4VisionEmbedder ve(*mm);
  const Gemma4AudioEmbedder ae(*mm);

  const int64_t tiles = 256, frames = 750;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> values(tiles * 6912);
  for (auto& v : values) v = u(rng);
  std::vector<int32_t> px(tiles), py(tiles);
  for (int64_t i = 0; i < tiles; ++i) {
    px[i] = static_cast<int32_t>(i % 16);
    py[i] = static_cast<int32_t>(i / 16);
  }
  const auto audio = random_frames(frames, 2, 0.3f);
  std::vector<float> out(std::max(tiles, frames) * 3840);

  auto best_of = [](int reps, const std::function<void()>& fn) {
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      fn();
      best = std::min(best,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  };
  const double tv =
      best_of(3, [&] { ve.embed_patches(values.data(), px.data(), py.data(), tiles, out.data()); });
  const double ta = best_of(3, [&] { ae.embed_audio_frames(audio.data(), frames, out.data()); });
  std::printf(
      "mmproj throughput (12B shapes, best of 3): vision %lld tiles in %.1f ms = %.0f "
      "tiles/s; audio %lld frames in %.1f ms = %.0f frames/s\n",
      static_cast<long long>(tiles), tv * 1e3, tiles / tv, static_cast<long long>(frames), ta * 1e3,
      frames / ta);
  BOOST_TEST(std::isfinite(out[0]));
}
