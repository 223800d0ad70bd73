#include "cli/multimodal.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "cli/engine_options.h"
#include "cli/generation.h"
#include "media/decode.h"
#include "media/embed.h"
#include "media/image_budget.h"
#include "model/model_loader.h"

namespace rawflow::cli {
namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

void declare_media_command_options(Args& a) {
  a.option("--model", "-m", "GGUF file or Hugging Face directory")
      .option("--mmproj", "",
              "projector: GGUF mmproj file (default: the model's directory when it is a Hugging "
              "Face checkpoint)")
      .option("--budget", "", "soft tokens per image: 70, 140, 280, 560 or 1120", "280")
      .option("--frames", "", "video frames sampled per clip (spec §3.6)", "32")
      .option("--max-pixels", "",
              "refuse pictures with more pixels, before decoding them (at most the default)",
              std::to_string(media::kMaxPicturePixels));
  declare_generation_options(a);
  declare_engine_options(a);
}

MediaPrompt::MediaPrompt(const Args& a, const std::string& model_path, int64_t model_hidden) {
  std::string path;
  if (a.has("--mmproj"))
    path = a.get("--mmproj");
  else if (std::filesystem::is_directory(model_path))
    path = model_path;
  else
    throw UsageError("give --mmproj PATH: the model `" + model_path +
                     "` is a GGUF file, and its projector is a separate mmproj GGUF");
  budget_ = static_cast<int>(a.get_int("--budget"));
  if (!media::is_image_budget(budget_))
    throw UsageError("--budget " + std::to_string(budget_) +
                     ": not one of 70, 140, 280, 560, 1120");
  frames_ = static_cast<int>(a.get_int("--frames"));
  if (frames_ < 1) throw UsageError("--frames must be at least 1");
  max_pixels_ = a.get_int("--max-pixels");
  if (max_pixels_ < 1 || max_pixels_ > media::kMaxPicturePixels)
    throw UsageError("--max-pixels " + std::to_string(max_pixels_) + ": not in [1, " +
                     std::to_string(media::kMaxPicturePixels) + "]");
  mm_ = Gemma4Mmproj::open(path);
  if (mm_->out_dim() != model_hidden)
    throw UsageError("the projector `" + path + "` makes " + std::to_string(mm_->out_dim()) +
                     "-wide soft tokens but the model's hidden size is " +
                     std::to_string(model_hidden) + ": they are not a pair");
}

const Gemma4VisionEmbedder& MediaPrompt::vision() {
  if (!vision_) vision_ = std::make_unique<Gemma4VisionEmbedder>(*mm_);
  return *vision_;
}

const Gemma4AudioEmbedder& MediaPrompt::audio() {
  if (!audio_) audio_ = std::make_unique<Gemma4AudioEmbedder>(*mm_);
  return *audio_;
}

void MediaPrompt::add_image(const std::string& path) {
  const Gemma4VisionEmbedder& v = vision();  // built (weights widened) before the clock starts
  auto t = std::chrono::steady_clock::now();
  const media::RgbImage img = media::decode_image(path, max_pixels_);
  const double decode_ms = ms_since(t);
  t = std::chrono::steady_clock::now();
  const media::PreparedImage prepared = media::prepare_image(img, budget_, v.patch_order());
  const double prepare_ms = ms_since(t);
  t = std::chrono::steady_clock::now();
  const MediaEmbedding& e = turn_.add_prepared_image(v, prepared);
  const double embed_ms = ms_since(t);
  std::fprintf(stderr,
               "image %s: %dx%d -> %dx%d, %lld soft tokens (%dx%d tiles); decode %.1f ms, "
               "resize + tiles %.1f ms, embedders %.1f ms\n",
               path.c_str(), img.width, img.height, prepared.grid.width, prepared.grid.height,
               static_cast<long long>(e.rows), prepared.grid.cols(), prepared.grid.rows(),
               decode_ms, prepare_ms, embed_ms);
}

void MediaPrompt::add_audio(const std::string& path) {
  const Gemma4AudioEmbedder& au = audio();
  auto t = std::chrono::steady_clock::now();
  const media::AudioClip clip = media::decode_audio(path);
  const double decode_ms = ms_since(t);
  t = std::chrono::steady_clock::now();
  const MediaEmbedding& e = turn_.add_audio(au, clip);
  const double embed_ms = ms_since(t);
  std::fprintf(stderr,
               "audio %s: %.2f s at 16 kHz, %lld soft tokens; decode %.1f ms, frames + "
               "embedders %.1f ms\n",
               path.c_str(),
               static_cast<double>(clip.samples.size()) / media::AudioClip::kSampleRate,
               static_cast<long long>(e.rows), decode_ms, embed_ms);
}

void MediaPrompt::add_video(const std::string& path) {
  const auto t0 = std::chrono::steady_clock::now();
  media::VideoSampling vs;
  vs.num_frames = frames_;
  const auto frames = media::decode_video_frames(path, vs, max_pixels_);
  const int64_t rows = turn_.add_video(vision(), frames, media::kDefaultVideoFrameBudget);
  std::fprintf(stderr, "video %s: %zu frames, %lld soft tokens, %.0f ms\n", path.c_str(),
               frames.size(), static_cast<long long>(rows), ms_since(t0));
}

void MediaPrompt::add_text(const std::string& text) { turn_.add_text(text); }

int run_media_turn(const Args& a, const std::function<void(MediaPrompt&)>& fill) {
  const auto t0 = std::chrono::steady_clock::now();
  LoadedModel m = load_model(a.get("--model"), engine_options(a));
  std::fprintf(stderr, "loaded %s in %.2f s\n", a.get("--model").c_str(), ms_since(t0) / 1000);
  MediaPrompt mp(a, a.get("--model"), m.text->config().hidden);
  fill(mp);
  const PromptInput prompt = mp.turn().prompt(*m.tokenizer, m.text->config().hidden);
  run_generation(m, prompt, generation_options(a, m.text->config()));
  return 0;
}

}  // namespace rawflow::cli
