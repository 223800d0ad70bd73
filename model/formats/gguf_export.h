#pragma once
// llama.cpp's released layout of a Gemma 4 unified model, written from F32 values: the text GGUF
// (spec §7.1, §7.2) and the `clip` mmproj GGUF of the vision + audio embedders (§7.3, §7.4,
// §10.5, §10.8). One implementation for `rawflow model synth` (random values) and `rawflow model
// convert` (values read from a Hugging Face checkpoint): the tensor plan (GGUF name, HF name,
// shape), the metadata, the dtype rules, the mmproj's HWC→CHW and position-table rearrangement,
// and the encoders live here and nowhere else.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/formats/dtype.h"
#include "model/tokenizer/vocab.h"

namespace rawflow {

class GgufWriter;

// Every dimension and stored constant of a model. Layer geometry follows the 12B (spec §1.1):
// sliding layers n_head × head_dim_swa with n_kv_head_swa KV heads; full layers n_head ×
// head_dim_full with n_kv_head_full KV heads (K = V, no attn_v, when full_k_eq_v) and
// proportional RoPE. Defaults are the released 12B's constants.
struct Gemma4Geometry {
  int64_t hidden = 0;
  int64_t ffn = 0;
  int64_t n_head = 0;
  int64_t n_kv_head_swa = 0;
  int64_t n_kv_head_full = 0;
  int64_t head_dim_swa = 0;
  int64_t head_dim_full = 0;
  bool full_k_eq_v = true;
  std::vector<bool> layer_sliding;  // one entry per layer, true = sliding attention
  int64_t sliding_window = 0;
  float rope_theta_swa = 1e4f;
  float rope_theta_full = 1e6f;
  int64_t rope_full_rotated_pairs = 0;  // int(0.25 · head_dim_full / 2)
  int64_t context_length = 0;
  float rms_eps = 1e-6f;
  float final_logit_softcap = 30.0f;
  float sampling_temp = 1.0f;  // general.sampling.* (spec §1.5)
  float sampling_top_p = 0.95f;
  int32_t sampling_top_k = 64;
  // Vision embedder: patch embedding width (`mm_embed_dim`; the hidden size on the 12B), positions
  // per axis of the position table (1120, as released) and the pre-projection RMSNorm eps.
  int64_t vision_dim = 0;
  int64_t position_rows = 1120;
  float vision_rms_eps = 1e-6f;
  // Which embedders the mmproj holds.
  bool has_vision = true;
  bool has_audio = true;

  int64_t n_layer() const { return static_cast<int64_t>(layer_sliding.size()); }
};

// What a tensor is; synth draws its random values by role.
enum class TensorRole {
  Embedding,    // token_embd
  Matrix,       // attention and MLP projections, patch_dense
  Norm,         // attn_norm, ffn_norm, output_norm, attn_q_norm, the embedder LayerNorm weights
  KNorm,        // attn_k_norm: sets the attention score scale (attention scale is 1.0)
  PostNorm,     // post_attention_norm, post_ffw_norm: block output size vs the residual
  OutputScale,  // layer_output_scale
  RopeFreqs,    // rope_freqs: generated from the geometry, in no HF checkpoint
  // Multimodal embedders:
  Bias,                 // LayerNorm biases and the patch_dense bias
  PositionTable,        // the factorized x/y position table
  SoftTokenProjection,  // embedding_projection (vision and audio): sets the soft-token scale
};

struct PlannedTensor {
  std::string gguf_name;
  std::string hf_name;      // Google's on-disk name; empty for rope_freqs
  std::vector<int64_t> ne;  // the HF tensor's shape reversed (ggml order: matrices {in, out})
  TensorRole role = TensorRole::Matrix;
  bool is_matrix() const { return role == TensorRole::Embedding || role == TensorRole::Matrix; }
  int64_t nelements() const;
};

// The text model's tensors in file order (spec §7.2 scaled to the geometry's layers:
// 3 + 14 per sliding layer + 13 per full layer, + 1 per full layer without K = V).
std::vector<PlannedTensor> gguf_text_plan(const Gemma4Geometry& g, int64_t vocab_size);

// The vision and audio embedder tensors (spec §3.3, §4, §7.4) of the embedders the geometry has.
// `ne` is the HF layout reversed (patch vectors HWC, position table ne {D, 2, P}); the GGUF stores
// patch_ln1 and patch_dense's columns permuted to CHW and the position table as ne {D, P, 2}
// (mmproj_gguf_layout).
std::vector<PlannedTensor> gguf_mmproj_plan(const Gemma4Geometry& g);
// `hf_values` (in the HF layout of `t`) rearranged into the GGUF layout, and the GGUF shape.
std::vector<float> mmproj_gguf_layout(const PlannedTensor& t, const std::vector<float>& hf_values,
                                      std::vector<int64_t>* gguf_ne = nullptr);

// Element i of rope_freqs: proportional RoPE through llama.cpp's frequency divisors (spec §2.6):
// 1 rotates, 1e30 makes the angle 0.
float rope_freqs_value(const Gemma4Geometry& g, int64_t i);

// Dtype rules of the released files. token_embd follows the matrices, except next to Q4_0 matrices
// where Google's QAT file has Q6_K (spec §7.5).
DType default_embd_dtype(DType matrix);
// Text GGUF: matrices `matrix`, token_embd `embd`, norms, scalars and rope_freqs F32.
DType text_tensor_dtype(const PlannedTensor& t, DType matrix, DType embd);
// mmproj GGUF (llama.cpp's converter, §10.5): patch_embd and 1-D tensors F32, the rest `dtype`.
DType mmproj_tensor_dtype(const PlannedTensor& t, DType dtype);
// llama.cpp's LLAMA_FTYPE for a file whose matrices are all `t` (general.file_type).
uint32_t llama_ftype(DType t);
// Throw EngineError "<who>: ..." when `t`'s rows are not whole blocks of `dtype`, or when `dtype`
// is not a type the embedders are stored in (f32, f16, bf16).
void check_dtype_fits(const PlannedTensor& t, DType dtype, const std::string& who);
void check_mmproj_dtype(DType dtype, const std::string& who);

// `mmproj-<file name>` next to the text model `out` (llama.cpp's naming).
std::string default_mmproj_path(const std::string& out);

// Gemma 4 specials (spec §1.4, §6) a vocabulary lacks, in a fixed order.
std::vector<std::string> missing_gemma4_specials(const Vocab& v);

// Metadata of the text GGUF (`gemma4.*`, `general.*`, the vocabulary's `tokenizer.ggml.*`) and of
// the mmproj (every key llama.cpp's clip loader requires for the embedders present).
void write_text_metadata(GgufWriter& w, const Gemma4Geometry& g, const Vocab& v, DType dtype,
                         const std::string& general_name);
void write_mmproj_metadata(GgufWriter& w, const Gemma4Geometry& g, DType dtype,
                           const std::string& general_name);

// The values of one tensor in its HF layout: fills rows [first_row, first_row + rows) (rows of
// ne[0] elements) into `out`. Called from several threads at once on disjoint rows.
using RowFiller = std::function<void(int64_t first_row, int64_t rows, float* out)>;
// The RowFiller of a planned tensor (asked once per tensor; never for rope_freqs).
using RowFillerSource = std::function<RowFiller(const PlannedTensor& t)>;

// A tensor's bytes in `dtype` (ggml block layout), filled and encoded row by row on a few threads,
// so that a 1 G-element embedding never exists as a float array.
std::vector<uint8_t> encode_rows(const PlannedTensor& t, DType dtype, const RowFiller& fill);
// All of a tensor's F32 values (a few threads for large ones).
std::vector<float> tensor_values(const PlannedTensor& t, const RowFiller& fill);
// F32 values stored as f32, f16 or bf16 (round to nearest even).
std::vector<uint8_t> encode_values(const std::vector<float>& v, DType dtype);

struct GgufExportOptions {
  std::string who;           // prefix of error messages: "model synth", "model convert"
  std::string general_name;  // of the text file; the mmproj's is this + "-mmproj"
  DType dtype = DType::F32;  // matrices
  DType embd_dtype = DType::F32;
  DType mmproj_dtype = DType::F32;  // position table and projections (f32, f16 or bf16)
};

struct GgufExportStats {
  size_t tensor_count = 0;
  size_t bytes = 0;    // of the tensor data
  int64_t params = 0;  // elements of all tensors except the generated rope_freqs
};

// Writes the text GGUF to `path`: gguf_text_plan's tensors in their dtypes, values from `source`
// (rope_freqs from the geometry). Throws EngineError when a dtype does not fit a tensor (before
// writing anything), ModelFileError for I/O.
GgufExportStats write_text_gguf(const std::string& path, const Gemma4Geometry& g, const Vocab& v,
                                const GgufExportOptions& o, const RowFillerSource& source);
// Writes the `clip` mmproj GGUF to `path`: gguf_mmproj_plan's tensors, rearranged into the GGUF
// layout.
GgufExportStats write_mmproj_gguf(const std::string& path, const Gemma4Geometry& g,
                                  const GgufExportOptions& o, const RowFillerSource& source);

}  // namespace rawflow
