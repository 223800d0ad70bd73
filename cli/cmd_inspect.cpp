// rawflow inspect: what a model file holds — metadata, tensors, dtypes, sizes, parameter count —
// or a media file's streams, or the soft tokens a projector makes of an image or audio file.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/multimodal.h"
#include "media/decode.h"
#include "media/embed.h"
#include "media/image_budget.h"
#include "media/resize.h"
#include "model/formats/gguf.h"
#include "model/model_loader.h"

namespace rawflow::cli {
namespace {

std::string shape(const std::vector<int64_t>& ne) {
  std::string s;
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? " x " : "") + std::to_string(ne[i]);
  return s;
}

std::string value_str(const GgufValue& v) {
  switch (v.type) {
    case GgufType::STRING:
      return "\"" + (v.s.size() > 80 ? v.s.substr(0, 77) + "..." : v.s) + "\"";
    case GgufType::FLOAT32:
    case GgufType::FLOAT64: {
      char b[64];
      std::snprintf(b, sizeof b, "%g", v.f);
      return b;
    }
    case GgufType::BOOL:
      return v.i ? "true" : "false";
    case GgufType::ARRAY: {
      std::string s =
          std::string(gguf_type_name(v.array_type)) + "[" + std::to_string(v.array_size()) + "] {";
      const size_t show = std::min<size_t>(v.array_size(), 8);
      for (size_t i = 0; i < show; ++i) {
        if (i) s += ", ";
        if (!v.strings.empty())
          s += "\"" + v.strings[i] + "\"";
        else if (!v.floats.empty())
          s += std::to_string(v.floats[i]);
        else
          s += std::to_string(v.ints[i]);
      }
      return s + (show < v.array_size() ? ", ...}" : "}");
    }
    default:
      return std::to_string(v.i);
  }
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (b >= 1024 && u < 3) b /= 1024, ++u;
  char s[32];
  std::snprintf(s, sizeof s, "%.2f %s", b, units[u]);
  return s;
}

void print_tensors(const std::vector<TensorRef>& tensors, size_t file_bytes) {
  std::printf("\n%zu tensors:\n", tensors.size());
  int64_t params = 0;
  std::map<std::string, int> by_type;
  for (const auto& t : tensors) {
    std::printf("  %-40s %-6s %-20s %12s\n", t.name.c_str(),
                std::string(dtype_name(t.dtype)).c_str(), shape(t.ne).c_str(),
                human_bytes(static_cast<double>(t.nbytes)).c_str());
    params += t.nelements();
    by_type[std::string(dtype_name(t.dtype))]++;
  }
  std::printf("\nparameters: %lld (%.3f B)\n", static_cast<long long>(params), params / 1e9);
  std::printf("file size: %s (%zu bytes)\ndtypes:",
              human_bytes(static_cast<double>(file_bytes)).c_str(), file_bytes);
  for (const auto& [k, n] : by_type) std::printf(" %s %d", k.c_str(), n);
  std::printf("\n");
}

bool is_gguf(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char magic[4] = {};
  const bool ok = std::fread(magic, 1, 4, f) == 4 && std::memcmp(magic, "GGUF", 4) == 0;
  std::fclose(f);
  return ok;
}

int budget_option(const Args& a) {
  const int budget = static_cast<int>(a.get_int("--budget"));
  if (!media::is_image_budget(budget))
    throw UsageError("--budget " + std::to_string(budget) + ": not one of 70, 140, 280, 560, 1120");
  return budget;
}

long long repeat_option(const Args& a) {
  const long long n = a.get_int("--repeat");
  if (n < 1) throw UsageError("--repeat " + std::to_string(n) + ": must be at least 1");
  return n;
}

struct PixelSize {
  int width = 0;
  int height = 0;
};

// "WxH" of --size, both positive; any size, not only multiples of 48 (the resize takes any).
PixelSize parse_size(const std::string& text) {
  PixelSize s;
  char rest = 0;
  if (std::sscanf(text.c_str(), "%dx%d%c", &s.width, &s.height, &rest) != 2 || s.width <= 0 ||
      s.height <= 0)
    throw UsageError("--size `" + text + "`: expected WIDTHxHEIGHT, both positive (e.g. 768x768)");
  return s;
}

media::ResizeArithmetic parse_arithmetic(const std::string& name) {
  if (name == "pillow") return media::ResizeArithmetic::Pillow;
  if (name == "torch-uint8") return media::ResizeArithmetic::TorchUint8;
  throw UsageError("--resize-arithmetic `" + name + "`: not one of pillow, torch-uint8");
}

// `inspect --image F --resized-out O`: the pixels the vision embedder would be given (before the
// division by 255), for comparing the resize with other implementations (bench/).
int inspect_resize(const Args& a) {
  if (!a.has("--image")) throw UsageError("rawflow inspect --resized-out: give --image F");
  const media::RgbImage img = media::decode_image(a.get("--image"));
  PixelSize target;
  if (a.has("--size")) {
    target = parse_size(a.get("--size"));
  } else {
    const media::GridSize grid = media::hf_target_size(img.width, img.height, budget_option(a));
    target = {grid.width, grid.height};
  }
  const auto arithmetic = parse_arithmetic(a.get("--resize-arithmetic"));
  const media::RgbImage out =
      media::resize_bicubic_antialias(img, target.width, target.height, arithmetic);
  const std::string path = a.get("--resized-out");
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(out.rgb.data()),
          static_cast<std::streamsize>(out.rgb.size()));
  if (!f) throw UsageError("cannot write `" + path + "`");
  std::printf("image %s: %dx%d -> %dx%d (%s arithmetic), wrote %zu bytes of raw RGB to %s\n",
              a.get("--image").c_str(), img.width, img.height, out.width, out.height,
              a.get("--resize-arithmetic").c_str(), out.rgb.size(), path.c_str());
  return 0;
}

// `inspect --mmproj P (--image F | --audio F)`: the soft tokens the decoder would receive, for
// checking a conversion against another implementation.
int inspect_embeddings(const Args& a) {
  if (a.has("--image") == a.has("--audio"))
    throw UsageError("rawflow inspect --mmproj: give exactly one of --image and --audio");
  auto mm = Gemma4Mmproj::open(a.get("--mmproj"));
  MediaEmbedding e;
  if (a.has("--image")) {
    const int budget = budget_option(a);
    const media::RgbImage img = media::decode_image(a.get("--image"));
    const Gemma4VisionEmbedder vision(*mm);
    const media::PreparedImage prepared = media::prepare_image(img, budget, vision.patch_order());
    const auto& grid = prepared.grid;
    // Repeated calls show the embedders' one-time setup (oneDNN generating its kernels on the
    // first call) apart from the per-image work (bench/describe_share.sh).
    std::string call_ms;
    const long long calls = repeat_option(a);
    for (long long r = 0; r < calls; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      e = media::embed_prepared_image(vision, prepared);
      const std::chrono::duration<double, std::milli> dt = std::chrono::steady_clock::now() - t0;
      char ms[32];
      std::snprintf(ms, sizeof ms, "%s%.1f", r ? " " : "", dt.count());
      call_ms += ms;
    }
    std::printf("image %s: %dx%d -> %dx%d, grid %d x %d (cols x rows), %lld soft tokens, %s\n",
                a.get("--image").c_str(), img.width, img.height, grid.width, grid.height,
                grid.cols(), grid.rows(), static_cast<long long>(e.rows),
                mm->patch_order() == PatchOrder::CHW ? "CHW patches (GGUF)" : "HWC patches (HF)");
    std::printf("embedder calls: %s ms\n", call_ms.c_str());
  } else {
    const media::AudioClip clip = media::decode_audio(a.get("--audio"));
    e = media::embed_audio(Gemma4AudioEmbedder(*mm), clip);
    std::printf("audio %s: %zu samples at 16 kHz, %lld soft tokens\n", a.get("--audio").c_str(),
                clip.samples.size(), static_cast<long long>(e.rows));
  }
  if (a.has("--embeddings-out")) {
    std::ofstream out(a.get("--embeddings-out"), std::ios::binary);
    out.write(reinterpret_cast<const char*>(e.values.data()),
              static_cast<std::streamsize>(e.values.size() * sizeof(float)));
    if (!out) throw UsageError("cannot write `" + a.get("--embeddings-out") + "`");
    std::printf("wrote %lld rows x %lld floats to %s\n", static_cast<long long>(e.rows),
                static_cast<long long>(mm->out_dim()), a.get("--embeddings-out").c_str());
  }
  return 0;
}

}  // namespace

int cmd_inspect(const CommandArgs& argv) {
  Args a("inspect",
         "PATH (GGUF file, Hugging Face directory or media file) | --mmproj P (--image F | "
         "--audio F) [--budget N] [--embeddings-out F] [--repeat N] | --image F --resized-out F "
         "[--budget N | --size WxH] [--resize-arithmetic pillow|torch-uint8]");
  a.positional("PATH", "model file or directory, or any media file FFmpeg reads")
      .option("--mmproj", "", "projector (GGUF mmproj or HF directory) to embed --image/--audio")
      .option("--image", "", "image to embed")
      .option("--audio", "", "audio to embed")
      .option("--budget", "", "soft tokens per image: 70, 140, 280, 560 or 1120", "280")
      .option("--embeddings-out", "", "write the soft-token rows as raw float32")
      .option("--repeat", "",
              "with --mmproj --image: run the vision embedder N times and print each call's time",
              "1")
      .option("--resized-out", "",
              "write --image resized to the budget's size (or --size) as raw RGB bytes")
      .option("--size", "", "with --resized-out: resize to WIDTHxHEIGHT instead of the budget's")
      .option("--resize-arithmetic", "",
              "with --resized-out: pillow (rawflow's default, Pillow-exact) or torch-uint8 "
              "(PyTorch's int16-weight uint8 kernel)",
              "pillow");
  if (!a.parse_or_help(argv)) return 0;
  if (a.has("--resized-out")) {
    if (a.has("--mmproj"))
      throw UsageError("rawflow inspect: --resized-out and --mmproj are separate uses; give one");
    return inspect_resize(a);
  }
  if (a.has("--mmproj")) return inspect_embeddings(a);
  if (a.positionals().size() != 1) throw UsageError("rawflow inspect: give one PATH\n" + a.help());
  const std::string path = a.positionals()[0];
  if (std::filesystem::is_directory(path)) {
    auto w = open_weights(path);
    const auto& c = w->config();
    std::printf("%s: Hugging Face checkpoint, gemma4 text: %lld layers, hidden %lld, vocab %lld\n",
                path.c_str(), static_cast<long long>(c.n_layer), static_cast<long long>(c.hidden),
                static_cast<long long>(c.vocab_size));
    print_tensors(w->all(), w->file_bytes());
    return 0;
  }
  if (!is_gguf(path)) {
    std::printf("%s\n", media::probe_media(path).describe().c_str());
    return 0;
  }
  auto f = GgufFile::open(path);
  std::printf("%s: GGUF v%u, alignment %zu, %zu metadata keys\n\n", path.c_str(), f->version(),
              f->alignment(), f->metadata().size());
  for (const auto& [k, v] : f->metadata())
    std::printf("  %-48s %s\n", k.c_str(), value_str(v).c_str());
  std::vector<TensorRef> refs;
  for (const auto& t : f->tensors()) refs.push_back(f->ref(t));
  print_tensors(refs, f->file_size());
  return 0;
}

}  // namespace rawflow::cli
