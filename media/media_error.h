#pragma once
// Typed error of the media layer (decoding, resizing, sampling). The message names the file, stream
// or argument at fault; it travels up to the CLI or the pipeline, which prints it once.
#include <stdexcept>

namespace rawflow::media {

struct MediaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace rawflow::media
