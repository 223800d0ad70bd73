#pragma once
// Typed errors of the engine. They travel up to the CLI (or the pipeline), which prints them once.
#include <stdexcept>
#include <string>

namespace rawflow {

// A model file (GGUF, safetensors, config.json, tokenizer.json) is malformed or does not describe a
// model rawflow can run. The message names the file and the key or tensor at fault.
class ModelFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A caller asked for something the engine cannot do (bad argument, exhausted budget).
class EngineError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace rawflow
