#include "model/formats/convert.h"

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "model/error.h"
#include "model/formats/hf_checkpoint.h"
#include "model/formats/json_file.h"
#include "model/formats/quant.h"
#include "model/gemma4/gemma4_mmproj.h"
#include "model/tokenizer/vocab.h"

namespace rawflow {
namespace {

namespace fs = std::filesystem;

constexpr const char* kWho = "model convert";  // prefix of error messages

std::string shape_text(const std::vector<int64_t>& ne) {  // torch order, as the file states it
  std::string s = "[";
  for (auto it = ne.rbegin(); it != ne.rend(); ++it)
    s += (it == ne.rbegin() ? "" : ", ") + std::to_string(*it);
  return s + "]";
}

// The directory's name: llama.cpp's converter names the model after it too.
std::string checkpoint_name(const fs::path& dir) {
  fs::path p = fs::absolute(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  const std::string n = p.filename().string();
  return n.empty() ? "gemma4" : n;
}

// Whether the checkpoint holds embedders: config.json declares them, or it has their tensors.
bool has_embedders(const HfCheckpoint& ck, const nlohmann::json& cfg) {
  for (const char* k : {"vision_config", "audio_config"})
    if (cfg.is_object() && cfg.contains(k) && !cfg[k].is_null()) return true;
  for (const TensorRef& t : ck.all())
    if (t.name.starts_with("v.") || t.name.starts_with("mm.")) return true;
  return false;
}

// The tokenizer's vocabulary with exactly `n` tokens: a shorter one is padded as llama.cpp's
// converter pads SentencePiece vocabularies ([PAD1], [PAD2], ... UNUSED, score -1000).
void fit_vocab(Vocab& v, int64_t n, const std::string& tokenizer_path, const std::string& config,
               std::vector<std::string>& notes) {
  const int64_t have = static_cast<int64_t>(v.size());
  if (have > n)
    throw ModelFileError(tokenizer_path + ": " + std::to_string(have) + " tokens, more than the " +
                         std::to_string(n) + " rows of the embedding (vocab_size in " + config +
                         ")");
  for (int64_t i = 1; have + i <= n; ++i) {
    v.tokens.push_back("[PAD" + std::to_string(i) + "]");
    v.scores.push_back(-1000.0f);
    v.types.push_back(TokenType::Unused);
  }
  if (have < n)
    notes.push_back(tokenizer_path + " has " + std::to_string(have) + " tokens for " +
                    std::to_string(n) + " embedding rows: padded with " + std::to_string(n - have) +
                    " unused [PADi] tokens");
}

// Every planned tensor (except the generated rope_freqs) is in the checkpoint with its shape.
void check_tensors(const HfCheckpoint& ck, const std::vector<PlannedTensor>& plan) {
  for (const auto& t : plan) {
    if (t.role == TensorRole::RopeFreqs) continue;
    const TensorRef* ref = ck.find(t.gguf_name);
    if (!ref)
      throw ModelFileError(ck.path() + ": tensor `" + t.hf_name + "` (GGUF `" + t.gguf_name +
                           "`) is missing from the checkpoint's *.safetensors");
    if (ref->ne != t.ne)
      throw ModelFileError(ck.origin(t.gguf_name) + ": shape " + shape_text(ref->ne) +
                           ", expected " + shape_text(t.ne) + " from config.json");
  }
}

// F32 rows of a checkpoint tensor (BF16, F16 or F32 in the file), read from the mapping.
RowFillerSource checkpoint_source(const HfCheckpoint& ck) {
  return [&ck](const PlannedTensor& t) -> RowFiller {
    const TensorRef* ref = ck.find(t.gguf_name);
    if (!ref) throw ModelFileError(ck.path() + ": tensor `" + t.hf_name + "` is missing");
    const int64_t row = t.ne[0];
    const size_t row_bytes = dtype_row_bytes(ref->dtype, row);
    return [ref, row, row_bytes](int64_t first, int64_t rows, float* out) {
      const auto* base = static_cast<const uint8_t*>(ref->data);
      for (int64_t r = 0; r < rows; ++r)
        dequantize_row(ref->dtype, base + static_cast<size_t>(first + r) * row_bytes, out + r * row,
                       row);
    };
  };
}

}  // namespace

Gemma4Geometry geometry_from_config(const Gemma4Config& cfg) {
  Gemma4Geometry g;
  g.hidden = cfg.hidden;
  g.ffn = cfg.ffn;
  g.n_head = cfg.n_head;
  g.n_kv_head_swa = cfg.n_kv_head_swa;
  g.n_kv_head_full = cfg.n_kv_head_full;
  g.head_dim_swa = cfg.head_dim_swa;
  g.head_dim_full = cfg.head_dim_full;
  g.full_k_eq_v = cfg.full_k_eq_v;
  g.layer_sliding = cfg.layer_sliding;
  g.sliding_window = cfg.sliding_window;
  g.rope_theta_swa = cfg.rope_theta_swa;
  g.rope_theta_full = cfg.rope_theta_full;
  g.rope_full_rotated_pairs = cfg.rope_full_rotated_pairs;
  g.context_length = cfg.context_length;
  g.rms_eps = cfg.rms_eps;
  g.final_logit_softcap = cfg.final_logit_softcap;
  g.sampling_temp = cfg.sampling_temp;
  g.sampling_top_p = cfg.sampling_top_p;
  g.sampling_top_k = cfg.sampling_top_k;
  g.has_vision = false;
  g.has_audio = false;
  return g;
}

ConvertReport convert_hf_checkpoint(const ConvertOptions& o) {
  if (o.out.empty()) throw EngineError(std::string(kWho) + ": no output path");
  check_mmproj_dtype(o.mmproj_dtype, kWho);
  const fs::path dir(o.hf_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw ModelFileError(o.hf_dir +
                         ": not a directory (a Hugging Face checkpoint: config.json, "
                         "*.safetensors, tokenizer.json)");
  const std::string config_path = (dir / "config.json").string();
  const std::string tokenizer_path = (dir / "tokenizer.json").string();
  for (const std::string& f : {config_path, tokenizer_path})
    if (!fs::is_regular_file(f, ec))
      throw ModelFileError(f + ": no such file (a Hugging Face checkpoint directory holds " +
                           "config.json, *.safetensors and tokenizer.json)");

  ConvertReport r;
  const auto ck = HfCheckpoint::open(o.hf_dir);
  Gemma4Geometry g = geometry_from_config(ck->config());

  Vocab vocab = Vocab::from_tokenizer_json(tokenizer_path);
  std::string missing;
  for (const auto& s : missing_gemma4_specials(vocab)) missing += (missing.empty() ? "" : " ") + s;
  if (!missing.empty()) r.notes.push_back(tokenizer_path + " lacks Gemma 4 specials: " + missing);
  fit_vocab(vocab, ck->config().vocab_size, tokenizer_path, config_path, r.notes);
  r.vocab_size = static_cast<int64_t>(vocab.size());

  // The embedders' dims and which are present, as the engine's own mmproj reader sees them (it
  // also checks the config's vision_config / audio_config and every embedder tensor).
  std::unique_ptr<Gemma4Mmproj> mm;
  if (has_embedders(*ck, load_json_file(config_path))) {
    mm = Gemma4Mmproj::open(ck->path());
    g.has_vision = mm->has_vision();
    g.has_audio = mm->has_audio();
    if (g.has_vision) {
      g.vision_dim = mm->vision_dim();
      g.position_rows = mm->position_rows();
      g.vision_rms_eps = mm->vision_rms_eps();
    }
  } else if (!o.mmproj_out.empty()) {
    throw EngineError(std::string(kWho) + ": " + o.hf_dir +
                      " holds no vision or audio embedder: there is no mmproj to write");
  }
  r.vision = g.has_vision;
  r.audio = g.has_audio;

  const auto text_plan = gguf_text_plan(g, r.vocab_size);
  const auto mmproj_plan = mm ? gguf_mmproj_plan(g) : std::vector<PlannedTensor>{};
  check_tensors(*ck, text_plan);
  check_tensors(*ck, mmproj_plan);
  std::set<std::string> planned;
  for (const auto* plan : {&text_plan, &mmproj_plan})
    for (const auto& t : *plan) planned.insert(t.gguf_name);
  std::vector<std::string> skipped(ck->unused());
  for (const TensorRef& t : ck->all())
    if (!planned.count(t.name)) skipped.push_back(ck->origin(t.name));
  if (!skipped.empty()) {
    std::string list;
    for (size_t i = 0; i < skipped.size() && i < 5; ++i) list += (i ? ", " : "") + skipped[i];
    r.notes.push_back(std::to_string(skipped.size()) + " checkpoint tensor(s) are not part of " +
                      "the layout and were left out: " + list +
                      (skipped.size() > 5 ? ", ..." : ""));
  }

  GgufExportOptions eo;
  eo.who = kWho;
  eo.general_name = checkpoint_name(dir);
  eo.dtype = o.dtype;
  eo.embd_dtype = o.embd_dtype.value_or(default_embd_dtype(o.dtype));
  eo.mmproj_dtype = o.mmproj_dtype;
  r.embd_dtype = eo.embd_dtype;
  const RowFillerSource source = checkpoint_source(*ck);
  r.text = write_text_gguf(o.out, g, vocab, eo, source);
  r.files.push_back(o.out);
  if (mm) {
    const std::string path = o.mmproj_out.empty() ? default_mmproj_path(o.out) : o.mmproj_out;
    r.mmproj = write_mmproj_gguf(path, g, eo, source);
    r.files.push_back(path);
  }
  return r;
}

}  // namespace rawflow
