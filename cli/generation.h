#pragma once
// The prefill-then-decode loop shared by generate, describe, transcribe and ask: one sequence,
// prompt prefilled in chunks that keep each image whole, tokens streamed to stdout as they come.
#include <cstdint>
#include <string>

#include "cli/args.h"
#include "model/gemma4/multimodal_prompt.h"
#include "model/gemma4/sampler.h"
#include "model/model_loader.h"

namespace rawflow::cli {

struct GenerationOptions {
  SamplingParams sampling;
  int64_t n_predict = 128;
  int64_t batch = 512;       // prompt tokens per forward (an image block is never split)
  std::string logprobs_out;  // float32 log-probs, one vocabulary row per prompt position
  std::string tokens_out;    // the prompt's token ids, comma-separated (for reference runs)
  ForwardOptions forward;
};

// --n-predict, --greedy, --temp, --top-k, --top-p, --min-p, --seed, --batch, --logprobs-out,
// --prompt-tokens-out, --llama-bidirectional; sampling defaults come from the model file.
void declare_generation_options(Args& a);
GenerationOptions generation_options(const Args& a, const Gemma4Config& cfg);

// Runs the prompt and prints the answer to stdout; timing to stderr.
void run_generation(const LoadedModel& m, const PromptInput& prompt, const GenerationOptions& o);

}  // namespace rawflow::cli
