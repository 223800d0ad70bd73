#pragma once
// The rawflow subcommands. Each lives in cli/cmd_<name>.cpp and returns the process exit code.
#include <string>
#include <vector>

namespace rawflow::cli {

using CommandArgs = std::vector<std::string>;

int cmd_generate(const CommandArgs& args);
int cmd_inspect(const CommandArgs& args);
int cmd_bench(const CommandArgs& args);
int cmd_model(const CommandArgs& args);  // `model synth ...`, `model convert ...`
int cmd_tokenize(const CommandArgs& args);
int cmd_describe(const CommandArgs& args);
int cmd_transcribe(const CommandArgs& args);
int cmd_ask(const CommandArgs& args);
int cmd_run(const CommandArgs& args);     // the pipeline
int cmd_batch(const CommandArgs& args);   // archives through the pipeline
int cmd_keygen(const CommandArgs& args);  // ZeroMQ CURVE keys

}  // namespace rawflow::cli
