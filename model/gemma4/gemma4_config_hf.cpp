// Gemma4Config from a Hugging Face config.json (spec §1). The released file is a `gemma4_unified`
// config whose decoder hyperparameters sit in `text_config`; text-only checkpoints carry a bare
// `gemma4_unified_text` config. transformers has encoded the full-attention geometry two ways
// (attributes `global_head_dim` / `num_global_key_value_heads`, or a `per_layer_config` map of
// per-layer overrides); both are read here.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "model/error.h"
#include "model/formats/json_file.h"
#include "model/gemma4/gemma4_config.h"

namespace rawflow {
nlohmann::json load_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelFileError(path + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for `1e506`
    throw ModelFileError(path + ": not valid JSON: " + e.what());
  }
}

namespace {

using nlohmann::json;

// Typed access to the keys of one JSON object; every message names the file and the dotted key.
class JsonObject {
 public:
  JsonObject(const std::string& file, const json& obj, std::string prefix)
      : file_(file), obj_(obj), prefix_(std::move(prefix)) {}

  std::string key(std::string_view k) const {
    return prefix_.empty() ? std::string(k) : prefix_ + "." + std::string(k);
  }
  [[noreturn]] void fail(std::string_view k, const std::string& what) const {
    throw ModelFileError(file_ + ": key `" + key(k) + "` " + what);
  }
  // The value, or nullptr when the key is absent or null.
  const json* find(std::string_view k) const {
    auto it = obj_.find(std::string(k));
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }
  bool has(std::string_view k) const { return find(k) != nullptr; }
  bool present(std::string_view k) const { return obj_.contains(std::string(k)); }
  const json& require(std::string_view k) const {
    const json* v = find(k);
    if (!v) fail(k, "is missing");
    return *v;
  }

  int64_t get_int(std::string_view k) const { return as_int(k, require(k)); }
  int64_t get_positive_int(std::string_view k) const {
    int64_t v = get_int(k);
    if (v <= 0) fail(k, "= " + std::to_string(v) + " must be positive");
    return v;
  }
  int64_t get_int_or(std::string_view k, int64_t def) const {
    const json* v = find(k);
    return v ? as_int(k, *v) : def;
  }
  double get_number(std::string_view k) const { return as_number(k, require(k)); }
  double get_number_or(std::string_view k, double def) const {
    const json* v = find(k);
    return v ? as_number(k, *v) : def;
  }
  bool get_bool_or(std::string_view k, bool def) const {
    const json* v = find(k);
    if (!v) return def;
    if (!v->is_boolean()) fail(k, "is not true/false");
    return v->get<bool>();
  }
  std::string get_string_or(std::string_view k, std::string def) const {
    const json* v = find(k);
    if (!v) return def;
    if (!v->is_string()) fail(k, "is not a string");
    return v->get<std::string>();
  }
  JsonObject object(std::string_view k) const {
    const json& v = require(k);
    if (!v.is_object()) fail(k, "is not a JSON object");
    return JsonObject(file_, v, key(k));
  }

  const std::string& file() const { return file_; }
  const json& raw() const { return obj_; }

 private:
  int64_t as_int(std::string_view k, const json& v) const {
    if (!v.is_number_integer()) fail(k, "is not an integer");
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      fail(k, "is out of range");
    return v.get<int64_t>();
  }
  double as_number(std::string_view k, const json& v) const {
    if (!v.is_number()) fail(k, "is not a number");
    return v.get<double>();
  }

  const std::string& file_;
  const json& obj_;
  std::string prefix_;
};

// Variants of the Gemma 4 family the 12B does not use (spec §2.11).
void refuse_unsupported_variants(const JsonObject& text) {
  if (int64_t n = text.get_int_or("hidden_size_per_layer_input", 0); n > 0)
    text.fail("hidden_size_per_layer_input",
              "= " + std::to_string(n) + ": per-layer embeddings (PLE) are not supported");
  if (text.get_bool_or("enable_moe_block", false))
    text.fail("enable_moe_block", "= true: mixture-of-experts blocks are not supported");
  if (int64_t n = text.get_int_or("num_experts", 0); n > 0)
    text.fail("num_experts",
              "= " + std::to_string(n) + ": mixture-of-experts blocks are not supported");
  if (int64_t n = text.get_int_or("num_kv_shared_layers", 0); n > 0)
    text.fail("num_kv_shared_layers",
              "= " + std::to_string(n) + ": KV sharing across layers is not supported");
  if (text.get_bool_or("use_double_wide_mlp", false))
    text.fail("use_double_wide_mlp", "= true: the double-wide MLP is not supported");
  if (text.get_bool_or("attention_bias", false))
    text.fail("attention_bias", "= true: attention biases are not supported");
  if (text.has("attn_logit_softcapping"))
    text.fail("attn_logit_softcapping", "is set: attention logit soft-capping is not supported");
  if (std::string act = text.get_string_or("hidden_activation", "gelu_pytorch_tanh");
      act != "gelu_pytorch_tanh")
    text.fail("hidden_activation", "= \"" + act + "\": only gelu_pytorch_tanh is supported");
  // "all" makes every layer bidirectional and halves the window (an encoder variant).
  if (std::string bidi = text.get_string_or("use_bidirectional_attention", "vision");
      bidi != "vision")
    text.fail("use_bidirectional_attention",
              "= \"" + bidi + "\": only \"vision\" (causal text) is supported");
}

std::vector<bool> read_layer_types(const JsonObject& text, int64_t n_layer) {
  const json& types = text.require("layer_types");
  if (!types.is_array() || static_cast<int64_t>(types.size()) != n_layer)
    text.fail("layer_types",
              "is not an array of num_hidden_layers = " + std::to_string(n_layer) + " layer types");
  std::vector<bool> sliding(static_cast<size_t>(n_layer));
  for (int64_t il = 0; il < n_layer; ++il) {
    const json& t = types[static_cast<size_t>(il)];
    if (t == "sliding_attention") {
      sliding[static_cast<size_t>(il)] = true;
    } else if (t == "full_attention") {
      sliding[static_cast<size_t>(il)] = false;
    } else {
      text.fail("layer_types", "[" + std::to_string(il) + "] = " + t.dump() +
                                   " is neither \"sliding_attention\" nor \"full_attention\"");
    }
  }
  // transformers forces the last layer to full attention (with a warning); do what it does.
  if (n_layer > 0) sliding.back() = false;
  return sliding;
}

struct AttentionShape {
  int64_t n_head = 0;
  int64_t n_kv_head = 0;
  int64_t head_dim = 0;
  bool operator==(const AttentionShape&) const = default;
};

std::string shape_text(const AttentionShape& s) {
  return "(num_attention_heads " + std::to_string(s.n_head) + ", num_key_value_heads " +
         std::to_string(s.n_kv_head) + ", head_dim " + std::to_string(s.head_dim) + ")";
}

// Per-layer attention geometry from a `per_layer_config` map {"5": {"head_dim": 512, ...}, ...}
// (or a list indexed by layer). Layers without an entry keep the base geometry. Overrides of any
// other attribute are accepted only when they repeat the base value.
std::vector<AttentionShape> per_layer_shapes(const JsonObject& text, const AttentionShape& base,
                                             int64_t n_layer) {
  std::vector<AttentionShape> shapes(static_cast<size_t>(n_layer), base);
  const json& plc = text.require("per_layer_config");
  auto apply = [&](int64_t il, const json& entry, const std::string& key) {
    if (entry.is_null()) return;
    if (!entry.is_object()) text.fail(key, "is not a JSON object");
    JsonObject e(text.file(), entry, text.key(key));
    AttentionShape& s = shapes[static_cast<size_t>(il)];
    for (const auto& [attr, value] : entry.items()) {
      if (attr == "head_dim") {
        s.head_dim = e.get_positive_int(attr);
      } else if (attr == "num_key_value_heads") {
        s.n_kv_head = e.get_positive_int(attr);
      } else if (attr == "num_attention_heads") {
        s.n_head = e.get_positive_int(attr);
      } else if (!value.is_null() && !(text.raw().contains(attr) && text.raw().at(attr) == value)) {
        e.fail(attr,
               "= " + value.dump() + ": a per-layer override of `" + attr + "` is not supported");
      }
    }
  };
  if (plc.is_object()) {
    for (const auto& [k, entry] : plc.items()) {
      int64_t il = -1;
      std::istringstream ks(k);
      ks >> il;
      if (!ks || !ks.eof() || il < 0 || il >= n_layer)
        text.fail("per_layer_config",
                  "has key \"" + k + "\", not a layer index below " + std::to_string(n_layer));
      apply(il, entry, "per_layer_config." + k);
    }
  } else if (plc.is_array()) {
    if (static_cast<int64_t>(plc.size()) != n_layer)
      text.fail("per_layer_config",
                "lists " + std::to_string(plc.size()) + " layers, not " + std::to_string(n_layer));
    for (int64_t il = 0; il < n_layer; ++il)
      apply(il, plc[static_cast<size_t>(il)], "per_layer_config." + std::to_string(il));
  } else {
    text.fail("per_layer_config", "is neither a JSON object nor a list");
  }
  return shapes;
}

// The older encoding: full layers take `global_head_dim`, and `num_global_key_value_heads` when
// `attention_k_eq_v` is set (as transformers does; otherwise they keep num_key_value_heads).
std::vector<AttentionShape> attribute_shapes(const JsonObject& text, const AttentionShape& base,
                                             const std::vector<bool>& sliding, bool k_eq_v) {
  if (!text.present("global_head_dim"))
    text.fail("global_head_dim", "is missing (and there is no per_layer_config)");
  AttentionShape full = base;
  full.head_dim =
      text.has("global_head_dim") ? text.get_positive_int("global_head_dim") : base.head_dim;
  if (k_eq_v && text.has("num_global_key_value_heads"))
    full.n_kv_head = text.get_positive_int("num_global_key_value_heads");
  std::vector<AttentionShape> shapes;
  for (bool s : sliding) shapes.push_back(s ? base : full);
  return shapes;
}

// All layers of one type must share one geometry: Gemma4Config keeps one per type.
AttentionShape common_shape(const JsonObject& text, const std::vector<AttentionShape>& shapes,
                            const std::vector<bool>& sliding, bool want_sliding,
                            const AttentionShape& fallback) {
  std::optional<size_t> first;
  for (size_t il = 0; il < shapes.size(); ++il) {
    if (sliding[il] != want_sliding) continue;
    if (!first) {
      first = il;
    } else if (!(shapes[il] == shapes[*first])) {
      text.fail("per_layer_config", std::string("gives ") + (want_sliding ? "sliding" : "full") +
                                        " layers different shapes: layer " +
                                        std::to_string(*first) + " " + shape_text(shapes[*first]) +
                                        ", layer " + std::to_string(il) + " " +
                                        shape_text(shapes[il]));
    }
  }
  return first ? shapes[*first] : fallback;
}

void check_heads(const JsonObject& text, const AttentionShape& s, int64_t n_head) {
  if (s.n_head != n_head)
    text.fail("per_layer_config", "changes num_attention_heads to " + std::to_string(s.n_head) +
                                      " on some layers; only a uniform head count is supported");
  if (n_head % s.n_kv_head != 0)
    text.fail("num_key_value_heads",
              "= " + std::to_string(s.n_kv_head) +
                  " does not divide num_attention_heads = " + std::to_string(n_head));
}

void read_attention_geometry(const JsonObject& text, Gemma4Config& cfg) {
  AttentionShape base{cfg.n_head, text.get_positive_int("num_key_value_heads"),
                      text.get_positive_int("head_dim")};
  cfg.full_k_eq_v = text.get_bool_or("attention_k_eq_v", false);
  // transformers pops the attributes in favour of per_layer_config when both are present.
  std::vector<AttentionShape> shapes =
      text.has("per_layer_config")
          ? per_layer_shapes(text, base, cfg.n_layer)
          : attribute_shapes(text, base, cfg.layer_sliding, cfg.full_k_eq_v);
  AttentionShape swa = common_shape(text, shapes, cfg.layer_sliding, true, base);
  AttentionShape full = common_shape(text, shapes, cfg.layer_sliding, false, base);
  check_heads(text, swa, cfg.n_head);
  check_heads(text, full, cfg.n_head);
  cfg.n_kv_head_swa = swa.n_kv_head;
  cfg.head_dim_swa = swa.head_dim;
  cfg.n_kv_head_full = full.n_kv_head;
  cfg.head_dim_full = full.head_dim;
}

// RoPE for one layer type; returns theta and the fraction of frequency pairs that rotate.
struct RopeParams {
  double theta;
  double partial_factor;
  bool proportional;
};

RopeParams read_rope(const JsonObject& rope_all, std::string_view layer_type) {
  JsonObject rope = rope_all.object(layer_type);
  RopeParams p;
  std::string type = rope.get_string_or("rope_type", "default");
  if (type != "default" && type != "proportional")
    rope.fail("rope_type",
              "= \"" + type + "\": only \"default\" and \"proportional\" are supported");
  p.proportional = type == "proportional";
  p.theta = rope.get_number("rope_theta");
  if (p.theta <= 0) rope.fail("rope_theta", "must be positive");
  p.partial_factor = rope.get_number_or("partial_rotary_factor", 1.0);
  if (!(p.partial_factor > 0 && p.partial_factor <= 1))
    rope.fail("partial_rotary_factor", "must lie in (0, 1]");
  if (double f = rope.get_number_or("factor", 1.0); f != 1.0)
    rope.fail("factor", "= " + std::to_string(f) + ": RoPE scaling is not supported");
  // With "default", a partial factor shrinks the exponent denominator as well (a different rotary
  // embedding from the proportional one Gemma4Config describes).
  if (!p.proportional && p.partial_factor != 1.0)
    rope.fail("partial_rotary_factor", "< 1 with rope_type \"default\" is not supported");
  return p;
}

void read_rope_parameters(const JsonObject& text, Gemma4Config& cfg) {
  JsonObject rope = text.object("rope_parameters");
  RopeParams swa = read_rope(rope, "sliding_attention");
  RopeParams full = read_rope(rope, "full_attention");
  // Gemma4Config rotates every pair of sliding layers; a proportional factor of 1 is the same.
  if (swa.partial_factor != 1.0)
    rope.fail("sliding_attention.partial_rotary_factor", "< 1 is not supported on sliding layers");
  cfg.rope_theta_swa = static_cast<float>(swa.theta);
  cfg.rope_theta_full = static_cast<float>(full.theta);
  // transformers: int(partial_rotary_factor * head_dim // 2), a floor division of a float.
  cfg.rope_full_rotated_pairs = static_cast<int64_t>(
      std::floor(full.partial_factor * static_cast<double>(cfg.head_dim_full) / 2.0));
}

// First id of an int or a list of ints.
std::optional<int32_t> read_token_id(const JsonObject& obj, std::string_view k) {
  const json* v = obj.find(k);
  if (!v) return std::nullopt;
  const json& id = v->is_array() && !v->empty() ? v->front() : *v;
  if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
    obj.fail(k, "is not a token id (or list of them)");
  return static_cast<int32_t>(id.get<int64_t>());
}

void read_token_ids(const JsonObject& root, const JsonObject& text, Gemma4Config& cfg) {
  for (const JsonObject* o : {&text, &root}) {
    if (auto id = read_token_id(*o, "bos_token_id")) {
      cfg.bos_id = *id;
      break;
    }
  }
  for (const JsonObject* o : {&text, &root}) {
    if (auto id = read_token_id(*o, "eos_token_id")) {
      cfg.eos_id = *id;
      break;
    }
  }
  // End-of-image / end-of-audio markers must never be sampled (spec §2.10); the generation
  // config, when present, overrides this with its `suppress_tokens`.
  cfg.suppress_ids.clear();
  for (std::string_view k : {"eoi_token_id", "eoa_token_index", "eoa_token_id"}) {
    if (&root.raw() == &text.raw()) break;  // a bare text config has no multimodal markers
    if (auto id = read_token_id(root, k)) cfg.suppress_ids.push_back(*id);
  }
}

// generation_config.json next to config.json: suppress_tokens and sampling defaults (spec §1.5).
void read_generation_config(const std::string& config_path, Gemma4Config& cfg) {
  std::filesystem::path path =
      std::filesystem::path(config_path).parent_path() / "generation_config.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return;
  const std::string file = path.string();
  json root = load_json_file(file);
  if (!root.is_object()) throw ModelFileError(file + ": not a JSON object");
  JsonObject gen(file, root, "");
  if (const json* sup = gen.find("suppress_tokens")) {
    if (!sup->is_array()) gen.fail("suppress_tokens", "is not a list of token ids");
    std::vector<int32_t> ids;
    for (const json& id : *sup) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
        gen.fail("suppress_tokens", "holds " + id.dump() + ", not a token id");
      ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
    cfg.suppress_ids = ids;
  }
  cfg.sampling_temp = static_cast<float>(gen.get_number_or("temperature", cfg.sampling_temp));
  cfg.sampling_top_p = static_cast<float>(gen.get_number_or("top_p", cfg.sampling_top_p));
  cfg.sampling_top_k = static_cast<int32_t>(gen.get_int_or("top_k", cfg.sampling_top_k));
}

void check_model_type(const JsonObject& root, bool has_text_config) {
  std::string type = root.get_string_or("model_type", "");
  if (type == "gemma4_unified" && !has_text_config) root.fail("text_config", "is missing");
  if (has_text_config) {
    if (type != "gemma4_unified")
      root.fail("model_type", "= \"" + type + "\": expected \"gemma4_unified\"");
  } else if (!type.empty() && type != "gemma4_unified_text") {
    root.fail("model_type",
              "= \"" + type + "\": expected \"gemma4_unified\" or \"gemma4_unified_text\"");
  }
}

}  // namespace

Gemma4Config Gemma4Config::from_hf_config(const std::string& config_json_path) {
  const std::string& file = config_json_path;
  json doc = load_json_file(file);
  if (!doc.is_object()) throw ModelFileError(file + ": not a JSON object");
  JsonObject root(file, doc, "");
  const bool multimodal = root.has("text_config");
  check_model_type(root, multimodal);
  JsonObject text = multimodal ? root.object("text_config") : JsonObject(file, doc, "");
  if (multimodal) {
    std::string t = text.get_string_or("model_type", "gemma4_unified_text");
    if (t != "gemma4_unified_text")
      text.fail("model_type", "= \"" + t + "\": expected \"gemma4_unified_text\"");
  }
  refuse_unsupported_variants(text);
  for (const JsonObject* o : {&text, &root})
    if (!o->get_bool_or("tie_word_embeddings", true))
      o->fail("tie_word_embeddings", "= false: a separate LM head is not supported");

  Gemma4Config cfg;
  cfg.source = file;
  cfg.vocab_size = text.get_positive_int("vocab_size");
  cfg.hidden = text.get_positive_int("hidden_size");
  cfg.ffn = text.get_positive_int("intermediate_size");
  cfg.n_layer = text.get_positive_int("num_hidden_layers");
  cfg.n_head = text.get_positive_int("num_attention_heads");
  cfg.sliding_window = text.get_positive_int("sliding_window");
  cfg.layer_sliding = read_layer_types(text, cfg.n_layer);
  read_attention_geometry(text, cfg);
  read_rope_parameters(text, cfg);
  cfg.rms_eps = static_cast<float>(text.get_number("rms_norm_eps"));
  if (!(cfg.rms_eps > 0)) text.fail("rms_norm_eps", "must be positive");
  // null means "no soft-cap"; 0 says the same to the decoder.
  if (!text.present("final_logit_softcapping")) text.fail("final_logit_softcapping", "is missing");
  cfg.final_logit_softcap = static_cast<float>(text.get_number_or("final_logit_softcapping", 0.0));
  cfg.context_length = text.get_positive_int("max_position_embeddings");
  read_token_ids(root, text, cfg);
  read_generation_config(file, cfg);
  return cfg;
}

}  // namespace rawflow
