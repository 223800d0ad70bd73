#define BOOST_TEST_MODULE test_convert
// `model convert` (model/formats/convert.h) on checkpoints written by `model synth --format
// safetensors`: the same values go through the same layout code (model/formats/gguf_export.h) as
// `model synth`'s direct GGUF output, so the converted files must equal synth's GGUFs tensor for
// tensor, byte for byte, and key for key (except general.name); and the errors name the file or
// tensor at fault.
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "model/error.h"
#include "model/formats/convert.h"
#include "model/formats/gguf.h"
#include "model/formats/safetensors.h"
#include "model/gemma4/gemma4_mmproj.h"
#include "model/gemma4/gemma4_text.h"
#include "model/gemma4/kv_cache.h"
#include "model/model_loader.h"
#include "model/synth/synth.h"
#include "model/tokenizer/tokenizer.h"

namespace fs = std::filesystem;
using namespace rawflow;

namespace {

constexpr uint64_t kSeed = 21;

fs::path work_dir() {
  const char* env = std::getenv("RAWFLOW_TEST_WORK");
  fs::path d = env ? fs::path(env) : fs::temp_directory_path();
  d /= "test_convert";
  fs::create_directories(d);
  return d;
}

// `model synth --preset tiny --seed kSeed [--mmproj]` in `format` at work_dir()/name.
std::string synth(const std::string& name, const std::string& format, DType dtype, bool mmproj,
                  DType mmproj_dtype = DType::F32) {
  SynthOptions o;
  o.preset = "tiny";
  o.seed = kSeed;
  o.dtype = dtype;
  o.format = format;
  o.mmproj = mmproj;
  o.mmproj_dtype = mmproj_dtype;
  o.out = (work_dir() / name).string();
  fs::remove_all(o.out);
  synth_model(o);
  return o.out;
}

// The checkpoint every conversion starts from: tiny, F32, with both embedders in F32.
const std::string& hf_dir() {
  static const std::string dir = synth("tiny-hf", "safetensors", DType::F32, true);
  return dir;
}

bool same_value(const GgufValue& a, const GgufValue& b) {
  return a.type == b.type && a.array_type == b.array_type && a.i == b.i && a.f == b.f &&
         a.s == b.s && a.ints == b.ints && a.floats == b.floats && a.strings == b.strings;
}

// Same keys in the same order with the same values (general.name aside), same tensors in the same
// order with the same dtype, shape and bytes.
void check_same_file(const std::string& got_path, const std::string& want_path) {
  BOOST_TEST_CONTEXT(got_path << " vs " << want_path) {
    const auto got = GgufFile::open(got_path);
    const auto want = GgufFile::open(want_path);
    BOOST_REQUIRE_EQUAL(got->metadata().size(), want->metadata().size());
    for (size_t i = 0; i < got->metadata().size(); ++i) {
      const auto& [gk, gv] = got->metadata()[i];
      const auto& [wk, wv] = want->metadata()[i];
      BOOST_TEST(gk == wk);
      if (gk != "general.name") BOOST_TEST(same_value(gv, wv), "metadata key " << gk);
    }
    BOOST_REQUIRE_EQUAL(got->tensors().size(), want->tensors().size());
    for (size_t i = 0; i < got->tensors().size(); ++i) {
      const GgufTensorInfo& g = got->tensors()[i];
      const GgufTensorInfo& w = want->tensors()[i];
      BOOST_TEST_CONTEXT("tensor " << w.name) {
        BOOST_TEST(g.name == w.name);
        BOOST_TEST((g.dtype == w.dtype));
        BOOST_TEST(g.ne == w.ne);
        BOOST_REQUIRE_EQUAL(g.nbytes, w.nbytes);
        BOOST_TEST(std::memcmp(got->tensor_data(g), want->tensor_data(w), g.nbytes) == 0);
      }
    }
  }
}

ConvertReport convert(const std::string& dir, const std::string& out, DType dtype,
                      DType mmproj_dtype = DType::F32) {
  ConvertOptions o;
  o.hf_dir = dir;
  o.out = (work_dir() / out).string();
  o.dtype = dtype;
  o.mmproj_dtype = mmproj_dtype;
  return convert_hf_checkpoint(o);
}

template <class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const ModelFileError& e) {
    return e.what();
  }
  BOOST_FAIL("no ModelFileError");
  return {};
}

// Logits of every position of a fixed prompt.
std::vector<float> logits(const LoadedModel& m) {
  KvCache cache(m.text->config());
  SequenceChunk ch;
  ch.cache = &cache;
  ch.tokens = m.tokenizer->encode("The quick brown fox jumps over the lazy dog");
  ch.tokens.insert(ch.tokens.begin(), 2);
  ch.logits = LogitsWanted::All;
  return m.text->forward(std::span<SequenceChunk>(&ch, 1)).logits[0];
}

}  // namespace

BOOST_AUTO_TEST_CASE(f32_conversion_equals_synth_gguf) {
  const ConvertReport r = convert(hf_dir(), "conv-f32.gguf", DType::F32);
  const std::string want = synth("synth-f32.gguf", "gguf", DType::F32, true);
  const std::string out = (work_dir() / "conv-f32.gguf").string();
  const std::string mmproj = (work_dir() / "mmproj-conv-f32.gguf").string();
  BOOST_TEST((r.files == std::vector<std::string>{out, mmproj}));
  BOOST_TEST(r.vision);
  BOOST_TEST(r.audio);
  BOOST_TEST(r.vocab_size == 512);
  BOOST_TEST(r.notes.empty());
  BOOST_TEST(r.text.tensor_count == 58u);  // 3 + 3 sliding × 14 + 1 full × 13
  BOOST_TEST(r.mmproj.tensor_count == 11u);
  check_same_file(out, want);
  check_same_file(mmproj, (work_dir() / "mmproj-synth-f32.gguf").string());
  // Named after the checkpoint directory, as llama.cpp's converter does.
  BOOST_TEST(GgufFile::open(out)->get_string("general.name") == "tiny-hf");
  BOOST_TEST(GgufFile::open(mmproj)->get_string("general.name") == "tiny-hf-mmproj");
}

BOOST_AUTO_TEST_CASE(q8_0_conversion_loads_and_equals_synth_q8_0) {
  convert(hf_dir(), "conv-q8_0.gguf", DType::Q8_0, DType::BF16);
  const std::string want = synth("synth-q8_0.gguf", "gguf", DType::Q8_0, true, DType::BF16);
  const std::string out = (work_dir() / "conv-q8_0.gguf").string();
  const std::string mmproj = (work_dir() / "mmproj-conv-q8_0.gguf").string();
  check_same_file(out, want);
  check_same_file(mmproj, (work_dir() / "mmproj-synth-q8_0.gguf").string());
  BOOST_TEST((GgufFile::open(out)->tensor("blk.0.attn_q.weight").dtype == DType::Q8_0));

  // The engine opens both files and computes what it computes on synth's.
  const LoadedModel got = load_model(out);
  const LoadedModel ref = load_model(want);
  BOOST_TEST((logits(got) == logits(ref)));
  const auto mm = Gemma4Mmproj::open(mmproj);
  BOOST_TEST(mm->has_vision());
  BOOST_TEST(mm->has_audio());
  BOOST_TEST(mm->vision_dim() == 256);
  BOOST_TEST(mm->position_rows() == 1120);
}

BOOST_AUTO_TEST_CASE(text_only_checkpoint_writes_no_mmproj) {
  const std::string dir = synth("text-hf", "safetensors", DType::BF16, false);
  const std::string mmproj = (work_dir() / "mmproj-conv-text.gguf").string();
  fs::remove(mmproj);
  const ConvertReport r = convert(dir, "conv-text.gguf", DType::F32);
  BOOST_TEST(!r.vision);
  BOOST_TEST(!r.audio);
  BOOST_TEST(r.mmproj.tensor_count == 0u);
  BOOST_TEST(r.files.size() == 1u);
  BOOST_TEST(!fs::exists(mmproj));

  ConvertOptions o;
  o.hf_dir = dir;
  o.out = (work_dir() / "conv-text.gguf").string();
  o.mmproj_out = mmproj;
  BOOST_CHECK_THROW(convert_hf_checkpoint(o), EngineError);
}

BOOST_AUTO_TEST_CASE(bad_checkpoints_name_the_file_or_tensor) {
  // No config.json.
  const fs::path empty = work_dir() / "no-config";
  fs::remove_all(empty);
  fs::create_directories(empty);
  fs::copy_file(fs::path(hf_dir()) / "tokenizer.json", empty / "tokenizer.json");
  std::string m = error_of([&] { convert(empty.string(), "bad.gguf", DType::F32); });
  BOOST_TEST(m.find((empty / "config.json").string()) != std::string::npos, m);

  // A checkpoint lacking one tensor: nothing is written.
  const fs::path holed = work_dir() / "missing-tensor";
  fs::remove_all(holed);
  fs::create_directories(holed);
  for (const char* f : {"config.json", "tokenizer.json"})
    fs::copy_file(fs::path(hf_dir()) / f, holed / f);
  const std::string gone = "model.language_model.layers.2.mlp.up_proj.weight";
  {
    const auto st = SafetensorsFile::open(hf_dir() + "/model.safetensors");
    SafetensorsWriter w;
    for (const TensorRef& t : st->tensors())
      if (t.name != gone) w.add_tensor(t.name, t.dtype, st->torch_shape(t), t.data, t.nbytes);
    w.write((holed / "model.safetensors").string());
  }
  const fs::path bad_out = work_dir() / "bad.gguf";
  fs::remove(bad_out);
  m = error_of([&] { convert(holed.string(), "bad.gguf", DType::F32); });
  BOOST_TEST(m.find(gone) != std::string::npos, m);
  BOOST_TEST(m.find("missing") != std::string::npos, m);
  BOOST_TEST(!fs::exists(bad_out));

  // A config that disagrees with a tensor's shape: the tensor, its file and both shapes.
  const fs::path misfit = work_dir() / "wrong-shape";
  fs::remove_all(misfit);
  fs::copy(hf_dir(), misfit, fs::copy_options::recursive);
  nlohmann::json cfg = nlohmann::json::parse(std::ifstream(misfit / "config.json"));
  cfg["text_config"]["intermediate_size"] = 1024;
  std::ofstream(misfit / "config.json") << cfg.dump(2);
  m = error_of([&] { convert(misfit.string(), "bad.gguf", DType::F32); });
  BOOST_TEST(m.find("model.language_model.layers.0.mlp.gate_proj.weight") != std::string::npos, m);
  BOOST_TEST(m.find("[512, 256], expected [1024, 256]") != std::string::npos, m);
  BOOST_TEST(!fs::exists(bad_out));

  // The embedders are stored in f32, f16 or bf16 only.
  BOOST_CHECK_THROW(convert(hf_dir(), "bad.gguf", DType::F32, DType::Q8_0), EngineError);
}
