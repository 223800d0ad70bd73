// rawflow describe: one image (or a video's sampled frames) and a question, answered as a stream.
#include "cli/commands.h"
#include "cli/multimodal.h"

namespace rawflow::cli {

int cmd_describe(const CommandArgs& argv) {
  Args a("describe", "--model M [--mmproj P] FILE [--prompt TEXT] [--budget N] [--video]");
  a.option("--prompt", "-p", "the question", "Describe this image in detail.")
      .flag("--video", "treat FILE as a video: sample frames (spec §3.6) instead of one picture")
      .positional("FILE", "any image or video FFmpeg reads");
  declare_media_command_options(a);
  if (!a.parse_or_help(argv)) return 0;
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
