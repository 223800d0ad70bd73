#include "model/gemma4/gemma4_mmproj.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "model/error.h"
#include "model/formats/gguf.h"
#include "model/formats/hf_checkpoint.h"
#include "model/formats/json_file.h"
#include "model/formats/tensor_source.h"

namespace rawflow {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::string_view kVisionProjector = "gemma4uv";
constexpr std::string_view kAudioProjector = "gemma4ua";
constexpr int64_t kTeacherPatch = 16;  // clip.vision.patch_size; llama.cpp multiplies it by 3
constexpr int64_t kPoolingKernel = 3;

// Every embedder tensor is read as floats (the embedders run on oneDNN's f32 matmul).
const TensorRef& require(const TensorSource& s, const std::string& name,
                         const std::vector<int64_t>& ne, std::string_view needed_by) {
  return require_float_tensor(s, name, ne, "mmproj tensors", needed_by);
}

// The shape of a tensor if present (to infer a dimension the metadata does not give).
std::optional<std::vector<int64_t>> shape_of(const TensorSource& s, const std::string& name) {
  const TensorRef* t = s.find(name);
  if (!t) return std::nullopt;
  return t->ne;
}

// The projector types a `clip` GGUF declares, as llama.cpp reads them: `clip.projector_type`
// for every modality when present, else the per-modality key.
std::string projector_type(const GgufFile& f, const std::string& modality) {
  std::string t = f.get_string_or("clip.projector_type", "");
  if (!t.empty()) return t;
  const std::string key = "clip." + modality + ".projector_type";
  if (!f.has(key))
    throw ModelFileError(f.path() + ": metadata key `" + key + "` is missing (clip.has_" +
                         modality + "_encoder is true)");
  return f.get_string(key);
}

void require_projector(const GgufFile& f, const std::string& modality, std::string_view want) {
  const std::string t = projector_type(f, modality);
  if (t != want)
    throw ModelFileError(f.path() + ": " + modality + " projector type `" + t +
                         "` is not supported: rawflow runs the Gemma 4 unified projectors "
                         "(gemma4uv vision, gemma4ua audio)");
}

int64_t positive_int(const GgufFile& f, const std::string& key) {
  const int64_t v = f.get_int(key);
  if (v <= 0)
    throw ModelFileError(f.path() + ": metadata key `" + key + "` = " + std::to_string(v) +
                         " must be positive");
  return v;
}

float checked_eps(double eps, const std::string& where) {
  if (!(eps > 0.0) || !std::isfinite(eps) || eps > 1.0)
    throw ModelFileError(where + " = " + std::to_string(eps) + " is not a valid epsilon");
  return static_cast<float>(eps);
}

// rawflow feeds raw `pixel / 255` values (spec §3.1 step 5); a file asking for another
// normalisation would be silently misread.
void require_identity_normalisation(const GgufFile& f) {
  for (const auto& [key, want] : {std::pair<const char*, double>{"clip.vision.image_mean", 0.0},
                                  std::pair<const char*, double>{"clip.vision.image_std", 1.0}}) {
    if (!f.has(key)) continue;
    for (double v : f.get_float_array(key))
      if (v != want)
        throw ModelFileError(f.path() + ": metadata key `" + std::string(key) + "` is not all " +
                             (want == 0.0 ? "0" : "1") +
                             ": gemma4uv takes unnormalised pixels (spec §3.1)");
  }
}

// ---------------------------------------------------------------------------------------------
// config.json `vision_config` / `audio_config`.

class ConfigSection {
 public:
  ConfigSection(const std::string& file, const json* obj, std::string name)
      : file_(file), obj_(obj), name_(std::move(name)) {}
  bool present() const { return obj_ != nullptr; }

  std::optional<int64_t> get_int(const char* k) const {
    const json* v = find(k);
    if (!v) return std::nullopt;
    if (!v->is_number_integer()) fail(k, "is not an integer");
    return v->get<int64_t>();
  }
  std::optional<double> get_number(const char* k) const {
    const json* v = find(k);
    if (!v) return std::nullopt;
    if (!v->is_number()) fail(k, "is not a number");
    return v->get<double>();
  }
  std::optional<std::string> get_string(const char* k) const {
    const json* v = find(k);
    if (!v) return std::nullopt;
    if (!v->is_string()) fail(k, "is not a string");
    return v->get<std::string>();
  }
  // A key that, when present, must have the value rawflow's embedders are built for.
  void require_if_present(const char* k, int64_t want, const std::string& why) const {
    if (auto v = get_int(k); v && *v != want)
      fail(k, "= " + std::to_string(*v) + ", expected " + std::to_string(want) + " (" + why + ")");
  }
  std::string key(const char* k) const { return file_ + ": key `" + name_ + "." + k + "`"; }
  [[noreturn]] void fail(const char* k, const std::string& what) const {
    throw ModelFileError(key(k) + " " + what);
  }

 private:
  const json* find(const char* k) const {
    if (!obj_) return nullptr;
    auto it = obj_->find(k);
    return it == obj_->end() || it->is_null() ? nullptr : &*it;
  }
  const std::string& file_;
  const json* obj_;
  std::string name_;
};

ConfigSection section(const std::string& file, const json& cfg, const char* name) {
  auto it = cfg.find(name);
  if (it == cfg.end() || it->is_null()) return ConfigSection(file, nullptr, name);
  if (!it->is_object()) throw ModelFileError(file + ": key `" + name + "` is not a JSON object");
  return ConfigSection(file, &*it, name);
}

void require_model_type(const ConfigSection& s, const char* want) {
  if (auto t = s.get_string("model_type"); t && *t != want)
    s.fail("model_type", "= \"" + *t + "\": only the encoder-free " + want +
                             " embedder (Gemma 4 unified) is supported");
}

bool any_vision_tensor(const HfCheckpoint& hf) {
  for (const TensorRef& t : hf.all())
    if (t.name.starts_with("v.") || t.name == "mm.input_projection.weight") return true;
  return false;
}

// ---------------------------------------------------------------------------------------------

Gemma4VisionWeights load_vision(const TensorSource& c, int64_t dim, int64_t out_dim,
                                int64_t pos_rows, PositionTableLayout layout, float rms_eps) {
  constexpr std::string_view by = "the gemma4uv vision embedder";
  Gemma4VisionWeights v;
  v.patch_norm1_w = require(c, "v.patch_norm.1.weight", {kPatchValues}, by);
  v.patch_norm1_b = require(c, "v.patch_norm.1.bias", {kPatchValues}, by);
  v.patch_embd_w = require(c, "v.patch_embd.weight", {kPatchValues, dim}, by);
  v.patch_embd_b = require(c, "v.patch_embd.bias", {dim}, by);
  v.patch_norm2_w = require(c, "v.patch_norm.2.weight", {dim}, by);
  v.patch_norm2_b = require(c, "v.patch_norm.2.bias", {dim}, by);
  v.position_layout = layout;
  v.position_rows = pos_rows;
  v.position_embd =
      require(c, "v.position_embd.weight",
              layout == PositionTableLayout::AxisMajor ? std::vector<int64_t>{dim, pos_rows, 2}
                                                       : std::vector<int64_t>{dim, 2, pos_rows},
              by);
  v.patch_norm3_w = require(c, "v.patch_norm.3.weight", {dim}, by);
  v.patch_norm3_b = require(c, "v.patch_norm.3.bias", {dim}, by);
  v.input_projection = require(c, "mm.input_projection.weight", {dim, out_dim}, by);
  v.rms_eps = rms_eps;
  return v;
}

Gemma4AudioWeights load_audio(const TensorSource& c, int64_t out_dim) {
  Gemma4AudioWeights a;
  a.input_projection = require(c, "mm.a.input_projection.weight", {kAudioFrameSamples, out_dim},
                               "the gemma4ua audio embedder");
  return a;
}

// By content, not name: ollama blobs have no extension, and a file inside an HF directory
// (config.json, a shard) stands for the directory.
bool is_gguf_file(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in && std::string_view(magic, 4) == "GGUF";
}

}  // namespace

Gemma4Mmproj::Gemma4Mmproj() = default;
Gemma4Mmproj::~Gemma4Mmproj() = default;

std::unique_ptr<Gemma4Mmproj> Gemma4Mmproj::open(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw ModelFileError(path + ": no such file or directory");
  std::unique_ptr<Gemma4Mmproj> m(new Gemma4Mmproj());
  m->path_ = path;
  if (is_gguf_file(path))
    m->open_gguf(path);
  else
    m->open_hf(path);
  return m;
}

void Gemma4Mmproj::open_gguf(const std::string& path) {
  gguf_ = std::make_unique<GgufTensors>(GgufFile::open(path));
  const GgufFile& f = gguf_->file();
  const std::string arch = f.get_string_or("general.architecture", "");
  if (arch != "clip")
    throw ModelFileError(path + ": general.architecture = `" + arch +
                         "`, expected `clip`: this is not an mmproj file" +
                         (arch == "gemma4" ? " (it is the text model)" : ""));
  has_vision_ = f.get_bool_or("clip.has_vision_encoder", false);
  has_audio_ = f.get_bool_or("clip.has_audio_encoder", false);
  if (!has_vision_ && !has_audio_)
    throw ModelFileError(path +
                         ": neither clip.has_vision_encoder nor clip.has_audio_encoder is true");
  const TensorSource& c = *gguf_;

  if (has_vision_) {
    require_projector(f, "vision", kVisionProjector);
    const int64_t patch = positive_int(f, "clip.vision.patch_size");
    const int64_t merge = f.get_int_or("clip.vision.projector.scale_factor", kPoolingKernel);
    if (patch * merge != kPatchSide)
      throw ModelFileError(path + ": clip.vision.patch_size = " + std::to_string(patch) +
                           " × scale factor " + std::to_string(merge) +
                           " is not the 48-pixel tile of gemma4uv");
    require_identity_normalisation(f);
    vision_dim_ = positive_int(f, "clip.vision.embedding_length");
    out_dim_ = positive_int(f, "clip.vision.projection_dim");
    // P is not stored in metadata; the table's own second dimension gives it.
    const auto pos_ne = shape_of(c, "v.position_embd.weight");
    const int64_t pos_rows =
        pos_ne && pos_ne->size() == 3 && (*pos_ne)[1] > 0 ? (*pos_ne)[1] : 1120;
    const float eps = checked_eps(f.get_float_or("clip.vision.attention.layer_norm_epsilon", 1e-6),
                                  path + ": clip.vision.attention.layer_norm_epsilon");
    vision_ = load_vision(c, vision_dim_, out_dim_, pos_rows, PositionTableLayout::AxisMajor, eps);
  }
  if (has_audio_) {
    require_projector(f, "audio", kAudioProjector);
    const int64_t frame = positive_int(f, "clip.audio.embedding_length");
    if (frame != kAudioFrameSamples)
      throw ModelFileError(path + ": clip.audio.embedding_length = " + std::to_string(frame) +
                           ", expected " + std::to_string(kAudioFrameSamples) +
                           " (samples per gemma4ua frame)");
    const int64_t proj = positive_int(f, "clip.audio.projection_dim");
    if (has_vision_ && proj != out_dim_)
      throw ModelFileError(
          path + ": clip.audio.projection_dim = " + std::to_string(proj) +
          " differs from clip.vision.projection_dim = " + std::to_string(out_dim_));
    out_dim_ = proj;
    audio_ = load_audio(c, out_dim_);
  }
}

void Gemma4Mmproj::open_hf(const std::string& path) {
  hf_ = HfCheckpoint::open(path);
  const std::string cfg_path = (fs::path(hf_->path()) / "config.json").string();
  const json cfg = load_json_file(cfg_path);
  if (!cfg.is_object()) throw ModelFileError(cfg_path + ": not a JSON object");
  out_dim_ = hf_->config().hidden;
  const TensorSource& c = *hf_;

  const ConfigSection vc = section(cfg_path, cfg, "vision_config");
  const ConfigSection ac = section(cfg_path, cfg, "audio_config");
  has_vision_ = vc.present() || any_vision_tensor(*hf_);
  has_audio_ = ac.present() || c.find("mm.a.input_projection.weight") != nullptr;
  if (!has_vision_ && !has_audio_)
    throw ModelFileError(hf_->path() +
                         ": no vision or audio embedder (config.json has neither vision_config nor "
                         "audio_config, and no multimodal tensors): a text-only checkpoint");

  if (has_vision_) {
    require_model_type(vc, "gemma4_unified_vision");
    vc.require_if_present("model_patch_size", kPatchSide, "the 48-pixel gemma4uv tile");
    vc.require_if_present("patch_size", kTeacherPatch, "3×3 teacher patches of 16 pixels");
    vc.require_if_present("pooling_kernel_size", kPoolingKernel, "3×3 teacher patches");
    vc.require_if_present("output_proj_dims", out_dim_, "text_config.hidden_size");
    const auto dense = shape_of(c, "v.patch_embd.weight");
    vision_dim_ =
        vc.get_int("mm_embed_dim").value_or(dense && dense->size() == 2 ? (*dense)[1] : out_dim_);
    if (vision_dim_ <= 0) vc.fail("mm_embed_dim", "must be positive");
    const auto pos = shape_of(c, "v.position_embd.weight");
    const int64_t pos_rows =
        vc.get_int("mm_posemb_size").value_or(pos && pos->size() == 3 ? (*pos)[2] : 1120);
    if (pos_rows <= 0) vc.fail("mm_posemb_size", "must be positive");
    const float eps =
        checked_eps(vc.get_number("rms_norm_eps").value_or(1e-6), vc.key("rms_norm_eps"));
    vision_ = load_vision(c, vision_dim_, out_dim_, pos_rows, PositionTableLayout::PosMajor, eps);
  }
  if (has_audio_) {
    require_model_type(ac, "gemma4_unified_audio");
    for (const char* k : {"audio_samples_per_token", "audio_embed_dim", "hidden_size"})
      ac.require_if_present(k, kAudioFrameSamples, "samples per gemma4ua frame");
    ac.require_if_present("output_proj_dims", out_dim_, "text_config.hidden_size");
    audio_ = load_audio(c, out_dim_);
  }
}

const Gemma4VisionWeights& Gemma4Mmproj::vision() const {
  if (!has_vision_) throw EngineError(path_ + ": this mmproj has no vision embedder (gemma4uv)");
  return vision_;
}

const Gemma4AudioWeights& Gemma4Mmproj::audio() const {
  if (!has_audio_) throw EngineError(path_ + ": this mmproj has no audio embedder (gemma4ua)");
  return audio_;
}

}  // namespace rawflow
