#pragma once
// The projection node: a request's media → its prompt. Frames are resized to the task's image
// budget, cut into 48×48 tiles and embedded (one image, or a video of stamped frames); audio is
// cut into 40 ms frames and embedded; the task's prompt text sits between them (media/media_turn.h,
// as the one-shot commands build theirs). The result is a DecodeJob for the decoder node.
//
// A live stream's projection queue is bounded: when a request of a drop_oldest stream is taken
// while queue.max_pending_requests newer ones of the same stream already wait behind it, it is
// dropped (the oldest goes, as in the scheduler's queue, and is counted the same way). A dropped
// request, or one whose media cannot be embedded, becomes its error Outcome.
//
// Graph use: a serial multifunction_node (the embedders use the engine's threads: two at once
// would only share the same cores); output 0 to the decoder, output 1 to the result order node.
#include <string>
#include <variant>
#include <vector>

#include "model/gemma4/gemma4_audio.h"
#include "model/gemma4/gemma4_vision.h"
#include "model/tokenizer/tokenizer.h"
#include "pipeline/config.h"
#include "pipeline/messages.h"
#include "pipeline/overlap_meter.h"
#include "pipeline/stream_handles.h"

namespace rawflow::nodes {

class Projection {
 public:
  struct Embedders {
    const Gemma4VisionEmbedder* vision = nullptr;  // needed when a task uses video
    const Gemma4AudioEmbedder* audio = nullptr;    // needed when a task uses audio
  };
  // References are kept. `streams[i]` belongs to cfg.streams[i]; `overlap` may be null.
  Projection(const PipelineConfig& cfg, const Tokenizer& tok, int64_t hidden, Embedders embedders,
             std::vector<pipeline::StreamHandles*> streams, std::string model,
             pipeline::OverlapMeter* overlap = nullptr);

  std::variant<pipeline::DecodeJob, pipeline::Outcome> operator()(pipeline::MediaRequest r);

 private:
  PromptInput prompt_of(pipeline::MediaRequest& r) const;
  pipeline::Outcome error(const pipeline::RequestInfo& r, std::string message) const;

  const PipelineConfig& cfg_;
  const Tokenizer& tok_;
  int64_t hidden_;
  Embedders embedders_;
  std::vector<pipeline::StreamHandles*> streams_;
  std::string model_;
  pipeline::OverlapMeter* overlap_;
};

}  // namespace rawflow::nodes
