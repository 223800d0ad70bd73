#pragma once
// The Gemma 4 "unified" multimodal projector ("mmproj"): the weights of the encoder-free vision
// embedder (gemma4uv, spec §3.3) and audio embedder (gemma4ua, §4), opened from
//  - llama.cpp's `clip` GGUF (§7.3–7.4): patch vectors in CHW order, position table ne [D, P, 2];
//  - a Hugging Face checkpoint directory (the text model's: config.json `vision_config` /
//    `audio_config` + *.safetensors, both naming variants of §7.4 / §10.4): HWC order, position
//    table [P, 2, D].
// Every tensor's name, shape and dtype (F32, F16 or BF16, §10.5) is checked when the file opens.
#include <cstdint>
#include <memory>
#include <string>

#include "model/formats/tensor_ref.h"
#include "model/gemma4/audio_frames.h"
#include "model/gemma4/vision_patches.h"

namespace rawflow {

class GgufTensors;
class HfCheckpoint;

// Entry `chw` of a CHW patch vector (ch·2304 + r·48 + c) is entry patch_hwc_index(chw) of the HWC
// one ((r·48 + c)·3 + ch): llama.cpp's converter stores patch_ln1 and patch_dense's columns as
// gguf[i] = hf[patch_hwc_index(i)] (spec §7.4).
inline int64_t patch_hwc_index(int64_t chw) {
  constexpr int64_t plane = int64_t{kPatchSide} * kPatchSide;
  const int64_t ch = chw / plane, r = (chw % plane) / kPatchSide, c = chw % kPatchSide;
  return (r * kPatchSide + c) * 3 + ch;
}

// How the two factorized position tables (x, y) are stored: 2·P rows of D elements.
enum class PositionTableLayout {
  AxisMajor,  // GGUF ne [D, P, 2]: rows 0…P−1 are the x table, P…2P−1 the y table
  PosMajor,   // HF [P, 2, D] (ne [D, 2, P]): row 2·pos + axis
};

// Tensors of the vision embedder, with their GGUF names (§7.4). Shapes in ggml order (ne[0]
// innermost); the 6912 patch entries are in the mmproj's patch_order().
struct Gemma4VisionWeights {
  TensorRef patch_norm1_w, patch_norm1_b;  // v.patch_norm.1.{weight,bias}   [6912]
  TensorRef patch_embd_w;                  // v.patch_embd.weight            [6912, vision_dim]
  TensorRef patch_embd_b;                  // v.patch_embd.bias              [vision_dim]
  TensorRef patch_norm2_w, patch_norm2_b;  // v.patch_norm.2.{weight,bias}   [vision_dim]
  TensorRef position_embd;                 // v.position_embd.weight: 2·P rows of vision_dim
  PositionTableLayout position_layout = PositionTableLayout::AxisMajor;
  int64_t position_rows = 0;               // P: positions per axis (1120 on the 12B)
  TensorRef patch_norm3_w, patch_norm3_b;  // v.patch_norm.3.{weight,bias} (HF pos_norm)
  TensorRef input_projection;              // mm.input_projection.weight     [vision_dim, out_dim]
  float rms_eps = 1e-6f;                   // the weightless pre-projection RMSNorm (§10.6)

  // Row of `position_embd` holding the table entry of `pos` on `axis` (0 = x, 1 = y).
  int64_t position_row(int axis, int64_t pos) const {
    return position_layout == PositionTableLayout::AxisMajor ? axis * position_rows + pos
                                                             : pos * 2 + axis;
  }
};

struct Gemma4AudioWeights {
  TensorRef input_projection;  // mm.a.input_projection.weight [640, out_dim]
  float rms_eps = 1e-6f;       // fixed, as llama.cpp does (§10.6)
};

class Gemma4Mmproj {
 public:
  // The three LayerNorms of the vision embedder are PyTorch's default, whatever the file says.
  static constexpr float kLayerNormEps = 1e-5f;

  // `path`: a GGUF mmproj file (recognised by its magic, whatever its name), or a Hugging Face
  // checkpoint directory (or a file inside it).
  // Throws ModelFileError naming the file and the key or tensor at fault (with expected vs found
  // shape or dtype), and refuses projector types other than gemma4uv / gemma4ua.
  static std::unique_ptr<Gemma4Mmproj> open(const std::string& path);
  ~Gemma4Mmproj();
  Gemma4Mmproj(const Gemma4Mmproj&) = delete;
  Gemma4Mmproj& operator=(const Gemma4Mmproj&) = delete;

  const std::string& path() const { return path_; }
  bool is_gguf() const { return gguf_ != nullptr; }
  // The order of the 6912 values of a tile the vision weights expect: CHW for GGUF, HWC for HF.
  PatchOrder patch_order() const { return is_gguf() ? PatchOrder::CHW : PatchOrder::HWC; }
  bool has_vision() const { return has_vision_; }
  bool has_audio() const { return has_audio_; }
  // Width of every soft token: the text decoder's hidden size (3840 on the 12B).
  int64_t out_dim() const { return out_dim_; }
  // Width of the patch embedding before the projection (`mm_embed_dim`); 0 without vision.
  int64_t vision_dim() const { return vision_dim_; }
  // Positions per axis of the vision position table (1120 on the 12B); 0 without vision.
  int64_t position_rows() const { return vision_.position_rows; }
  float vision_rms_eps() const { return vision_.rms_eps; }
  float audio_rms_eps() const { return audio_.rms_eps; }

  // Throw EngineError when the file has no such embedder.
  const Gemma4VisionWeights& vision() const;
  const Gemma4AudioWeights& audio() const;

 private:
  Gemma4Mmproj();
  void open_gguf(const std::string& path);
  void open_hf(const std::string& path);

  std::string path_;
  std::unique_ptr<GgufTensors> gguf_;
  std::unique_ptr<HfCheckpoint> hf_;
  bool has_vision_ = false;
  bool has_audio_ = false;
  int64_t out_dim_ = 0;
  int64_t vision_dim_ = 0;
  Gemma4VisionWeights vision_;
  Gemma4AudioWeights audio_;
};

}  // namespace rawflow
