#pragma once
// The fuzz targets: one function per parser a user's file reaches, each taking one input and
// checking the parser's contract on it: it is accepted, or refused with the error type its
// header documents (the one the CLI turns into a clear message). Anything else — another
// exception type, a crash, a sanitizer report, a broken round trip — aborts: that is a finding.
//
// The same functions run under libFuzzer (fuzz/libfuzzer_main.cpp, clang) and in the unit test
// that replays every committed finding (tests/test_fuzz_regressions.cpp, any compiler).
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rawflow::fuzz {

// A GGUF text model: metadata, tensor table, vocabulary, the decoder's checks (load_model).
void gguf_model(const uint8_t* data, size_t size);
// A Hugging Face checkpoint: `config.json` and `model.safetensors` packed as
// [u32 little-endian length of config.json][config.json][model.safetensors].
void hf_checkpoint(const uint8_t* data, size_t size);
// A `clip` mmproj GGUF (gemma4uv / gemma4ua) through Gemma4Mmproj::open.
void mmproj(const uint8_t* data, size_t size);
// A pipeline config: [overrides, one per line][\0][YAML]; loaded, and when it loads, its
// dump_config text loads to the same dump (docs/config.md promises the round trip).
void config(const uint8_t* data, size_t size);
// Arbitrary bytes through a Gemma 4 vocabulary: encode (with and without special tokens) then
// decode gives the text back, and the streaming detokenizer gives valid UTF-8.
void tokenizer_text(const uint8_t* data, size_t size);
// A Hugging Face tokenizer.json through Vocab::from_tokenizer_json and the Tokenizer's tables.
void tokenizer_json(const uint8_t* data, size_t size);
// A result event built from the bytes: its JSON line parses back to the same fields.
void result_event(const uint8_t* data, size_t size);

struct Target {
  std::string_view name;
  void (*run)(const uint8_t*, size_t);
};
// fuzz/targets.txt is the list; CMake writes it as RAWFLOW_FUZZ_TARGET_ENTRY(name) lines.
inline constexpr Target kTargets[] = {
#define RAWFLOW_FUZZ_TARGET_ENTRY(name) {#name, name},
#include "fuzz_target_list.inc"
#undef RAWFLOW_FUZZ_TARGET_ENTRY
};

// A finding: prints what broke and aborts (libFuzzer saves the input).
[[noreturn]] void fail(std::string_view target, std::string_view what);

}  // namespace rawflow::fuzz
