// rawflow transcribe: speech in any audio (or video) file FFmpeg reads, to text.
#include "cli/commands.h"
#include "cli/multimodal.h"

namespace rawflow::cli {

int cmd_transcribe(const CommandArgs& argv) {
  Args a("transcribe", "--model M [--mmproj P] FILE [--lang L] [--prompt TEXT]");
  a.option("--lang", "", "language of the speech (and of the transcript)", "English")
      .option("--prompt", "-p", "instruction instead of the official ASR one")
      .positional("FILE", "any audio or video file FFmpeg reads");
  declare_media_command_options(a);
  if (!a.parse_or_help(argv)) return 0;
  if (a.positionals().size() != 1)
    throw UsageError("rawflow transcribe: give one FILE\n" + a.help());
  // The official ASR instruction (spec §5.3), text before the audio as the prompt guidance asks.
  const std::string lang = a.get("--lang");
  const std::string instruction =
      a.has("--prompt")
          ? a.get("--prompt")
          : "Transcribe the following speech segment in " + lang + " into " + lang + " text.";
  return run_media_turn(a, [&](MediaPrompt& mp) {
    mp.add_text(instruction);
    mp.add_audio(a.positionals()[0]);
  });
}

}  // namespace rawflow::cli
