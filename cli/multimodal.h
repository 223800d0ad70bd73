#pragma once
// What describe, transcribe, ask and `inspect --mmproj` share: opening the projector next to the
// model, and turning media files into chat parts plus their soft tokens.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cli/args.h"
#include "media/embed.h"
#include "media/media_turn.h"
#include "model/gemma4/chat.h"
#include "model/gemma4/gemma4_audio.h"
#include "model/gemma4/gemma4_mmproj.h"
#include "model/gemma4/gemma4_vision.h"
#include "model/gemma4/multimodal_prompt.h"

namespace rawflow::cli {

// What describe, transcribe and ask all take: --model, the projector and media options
// (--mmproj, --budget, --frames), the generation and the engine options.
void declare_media_command_options(Args& a);

class MediaPrompt {
 public:
  // The projector from --mmproj, or the model's own directory when the model is a Hugging Face
  // checkpoint (its safetensors hold the embedders). `model_hidden` must match its out_dim.
  MediaPrompt(const Args& a, const std::string& model_path, int64_t model_hidden);

  // Each adds a chat part and its soft tokens; the summary line goes to stderr.
  void add_image(const std::string& path);
  void add_audio(const std::string& path);
  void add_video(const std::string& path);
  void add_text(const std::string& text);

  const media::MediaTurn& turn() const { return turn_; }
  const Gemma4Mmproj& mmproj() const { return *mm_; }
  const Gemma4VisionEmbedder& vision();
  const Gemma4AudioEmbedder& audio();
  int budget() const { return budget_; }

 private:
  std::unique_ptr<Gemma4Mmproj> mm_;
  std::unique_ptr<Gemma4VisionEmbedder> vision_;
  std::unique_ptr<Gemma4AudioEmbedder> audio_;
  int budget_ = 280;
  int frames_ = 32;
  int64_t max_pixels_ = 0;  // --max-pixels
  media::MediaTurn turn_;
};

}  // namespace rawflow::cli

namespace rawflow::cli {

// Loads --model, builds the media parts with `fill`, renders one user turn and streams the answer.
// Shared body of describe, transcribe and ask.
int run_media_turn(const Args& a, const std::function<void(MediaPrompt&)>& fill);

}  // namespace rawflow::cli
