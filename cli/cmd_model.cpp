// `rawflow model synth`: writes random-weight Gemma 4 test models (model/synth/synth.h).
// `rawflow model convert`: a Hugging Face checkpoint directory into GGUF (model/formats/convert.h).
#include <cstdio>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "model/error.h"
#include "model/formats/convert.h"
#include "model/formats/dtype.h"
#include "model/synth/synth.h"

namespace rawflow::cli {
namespace {

constexpr const char* kSynthSynopsis =
    "--preset P [--layers N] [--dtype D] [--embd-dtype D] [--seed S] "
    "[--vocab tokenizer.json|model.gguf] [--format gguf|safetensors] [--mmproj] "
    "[--mmproj-out PATH] [--mmproj-dtype D] --out PATH";
constexpr const char* kConvertSynopsis =
    "HF_DIR --out model.gguf [--mmproj-out mmproj.gguf] [--dtype D] [--embd-dtype D] "
    "[--mmproj-dtype f32|f16|bf16]";
std::string synth_usage() { return std::string("usage: rawflow model synth ") + kSynthSynopsis; }
std::string convert_usage() {
  return std::string("usage: rawflow model convert ") + kConvertSynopsis;
}
std::string model_usage() {
  return synth_usage() + "\n       rawflow model convert " + kConvertSynopsis;
}

std::string join_presets() {
  std::string s;
  for (const auto& n : synth_preset_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

DType parse_dtype(const Args& a, const std::string& opt, const std::string& cmd = "synth") {
  const std::string v = a.get(opt);
  const auto d = dtype_from_name(v);
  if (!d)
    throw UsageError("rawflow model " + cmd + ": unknown " + opt + " `" + v +
                     "` (valid: f32, f16, bf16, q8_0, q4_0, q4_K, q5_K, q6_K)");
  return *d;
}

DType parse_mmproj_dtype(const Args& a, const std::string& cmd) {
  const DType d = parse_dtype(a, "--mmproj-dtype", cmd);
  if (d != DType::F32 && d != DType::F16 && d != DType::BF16)
    throw UsageError("rawflow model " + cmd + ": --mmproj-dtype must be f32, f16 or bf16, not " +
                     a.get("--mmproj-dtype"));
  return d;
}

std::string human_bytes(size_t b) {
  char buf[32];
  if (b >= (size_t{1} << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(b) / (1 << 30));
  else
    std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(b) / (1 << 20));
  return buf;
}

int cmd_synth(const CommandArgs& argv) {
  Args a("model synth", kSynthSynopsis);
  a.option("--preset", "", "model shape: " + join_presets(), "tiny")
      .option("--layers", "",
              "number of layers instead of the preset's, in the 12B's pattern (5 sliding, 1 "
              "full, repeated; 48 = the 12B's depth)")
      .option("--dtype", "", "matrix dtype: f32 f16 bf16 q8_0 q4_0 q4_K q5_K q6_K", "f32")
      .option("--embd-dtype", "", "token_embd dtype (default: --dtype; q6_K when --dtype is q4_0)")
      .option("--seed", "", "weights are a pure function of (seed, tensor name)", "1")
      .option("--vocab", "",
              "real vocabulary (tokenizer.json or .gguf) instead of the synthetic one")
      .option("--format", "", "gguf, or safetensors (--out is then a directory)", "gguf")
      .option("--out", "-o", "output file (gguf) or directory (safetensors)")
      .flag("--mmproj",
            "also write the matching vision + audio embedders (gguf: a separate clip file; "
            "safetensors: into the model directory)")
      .option("--mmproj-out", "",
              "gguf: path of the clip file (implies --mmproj; default mmproj-<out file name>)")
      .option("--mmproj-dtype", "",
              "f32 f16 bf16: gguf: position table + projections (patch_embd and 1-D tensors "
              "stay f32); safetensors: every embedder tensor",
              "f32");
  if (!a.parse_or_help(argv)) return 0;

  SynthOptions o;
  o.preset = a.get("--preset");
  try {
    synth_preset(o.preset);
  } catch (const EngineError& e) {
    throw UsageError(std::string(e.what()) + "\n" + synth_usage());
  }
  if (a.has("--layers")) {
    o.layers = a.get_int("--layers");
    try {
      synth_layer_pattern(o.layers);
    } catch (const EngineError& e) {
      throw UsageError(std::string(e.what()) + "\n" + synth_usage());
    }
  }
  o.dtype = parse_dtype(a, "--dtype");
  if (a.has("--embd-dtype")) o.embd_dtype = parse_dtype(a, "--embd-dtype");
  const long long seed = a.get_int("--seed");
  if (seed < 0) throw UsageError("rawflow model synth: --seed must be >= 0");
  o.seed = static_cast<uint64_t>(seed);
  if (auto v = a.get_opt("--vocab")) o.vocab_path = *v;
  o.format = a.get("--format");
  if (o.format != "gguf" && o.format != "safetensors")
    throw UsageError("rawflow model synth: unknown --format `" + o.format +
                     "` (valid: gguf, safetensors)");
  if (o.format == "safetensors")
    for (DType d : {o.dtype, o.embd_dtype.value_or(o.dtype)})
      if (d != DType::F32 && d != DType::F16 && d != DType::BF16)
        throw UsageError("rawflow model synth: safetensors holds f32, f16 or bf16, not " +
                         std::string(dtype_name(d)));
  if (!a.has("--out"))
    throw UsageError(std::string("rawflow model synth: --out is required\n") + synth_usage());
  o.out = a.get("--out");
  o.mmproj = a.flag_set("--mmproj") || a.has("--mmproj-out");
  if (auto v = a.get_opt("--mmproj-out")) {
    if (o.format == "safetensors")
      throw UsageError(
          "rawflow model synth: --mmproj-out is for gguf; with --format safetensors use "
          "--mmproj (the embedders go into the model directory)");
    o.mmproj_out = *v;
  }
  o.mmproj_dtype = parse_mmproj_dtype(a, "synth");

  const SynthReport r = synth_model(o);
  for (const auto& n : r.notes) std::fprintf(stderr, "note: %s\n", n.c_str());
  for (const auto& f : r.files) std::printf("wrote %s\n", f.c_str());
  const std::string embd =
      r.embd_dtype != o.dtype ? " (token_embd " + std::string(dtype_name(r.embd_dtype)) + ")" : "";
  std::printf(
      "preset %s, seed %llu, %s%s, %s: %zu tensors, %lld params, %s of tensor data, "
      "vocab %lld\n",
      o.preset.c_str(), static_cast<unsigned long long>(o.seed),
      std::string(dtype_name(o.dtype)).c_str(), embd.c_str(), o.format.c_str(), r.tensor_count,
      static_cast<long long>(r.params), human_bytes(r.bytes).c_str(),
      static_cast<long long>(r.vocab_size));
  if (o.mmproj)
    std::printf("embedders (gemma4uv + gemma4ua), %s: %zu tensors, %lld params, %s\n",
                std::string(dtype_name(o.mmproj_dtype)).c_str(), r.mmproj_tensor_count,
                static_cast<long long>(r.mmproj_params), human_bytes(r.mmproj_bytes).c_str());
  return 0;
}

int cmd_convert(const CommandArgs& argv) {
  Args a("model convert", kConvertSynopsis);
  a.positional("HF_DIR", "Hugging Face checkpoint: config.json + *.safetensors + tokenizer.json")
      .option("--out", "-o", "text GGUF to write (general.architecture gemma4)")
      .option("--mmproj-out", "",
              "clip GGUF of the vision + audio embedders, when the checkpoint has them (default "
              "mmproj-<out file name>)")
      .option("--dtype", "", "matrix dtype: f32 f16 bf16 q8_0 q4_0 q4_K q5_K q6_K", "f32")
      .option("--embd-dtype", "", "token_embd dtype (default: --dtype; q6_K when --dtype is q4_0)")
      .option("--mmproj-dtype", "",
              "f32 f16 bf16: position table + projections (patch_embd and 1-D tensors stay f32)",
              "f32");
  if (!a.parse_or_help(argv)) return 0;
  if (a.positionals().size() != 1)
    throw UsageError("rawflow model convert: one checkpoint directory is required\n" +
                     convert_usage());
  if (!a.has("--out"))
    throw UsageError("rawflow model convert: --out is required\n" + convert_usage());

  ConvertOptions o;
  o.hf_dir = a.positionals()[0];
  o.out = a.get("--out");
  if (auto v = a.get_opt("--mmproj-out")) o.mmproj_out = *v;
  o.dtype = parse_dtype(a, "--dtype", "convert");
  if (a.has("--embd-dtype")) o.embd_dtype = parse_dtype(a, "--embd-dtype", "convert");
  o.mmproj_dtype = parse_mmproj_dtype(a, "convert");

  const ConvertReport r = convert_hf_checkpoint(o);
  for (const auto& n : r.notes) std::fprintf(stderr, "note: %s\n", n.c_str());
  for (const auto& f : r.files) std::printf("wrote %s\n", f.c_str());
  const std::string embd =
      r.embd_dtype != o.dtype ? " (token_embd " + std::string(dtype_name(r.embd_dtype)) + ")" : "";
  std::printf("text model, %s%s: %zu tensors, %lld params, %s of tensor data, vocab %lld\n",
              std::string(dtype_name(o.dtype)).c_str(), embd.c_str(), r.text.tensor_count,
              static_cast<long long>(r.text.params), human_bytes(r.text.bytes).c_str(),
              static_cast<long long>(r.vocab_size));
  if (r.vision || r.audio)
    std::printf("embedders (%s), %s: %zu tensors, %lld params, %s\n",
                r.vision && r.audio ? "gemma4uv + gemma4ua"
                : r.vision          ? "gemma4uv"
                                    : "gemma4ua",
                std::string(dtype_name(o.mmproj_dtype)).c_str(), r.mmproj.tensor_count,
                static_cast<long long>(r.mmproj.params), human_bytes(r.mmproj.bytes).c_str());
  else
    std::printf("no vision or audio embedder in the checkpoint: no mmproj written\n");
  return 0;
}

}  // namespace

int cmd_model(const CommandArgs& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::fprintf(args.empty() ? stderr : stdout, "%s\n", model_usage().c_str());
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "synth") return cmd_synth(CommandArgs(args.begin() + 1, args.end()));
  if (args[0] == "convert") return cmd_convert(CommandArgs(args.begin() + 1, args.end()));
  throw UsageError("rawflow model: unknown subcommand `" + args[0] + "`\n" + model_usage());
}

}  // namespace rawflow::cli
