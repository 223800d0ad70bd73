// rawflow generate: prefill a prompt, then decode token by token, streaming text to stdout.
#include <chrono>
#include <cstdio>
#include <sstream>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/engine_options.h"
#include "cli/generation.h"
#include "model/error.h"
#include "model/gemma4/chat.h"
#include "model/model_loader.h"

namespace rawflow::cli {
namespace {

std::vector<int32_t> parse_token_list(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    try {
      size_t used = 0;
      long v = std::stol(item, &used);
      if (used != item.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(item);
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      throw UsageError("rawflow generate: `--tokens` wants comma-separated ids, got `" + item +
                       "`");
    }
  }
  if (ids.empty()) throw UsageError("rawflow generate: `--tokens` is empty");
  return ids;
}

}  // namespace

int cmd_generate(const CommandArgs& argv) {
  Args a("generate", "--model PATH (-p TEXT | --tokens ID,ID,...) [options]");
  a.option("--model", "-m", "GGUF file or Hugging Face directory")
      .option("--prompt", "-p", "user prompt, wrapped in the Gemma 4 turn format")
      .option("--tokens", "", "exact prompt token ids, comma-separated (no template, no BOS added)")
      .flag("--raw", "use --prompt as is (no turn format; special tokens still parsed)");
  declare_generation_options(a);
  declare_engine_options(a);
  if (!a.parse_or_help(argv)) return 0;
  if (a.has("--prompt") == a.has("--tokens"))
    throw UsageError("rawflow generate: give exactly one of --prompt and --tokens\n" + a.help());

  auto t_load = std::chrono::steady_clock::now();
  LoadedModel m = load_model(a.get("--model"), engine_options(a));
  std::fprintf(stderr, "loaded %s in %.2f s\n", a.get("--model").c_str(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count());

  PromptInput prompt;
  prompt.hidden = m.text->config().hidden;
  if (a.has("--tokens")) {
    prompt.tokens = parse_token_list(a.get("--tokens"));
  } else {
    const std::string text =
        a.flag_set("--raw") ? a.get("--prompt") : render_user_prompt(a.get("--prompt"));
    prompt.tokens = m.tokenizer->encode(text, /*parse_special=*/true);
  }
  prompt.soft_index.assign(prompt.tokens.size(), -1);
  prompt.block_ids.assign(prompt.tokens.size(), -1);
  run_generation(m, prompt, generation_options(a, m.text->config()));
  return 0;
}

}  // namespace rawflow::cli
