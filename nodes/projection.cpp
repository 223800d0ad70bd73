#include "nodes/projection.h"

#include <chrono>
#include <stdexcept>

#include "media/media_turn.h"
#include "model/error.h"

namespace rawflow::nodes {

using pipeline::DecodeJob;
using pipeline::MediaRequest;
using pipeline::Outcome;
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

std::variant<DecodeJob, Outcome> Projection::operator()(MediaRequest r) {
  pipeline::StreamHandles& s = *streams_[r.stream];
  const int64_t behind = s.ledger.projection_takes_one();
  if (r.droppable && behind >= cfg_.streams[r.stream].queue.max_pending_requests) {
    s.metrics.requests_dropped_queue_full.inc();
    return error(r, "dropped: the stream's projection queue is full (queue.max_pending_requests)");
  }
  const auto begin = pipeline::OverlapMeter::Clock::now();
  try {
    DecodeJob job{static_cast<pipeline::RequestInfo>(r), prompt_of(r)};
    if (overlap_)
      overlap_->add(pipeline::OverlapMeter::kProjection, begin,
                    pipeline::OverlapMeter::Clock::now());
    return job;
  } catch (const std::exception& ex) {
    return error(r, ex.what());
  }
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

Outcome Projection::error(const pipeline::RequestInfo& r, std::string message) const {
  Outcome o = pipeline::outcome_of(cfg_, r, ResultEvent::Kind::Error, model_);
  o.event.error = std::move(message);
  return o;
}

}  // namespace rawflow::nodes
