#include "cli/run_summary.h"

#include <cstdio>

namespace rawflow::cli {

void print_run_summary(const std::string& command, const pipeline::RunSummary& s) {
  const char* who = command.c_str();
  std::fprintf(stderr, "%s: busy %.2f s projecting, %.2f s in forwards, %.2f s both at once\n", who,
               s.projection_s, s.forward_s, s.overlap_s);
  std::fprintf(stderr,
               "%s: %lld requests, %lld results, %lld errors, %lld gaps; audio frames %lld in / "
               "%lld used, video frames %lld in / %lld used; %lld forwards, %.2f sequences per "
               "forward (up to %.0f)\n",
               who, static_cast<long long>(s.requests), static_cast<long long>(s.finals),
               static_cast<long long>(s.errors), static_cast<long long>(s.gaps),
               static_cast<long long>(s.audio_frames_in),
               static_cast<long long>(s.audio_frames_used),
               static_cast<long long>(s.video_frames_in),
               static_cast<long long>(s.video_frames_used), static_cast<long long>(s.forwards),
               s.mean_sequences_per_forward(), s.max_sequences_per_forward);
}

}  // namespace rawflow::cli
