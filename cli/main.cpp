// rawflow: Gemma 4 12B unified on CPUs — one binary, subcommands in the spirit of llama.cpp/ollama.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

extern "C" {
#include <libavutil/log.h>
}

#include "cli/args.h"
#include "cli/commands.h"
#include "model/error.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const rawflow::cli::CommandArgs&);
};

const Command kCommands[] = {
    {"run", "run the streaming pipeline of a YAML configuration", rawflow::cli::cmd_run},
    {"batch", "process archives: results per input, resumable, sharded for array jobs",
     rawflow::cli::cmd_batch},
    {"generate", "generate text from a prompt or token ids", rawflow::cli::cmd_generate},
    {"describe", "describe an image or video (streams the answer)", rawflow::cli::cmd_describe},
    {"transcribe", "transcribe speech in an audio or video file", rawflow::cli::cmd_transcribe},
    {"ask", "ask about any mix of an image, a video and audio", rawflow::cli::cmd_ask},
    {"inspect", "show a model file (metadata, tensors) or a media file (streams)",
     rawflow::cli::cmd_inspect},
    {"bench", "prefill and decode speed, llama-bench style", rawflow::cli::cmd_bench},
    {"tokenize", "tokenize text with a model's vocabulary", rawflow::cli::cmd_tokenize},
    {"keygen", "a ZeroMQ CURVE key pair for the encrypted, authenticated zmq output",
     rawflow::cli::cmd_keygen},
    {"model",
     "model tools: `model synth` writes random-weight test models, `model convert` a HF "
     "checkpoint into GGUF",
     rawflow::cli::cmd_model},
};

void usage(FILE* out) {
  std::fprintf(out, "usage: rawflow COMMAND [options]\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
  std::fprintf(out, "\n`rawflow COMMAND --help` shows a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  // FFmpeg's warnings (probe guesses, decoder chatter) would drown the results on stderr; errors
  // still show, and media errors carry FFmpeg's last message anyway.
  av_log_set_level(AV_LOG_ERROR);
  const std::string name = argv[1];
  for (const auto& c : kCommands) {
    if (name != c.name) continue;
    std::vector<std::string> args(argv + 2, argv + argc);
    try {
      return c.run(args);
    } catch (const rawflow::cli::UsageError& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 2;
    } catch (const rawflow::ModelFileError& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "rawflow: unknown command `%s`\n", name.c_str());
  usage(stderr);
  return 2;
}
