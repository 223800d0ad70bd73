// rawflow describe: one image (or a video's sampled frames) and a question, answered as a stream.
#include <cstdio>

#include "cli/commands.h"
#include "cli/engine_options.h"
#include "cli/generation.h"
#include "cli/multimodal.h"

namespace rawflow::cli {

int cmd_describe(const CommandArgs& argv) {
  Args a("describe", "--model M [--mmproj P] FILE [--prompt TEXT] [--budget N] [--video]");
  a.option("--model", "-m", "GGUF file or Hugging Face directory")
      .option("--prompt", "-p", "the question", "Describe this image in detail.")
      .flag("--video", "treat FILE as a video: sample frames (spec §3.6) instead of one picture")
      .positional("FILE", "any image or video FFmpeg reads")
      .flag("--help", "show this help");
  declare_media_options(a);
  declare_generation_options(a);
  declare_engine_options(a);
  a.parse(argv);
  if (a.flag_set("--help")) {
    std::printf("%s", a.help().c_str());
    return 0;
  }
  if (a.positionals().size() != 1) throw UsageError("rawflow describe: give one FILE\n" + a.help());
  return run_media_turn(a, [&](MediaPrompt& mp) {
    if (a.flag_set("--video"))
      mp.add_video(a.positionals()[0]);
    else
      mp.add_image(a.positionals()[0]);
    mp.add_text(a.get("--prompt"));
  });
}

}  // namespace rawflow::cli
