#include "model/formats/hf_checkpoint.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>

#include "model/error.h"

namespace rawflow {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Per-layer tensors: HF suffix after `layers.N.` → GGUF suffix after `blk.N.` (spec §7.2).
constexpr std::array<std::pair<std::string_view, std::string_view>, 14> kLayerNames = {{
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
}};

// Vision embedder tensors after `model.vision_embedder.` (on disk) or `model.embed_vision.`
// (transformers module names) → mmproj GGUF names (spec §7.4, §10.4).
constexpr std::array<std::pair<std::string_view, std::string_view>, 10> kVisionNames = {{
    {"patch_ln1.weight", "v.patch_norm.1.weight"},
    {"patch_ln1.bias", "v.patch_norm.1.bias"},
    {"patch_dense.weight", "v.patch_embd.weight"},
    {"patch_dense.bias", "v.patch_embd.bias"},
    {"patch_ln2.weight", "v.patch_norm.2.weight"},
    {"patch_ln2.bias", "v.patch_norm.2.bias"},
    {"pos_embedding", "v.position_embd.weight"},
    {"pos_embedding.weight", "v.position_embd.weight"},
    {"pos_norm.weight", "v.patch_norm.3.weight"},
    {"pos_norm.bias", "v.patch_norm.3.bias"},
}};

constexpr std::array<std::pair<std::string_view, std::string_view>, 4> kProjectionNames = {{
    {"model.embed_vision.embedding_projection.weight", "mm.input_projection.weight"},
    {"model.embed_vision.multimodal_embedder.embedding_projection.weight",
     "mm.input_projection.weight"},
    {"model.embed_audio.embedding_projection.weight", "mm.a.input_projection.weight"},
    {"model.embed_audio.multimodal_embedder.embedding_projection.weight",
     "mm.a.input_projection.weight"},
}};

// `table`: an array of (from, to) string_view pairs.
std::optional<std::string> lookup(std::string_view name, const auto& table) {
  for (const auto& [from, to] : table)
    if (name == from) return std::string(to);
  return std::nullopt;
}

std::optional<std::string> multimodal_gguf_name(std::string_view hf) {
  if (auto n = lookup(hf, kProjectionNames)) return n;
  for (std::string_view prefix : {"model.vision_embedder.", "model.embed_vision."})
    if (hf.starts_with(prefix)) return lookup(hf.substr(prefix.size()), kVisionNames);
  return std::nullopt;
}

std::optional<std::string> text_gguf_name(std::string_view rest) {
  if (rest == "embed_tokens.weight") return "token_embd.weight";
  if (rest == "norm.weight") return "output_norm.weight";
  constexpr std::string_view kLayers = "layers.";
  if (!rest.starts_with(kLayers)) return std::nullopt;
  rest.remove_prefix(kLayers.size());
  size_t digits = 0;
  while (digits < rest.size() && digits < 6 && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
  if (digits == 0 || digits >= rest.size() || rest[digits] != '.') return std::nullopt;
  if (digits > 1 && rest[0] == '0') return std::nullopt;  // "07" is not a layer index
  std::string_view layer = rest.substr(0, digits);
  auto suffix = lookup(rest.substr(digits + 1), kLayerNames);
  if (!suffix) return std::nullopt;
  return "blk." + std::string(layer) + "." + *suffix;
}

json load_index(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelFileError(path.string() + ": cannot open");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for `1e506`
    throw ModelFileError(path.string() + ": not valid JSON: " + e.what());
  }
}

// Shards named by model.safetensors.index.json, each once, in order of first mention, with the
// tensors the index places in each.
std::vector<std::pair<std::string, std::vector<std::string>>> index_shards(const fs::path& path) {
  json index = load_index(path);
  auto wm = index.is_object() ? index.find("weight_map") : index.end();
  if (!index.is_object() || wm == index.end() || !wm->is_object())
    throw ModelFileError(path.string() + ": key `weight_map` is missing or not a JSON object");
  std::vector<std::pair<std::string, std::vector<std::string>>> shards;
  for (const auto& [tensor, file] : wm->items()) {
    if (!file.is_string())
      throw ModelFileError(path.string() + ": key `weight_map." + tensor + "` is not a file name");
    const std::string name = file.get<std::string>();
    auto it =
        std::find_if(shards.begin(), shards.end(), [&](const auto& s) { return s.first == name; });
    if (it == shards.end()) it = shards.insert(shards.end(), {name, {}});
    it->second.push_back(tensor);
  }
  return shards;
}

}  // namespace

std::optional<std::string> hf_to_gguf_name(std::string_view hf_name) {
  if (auto n = multimodal_gguf_name(hf_name)) return n;
  for (std::string_view prefix : {"model.language_model.", "model."})
    if (hf_name.starts_with(prefix)) return text_gguf_name(hf_name.substr(prefix.size()));
  return std::nullopt;
}

std::vector<std::string> hf_embedder_names(std::string_view gguf_name) {
  std::vector<std::string> out;
  for (const auto& [hf, gguf] : kProjectionNames)
    if (gguf == gguf_name) out.emplace_back(hf);
  // The first suffix that maps to it (pos_embedding before pos_embedding.weight), both prefixes.
  for (const auto& [suffix, gguf] : kVisionNames)
    if (gguf == gguf_name) {
      for (std::string_view prefix : {"model.vision_embedder.", "model.embed_vision."})
        out.push_back(std::string(prefix) + std::string(suffix));
      break;
    }
  return out;
}

std::unique_ptr<HfCheckpoint> HfCheckpoint::open(const std::string& dir_arg) {
  std::error_code ec;
  fs::path dir(dir_arg);
  if (fs::is_regular_file(dir, ec)) dir = dir.parent_path();
  if (!fs::is_directory(dir, ec))
    throw ModelFileError(dir_arg + ": not a Hugging Face checkpoint directory");

  std::unique_ptr<HfCheckpoint> ck(new HfCheckpoint());
  ck->dir_ = dir.string();
  ck->config_ = Gemma4Config::from_hf_config((dir / "config.json").string());

  const fs::path index_path = dir / "model.safetensors.index.json";
  if (fs::exists(index_path, ec)) {
    for (const auto& [shard, names] : index_shards(index_path)) {
      auto f = SafetensorsFile::open((dir / shard).string());
      for (const std::string& n : names)
        if (!f->find(n))
          throw ModelFileError(f->path() + ": tensor `" + n + "` listed in " + index_path.string() +
                               " is not in this file");
      ck->add_file(std::move(f));
    }
  } else {
    std::vector<fs::path> shards;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".safetensors" && e.is_regular_file()) shards.push_back(e.path());
    std::sort(shards.begin(), shards.end());
    if (shards.empty()) throw ModelFileError(ck->dir_ + ": no *.safetensors files");
    for (const auto& p : shards) ck->add_file(SafetensorsFile::open(p.string()));
  }
  return ck;
}

void HfCheckpoint::add_file(std::unique_ptr<SafetensorsFile> file) {
  const size_t file_index = files_.size();
  files_.push_back(std::move(file));
  const SafetensorsFile& f = *files_.back();
  for (const TensorRef& t : f.tensors()) {
    auto gguf = hf_to_gguf_name(t.name);
    if (!gguf) {
      unused_.push_back(t.name);
      continue;
    }
    if (auto it = index_.find(*gguf); it != index_.end()) {
      const Origin& first = origins_[it->second];
      throw ModelFileError(f.path() + ": tensor `" + t.name + "` and `" + first.hf_name + "` in " +
                           files_[first.file]->path() + " both map to `" + *gguf + "`");
    }
    TensorRef ref = t;
    ref.name = *gguf;
    index_.emplace(*gguf, tensors_.size());
    tensors_.push_back(std::move(ref));
    origins_.push_back({t.name, file_index});
  }
}

const TensorRef* HfCheckpoint::find(const std::string& gguf_name) const {
  auto it = index_.find(gguf_name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

size_t HfCheckpoint::file_bytes() const {
  size_t n = 0;
  for (const auto& f : files_) n += f->file_size();
  return n;
}

std::string HfCheckpoint::origin(const std::string& gguf_name) const {
  auto it = index_.find(gguf_name);
  if (it == index_.end()) return {};
  const Origin& o = origins_[it->second];
  return o.hf_name + " in " + files_[o.file]->path();
}

std::string HfCheckpoint::where(const std::string& gguf_name) const {
  const std::string o = origin(gguf_name);
  return o.empty() ? TensorSource::where(gguf_name) : "tensor " + o;
}

std::string HfCheckpoint::missing_name(const std::string& gguf_name) const {
  const std::vector<std::string> hf = hf_embedder_names(gguf_name);
  if (hf.size() < 2) return TensorSource::missing_name(gguf_name);
  return "`" + hf[0] + "` (or `" + hf[1] + "`)";
}

std::string HfCheckpoint::shape_text(const std::vector<int64_t>& ne, bool with_word) const {
  return (with_word ? "shape " : "") +
         TensorSource::shape_text(std::vector<int64_t>(ne.rbegin(), ne.rend()), false);
}

}  // namespace rawflow
