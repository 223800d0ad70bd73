// The model-file targets: a GGUF text model, a Hugging Face checkpoint, an mmproj GGUF. Each is
// refused with ModelFileError (model/error.h: "a model file is malformed or does not describe a
// model rawflow can run") or loads.
#include <cstring>
#include <exception>
#include <string>
#include <typeinfo>

#include "fuzz/fuzz_targets.h"
#include "fuzz/scratch_files.h"
#include "model/error.h"
#include "model/formats/hf_checkpoint.h"
#include "model/gemma4/gemma4_mmproj.h"
#include "model/model_loader.h"

namespace rawflow::fuzz {

namespace {

// Runs `load`; a ModelFileError is the documented refusal, anything else thrown is a finding.
template <class F>
void expect_loads_or_refuses(std::string_view target, F&& load) {
  try {
    load();
  } catch (const ModelFileError&) {
  } catch (const std::exception& e) {
    fail(target,
         std::string("threw ") + typeid(e).name() + " instead of ModelFileError: " + e.what());
  }
}

}  // namespace

void gguf_model(const uint8_t* data, size_t size) {
  const std::string path = write_scratch("model.gguf", data, size);
  expect_loads_or_refuses("gguf_model", [&] {
    LoadOptions opt;
    opt.threads = 1;
    LoadedModel m = load_model(path, opt);
    // A loaded vocabulary must serve the prompt every command starts with.
    const auto ids = m.tokenizer->encode("<bos><|turn>user\nhello<turn|>");
    (void)m.tokenizer->decode(ids);
  });
}

void hf_checkpoint(const uint8_t* data, size_t size) {
  uint32_t config_len = 0;
  if (size < sizeof config_len) return;
  std::memcpy(&config_len, data, sizeof config_len);  // little-endian hosts only, as rawflow
  data += sizeof config_len;
  size -= sizeof config_len;
  if (config_len > size) return;
  // A directory of its own: the checkpoint reads every *.safetensors file beside config.json.
  const std::string config_path = write_scratch("hf/config.json", data, config_len);
  write_scratch("hf/model.safetensors", data + config_len, size - config_len);
  expect_loads_or_refuses("hf_checkpoint", [&] {
    auto ck = HfCheckpoint::open(config_path);
    for (const auto& t : ck->all()) (void)ck->where(t.name);
  });
}

void mmproj(const uint8_t* data, size_t size) {
  const std::string path = write_scratch("mmproj.gguf", data, size);
  expect_loads_or_refuses("mmproj", [&] { (void)Gemma4Mmproj::open(path); });
}

}  // namespace rawflow::fuzz
