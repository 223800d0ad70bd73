#pragma once
// The projection node: a request's media → its prompt. Frames are resized to the task's image
// budget, cut into 48×48 tiles and embedded (one image, or a video of stamped frames); audio is
// cut into 40 ms frames and embedded; the task's prompt text sits between them (media/media_turn.h,
// as the one-shot commands build theirs). The result is a DecodeJob for the decoder node.
//
// Streaming prefill (TaskConfig::streaming_prefill_s): an open transcribe window's audio pieces
// become PrefillPieces — the first one with the prompt's beginning — and the window's request
// only its closing piece (the rest of the audio and the text after it), so that together they
// are the prompt the request alone would have had (the same tokens; soft rows equal to float
// rounding: the embedder's matmul sums in an order that depends on its rows). An abandoned window,
// or a streamed request dropped here, tells the decoder to cancel the window's engine request.
//
// A live stream's projection queue is bounded: when a request of a drop_oldest stream is taken
// while queue.max_pending_requests newer ones of the same stream already wait behind it, it is
// dropped (the oldest goes, as in the scheduler's queue, and is counted the same way). A dropped
// request, or one whose media cannot be embedded, becomes its error Outcome.
//
// Graph use: a serial multifunction_node (the embedders use the engine's threads: two at once
// would only share the same cores; and a window's pieces must reach the decoder in order);
// output 0 to the decoder, output 1 to the result order node.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "model/gemma4/gemma4_audio.h"
#include "model/gemma4/gemma4_vision.h"
#include "model/tokenizer/tokenizer.h"
#include "pipeline/config.h"
#include "pipeline/messages.h"
#include "pipeline/overlap_meter.h"
#include "pipeline/stream_handles.h"

namespace rawflow::nodes {

struct ProjectionOutput {
  std::optional<pipeline::DecoderWork> work;  // to the decoder
  std::optional<pipeline::Outcome> error;     // to the result order node
};

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

  ProjectionOutput operator()(pipeline::FramedWork work);

 private:
  // A transcribe prompt around its audio: `head` (the turn up to and with the audio's opening
  // marker), one `soft_token` per 40 ms frame, `tail` (the closing marker and the rest).
  struct AudioLast {
    std::vector<int32_t> head, tail;
    int32_t soft_token = 0;
    int64_t max_tokens = 0;  // of the whole prompt, for a full window
  };
  using WindowKey = std::tuple<size_t, size_t, int64_t>;  // stream, task, window_start

  ProjectionOutput request(pipeline::MediaRequest r);
  ProjectionOutput piece(const pipeline::AudioPiece& p);
  // A window that ends without a request (framing's AbandonedWindow).
  ProjectionOutput abandoned(size_t stream, size_t task, int64_t window_start);
  // The decoder's news that the window's engine request is to be cancelled.
  static pipeline::PrefillPiece abandon(size_t stream, size_t task, int64_t window_start);
  PromptInput prompt_of(pipeline::MediaRequest& r) const;
  // Streaming prefill: the prompt of a window's pieces and of its closing request.
  const AudioLast& audio_last(size_t task);
  PromptInput audio_prompt(const AudioLast& layout, std::vector<float> samples, bool head,
                           bool tail) const;
  PromptInput closing_prompt(pipeline::MediaRequest& r);
  pipeline::Outcome error(const pipeline::RequestInfo& r, std::string message) const;

  const PipelineConfig& cfg_;
  const Tokenizer& tok_;
  int64_t hidden_;
  Embedders embedders_;
  std::vector<pipeline::StreamHandles*> streams_;
  std::string model_;
  pipeline::OverlapMeter* overlap_;
  std::map<size_t, AudioLast> layouts_;  // by task
  // Windows one of whose pieces could not be embedded: abandoned in the engine, the rest of
  // their pieces skipped, their request embedded whole.
  std::set<WindowKey> broken_;
};

}  // namespace rawflow::nodes
