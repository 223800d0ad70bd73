// rawflow ask: a question about any mix of an image, a video and an audio clip.
#include "cli/commands.h"
#include "cli/multimodal.h"

namespace rawflow::cli {

int cmd_ask(const CommandArgs& argv) {
  Args a("ask", "--model M [--mmproj P] [--image F] [--video F] [--audio F] -p TEXT");
  a.option("--image", "", "an image file")
      .option("--video", "", "a video file (frames sampled per spec §3.6)")
      .option("--audio", "", "an audio (or video) file whose sound is heard")
      .option("--prompt", "-p", "the question");
  declare_media_command_options(a);
  if (!a.parse_or_help(argv)) return 0;
  if (!a.has("--prompt")) throw UsageError("rawflow ask: give --prompt\n" + a.help());
  // Pictures first, then the question, then the sound: the order of the spec's examples (§5.3)
  // and the prompt guidance for audio (text before audio).
  return run_media_turn(a, [&](MediaPrompt& mp) {
    if (a.has("--image")) mp.add_image(a.get("--image"));
    if (a.has("--video")) mp.add_video(a.get("--video"));
    mp.add_text(a.get("--prompt"));
    if (a.has("--audio")) mp.add_audio(a.get("--audio"));
  });
}

}  // namespace rawflow::cli
