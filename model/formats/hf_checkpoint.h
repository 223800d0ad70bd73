#pragma once
// A Hugging Face checkpoint directory (config.json + *.safetensors) seen through GGUF tensor names
// (spec §7.2 text, §7.4 multimodal), so the model loaders need not know where weights came from.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/formats/safetensors.h"
#include "model/formats/weight_source.h"

namespace rawflow {

// The GGUF name of an HF tensor name, or nullopt for a tensor rawflow does not use. Accepts the
// multimodal checkpoint's `model.language_model.*` and the text-only `model.*` prefixes, and both
// the on-disk (`model.vision_embedder.*`, `model.embed_vision.embedding_projection.weight`) and the
// current transformers (`model.embed_vision.patch_ln1.*`, `...multimodal_embedder...`) names.
std::optional<std::string> hf_to_gguf_name(std::string_view hf_name);

// The other way, for the embedders' tensors (`v.*`, `mm.*`): the HF names hf_to_gguf_name maps to
// `gguf_name`, the on-disk one first, then the transformers one; empty for other names. For
// messages about a tensor missing from a checkpoint directory.
std::vector<std::string> hf_embedder_names(std::string_view gguf_name);

class HfCheckpoint : public WeightSource {
 public:
  // Opens `dir` (a path to a file inside it, e.g. config.json, is also accepted): reads config.json
  // with Gemma4Config::from_hf_config, maps the shards listed by model.safetensors.index.json or,
  // without an index, every *.safetensors file. Throws ModelFileError naming the file for a bad
  // config, a bad shard, a shard named by the index that is missing or lacks a listed tensor, or
  // two HF tensors that map to the same GGUF name. Unknown tensors are not an error (see unused()).
  static std::unique_ptr<HfCheckpoint> open(const std::string& dir);

  // Tensors carry GGUF names; `ne` is the HF shape reversed. Layouts are the HF ones, which differ
  // from the GGUF's in two multimodal tensors: the patch vectors are HWC (patch_layout_hwc()), and
  // `v.position_embd.weight` has ne = {hidden, 2, 1120} (GGUF: {hidden, 1120, 2}). No rope_freqs
  // tensor exists here; it is derived from the config.
  const TensorRef* find(const std::string& gguf_name) const override;
  const std::vector<TensorRef>& all() const override { return tensors_; }
  const Gemma4Config& config() const override { return config_; }
  const std::string& path() const override { return dir_; }
  // Messages name the HF tensor and its shard, the embedders' HF names, PyTorch-order shapes.
  std::string where(const std::string& gguf_name) const override;
  std::string missing_name(const std::string& gguf_name) const override;
  std::string shape_text(const std::vector<int64_t>& ne, bool with_word) const override;
  size_t file_bytes() const override;

  // The HF patch vector layout: (row, column, channel), channel innermost (spec §3.2).
  bool patch_layout_hwc() const { return true; }
  // HF names of tensors that map to no GGUF name, in file order.
  const std::vector<std::string>& unused() const { return unused_; }
  // "model.language_model.layers.3.self_attn.q_proj.weight in model-00001-of-00005.safetensors",
  // for messages about a tensor; empty when unknown.
  std::string origin(const std::string& gguf_name) const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  HfCheckpoint() = default;
  void add_file(std::unique_ptr<SafetensorsFile> f);

  std::string dir_;
  Gemma4Config config_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::vector<TensorRef> tensors_;
  struct Origin {
    std::string hf_name;
    size_t file;
  };
  std::vector<Origin> origins_;  // parallel to tensors_
  std::unordered_map<std::string, size_t> index_;
  std::vector<std::string> unused_;
};

}  // namespace rawflow
