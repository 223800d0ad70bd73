#pragma once
// The engine options every model-running command shares, declared and read in one place.
#include "cli/args.h"
#include "model/gemma4/gemma4_text.h"

namespace rawflow::cli {

// Adds --threads and --llama-order to a command's options.
void declare_engine_options(Args& a);
LoadOptions engine_options(const Args& a);
// Threads the engine runs on after loading (resolves --threads 0 = all cores).
int engine_threads();

}  // namespace rawflow::cli
