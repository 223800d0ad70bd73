#include "nodes/projection.h"

#include <chrono>
#include <stdexcept>

#include "media/embed.h"
#include "media/media_turn.h"
#include "model/error.h"
#include "model/gemma4/audio_frames.h"

namespace rawflow::nodes {

using pipeline::AbandonedWindow;
using pipeline::AudioPiece;
using pipeline::DecodeJob;
using pipeline::MediaRequest;
using pipeline::Outcome;
using pipeline::PrefillPiece;
using pipeline::ResultEvent;

Projection::Projection(const PipelineConfig& cfg, const Tokenizer& tok, int64_t hidden,
                       Embedders embedders, std::vector<pipeline::StreamHandles*> streams,
                       std::string model, pipeline::OverlapMeter* overlap)
    : cfg_(cfg),
      tok_(tok),
      hidden_(hidden),
      embedders_(embedders),
      streams_(std::move(streams)),
      model_(std::move(model)),
      overlap_(overlap) {}

ProjectionOutput Projection::operator()(pipeline::FramedWork work) {
  if (auto* r = std::get_if<MediaRequest>(&work)) return request(std::move(*r));
  if (const auto* p = std::get_if<AudioPiece>(&work)) return piece(*p);
  const auto& a = std::get<AbandonedWindow>(work);
  return abandoned(a.stream, a.task, a.window_start);
}

ProjectionOutput Projection::request(MediaRequest r) {
  pipeline::StreamHandles& s = *streams_[r.stream];
  const int64_t behind = s.ledger.projection_takes_one();
  const WindowKey key{r.stream, r.task, r.window_start};
  // A window whose pieces went ahead, unless one of them failed: then it goes whole.
  const bool streamed = r.window_start >= 0 && broken_.erase(key) == 0;
  ProjectionOutput out;
  if (r.droppable && behind >= cfg_.streams[r.stream].queue.max_pending_requests) {
    s.metrics.requests_dropped_queue_full.inc();
    out.error =
        error(r, "dropped: the stream's projection queue is full (queue.max_pending_requests)");
    if (streamed) out.work = abandon(r.stream, r.task, r.window_start);
    return out;
  }
  const auto begin = pipeline::OverlapMeter::Clock::now();
  try {
    DecodeJob job{static_cast<pipeline::RequestInfo>(r),
                  streamed ? closing_prompt(r) : prompt_of(r), streamed ? r.window_start : -1};
    if (overlap_)
      overlap_->add(pipeline::OverlapMeter::kProjection, begin,
                    pipeline::OverlapMeter::Clock::now());
    out.work = std::move(job);
  } catch (const std::exception& ex) {
    out.error = error(r, ex.what());
    if (streamed) out.work = abandon(r.stream, r.task, r.window_start);
  }
  return out;
}

ProjectionOutput Projection::piece(const AudioPiece& p) {
  const WindowKey key{p.stream, p.task, p.window_start};
  if (broken_.count(key)) return {};
  ProjectionOutput out;
  try {
    const AudioLast& layout = audio_last(p.task);
    PrefillPiece piece;
    piece.stream = p.stream;
    piece.task = p.task;
    piece.window_start = p.window_start;
    piece.droppable = cfg_.streams[p.stream].queue.overflow == Overflow::DropOldest;
    const bool first = p.first_sample == p.window_start;
    piece.prompt_tokens_bound = layout.max_tokens;
    piece.prompt = audio_prompt(layout, p.samples, first, false);
    out.work = std::move(piece);
  } catch (const std::exception&) {
    // The window's request reports what is wrong with its audio, when it is embedded whole.
    broken_.insert(key);
    out.work = abandon(p.stream, p.task, p.window_start);
  }
  return out;
}

ProjectionOutput Projection::abandoned(size_t stream, size_t task, int64_t window_start) {
  broken_.erase({stream, task, window_start});
  return {abandon(stream, task, window_start), std::nullopt};
}

PrefillPiece Projection::abandon(size_t stream, size_t task, int64_t window_start) {
  PrefillPiece a;
  a.stream = stream;
  a.task = task;
  a.window_start = window_start;
  a.abandon = true;
  return a;
}

// [image | video frames] task prompt [audio], as the one-shot commands lay out theirs.
PromptInput Projection::prompt_of(MediaRequest& r) const {
  const TaskConfig& task = cfg_.tasks[r.task];
  media::MediaTurn turn;
  if (!r.frames.empty() && !embedders_.vision)
    throw EngineError("task `" + task.name + "` has frames but no vision embedder is loaded");
  if (r.frames.size() == 1) {
    turn.add_image(*embedders_.vision, r.frames[0], task.image_budget);
  } else if (r.frames.size() > 1) {
    std::vector<media::TimedImage> frames(r.frames.size());
    for (size_t i = 0; i < r.frames.size(); ++i) {
      frames[i].image = std::move(r.frames[i]);
      frames[i].seconds = r.frame_times[i];
      frames[i].frame_index = static_cast<int64_t>(i);
    }
    turn.add_video(*embedders_.vision, frames, task.image_budget);
  }
  turn.add_text(task.prompt);
  if (!r.audio.empty() && embedders_.audio) {
    media::AudioClip clip;
    clip.samples = std::move(r.audio);
    turn.add_audio(*embedders_.audio, clip);
  }
  return turn.prompt(tok_, hidden_);
}

// The layout is read off the prompt prompt_of() builds for one frame of the task's audio, so the
// pieces follow whatever the turn format is.
const Projection::AudioLast& Projection::audio_last(size_t task) {
  if (const auto it = layouts_.find(task); it != layouts_.end()) return it->second;
  if (!embedders_.audio)
    throw EngineError("task `" + cfg_.tasks[task].name +
                      "` has audio but no audio embedder is loaded");
  MediaRequest one;
  one.task = task;
  one.audio.assign(kAudioFrameSamples, 0.0f);
  const PromptInput p = prompt_of(one);
  size_t at = p.size();
  for (size_t i = 0; i < p.size(); ++i)
    if (p.soft_index[i] >= 0) at = i;
  if (at == p.size() || p.soft_rows() != 1)
    throw EngineError("task `" + cfg_.tasks[task].name + "`: no audio soft token in its prompt");
  AudioLast l;
  l.head.assign(p.tokens.begin(), p.tokens.begin() + static_cast<ptrdiff_t>(at));
  l.soft_token = p.tokens[at];
  l.tail.assign(p.tokens.begin() + static_cast<ptrdiff_t>(at) + 1, p.tokens.end());
  const int64_t window = std::llround(cfg_.tasks[task].audio_window_s * kAudioSampleRate);
  l.max_tokens = static_cast<int64_t>(l.head.size() + l.tail.size()) +
                 (window + kAudioFrameSamples - 1) / kAudioFrameSamples;
  return layouts_.emplace(task, std::move(l)).first->second;
}

PromptInput Projection::audio_prompt(const AudioLast& layout, std::vector<float> samples, bool head,
                                     bool tail) const {
  PromptInput p;
  p.hidden = hidden_;
  const auto put = [&p](int32_t token, int32_t soft) {
    p.tokens.push_back(token);
    p.soft_index.push_back(soft);
    p.block_ids.push_back(-1);
  };
  if (head)
    for (int32_t t : layout.head) put(t, -1);
  if (!samples.empty()) {
    media::AudioClip clip;
    clip.samples = std::move(samples);
    MediaEmbedding m = media::embed_audio(*embedders_.audio, clip);
    for (int64_t i = 0; i < m.rows; ++i) put(layout.soft_token, static_cast<int32_t>(i));
    p.soft = std::move(m.values);
  }
  if (tail)
    for (int32_t t : layout.tail) put(t, -1);
  return p;
}

// The audio after the window's pieces, and the text after it.
PromptInput Projection::closing_prompt(MediaRequest& r) {
  const int64_t from = r.window_start + r.streamed_samples - r.audio_first_sample;
  if (from < 0 || from > static_cast<int64_t>(r.audio.size()) || from % kAudioFrameSamples != 0)
    throw EngineError("the window's streamed audio does not line up with its request");
  std::vector<float> rest(r.audio.begin() + from, r.audio.end());
  return audio_prompt(audio_last(r.task), std::move(rest), false, true);
}

Outcome Projection::error(const pipeline::RequestInfo& r, std::string message) const {
  Outcome o = pipeline::outcome_of(cfg_, r, ResultEvent::Kind::Error, model_);
  o.event.error = std::move(message);
  return o;
}

}  // namespace rawflow::nodes
