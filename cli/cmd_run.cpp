// rawflow run CONFIG: the streaming pipeline (pipeline/graph.h) for a YAML configuration.
#include <csignal>
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "pipeline/config.h"
#include "pipeline/graph.h"

namespace rawflow::cli {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop = true; }

}  // namespace

int cmd_run(const CommandArgs& argv) {
  std::vector<std::string> overrides;
  const std::vector<std::string> rest = take_set_overrides(argv, "run", overrides);
  Args a("run", "CONFIG.yaml [--set KEY=VALUE]... [--print-config]");
  a.positional("CONFIG", "pipeline configuration (docs/config.md)")
      .option("--set", "",
              "KEY=VALUE: override one configuration key (e.g. engine.threads=2); repeatable")
      .flag("--print-config", "print the effective configuration (defaults resolved) and exit");
  if (!a.parse_or_help(rest)) return 0;
  if (a.positionals().size() != 1) throw UsageError("rawflow run: give one CONFIG\n" + a.help());
  PipelineConfig cfg;
  try {
    cfg = load_config(a.positionals()[0], overrides);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  if (a.flag_set("--print-config")) {
    std::printf("%s", dump_config(cfg).c_str());
    return 0;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  pipeline::Pipeline p(std::move(cfg));
  const pipeline::RunSummary s = p.run(g_stop);
  std::fprintf(stderr,
               "rawflow run: busy %.2f s projecting, %.2f s in forwards, %.2f s both at once\n",
               s.projection_s, s.forward_s, s.overlap_s);
  std::fprintf(stderr,
               "rawflow run: %lld requests, %lld results, %lld errors, %lld gaps; audio frames "
               "%lld in / %lld used, video frames %lld in / %lld used; up to %.0f sequences per "
               "forward\n",
               static_cast<long long>(s.requests), static_cast<long long>(s.finals),
               static_cast<long long>(s.errors), static_cast<long long>(s.gaps),
               static_cast<long long>(s.audio_frames_in),
               static_cast<long long>(s.audio_frames_used),
               static_cast<long long>(s.video_frames_in),
               static_cast<long long>(s.video_frames_used), s.max_sequences_per_forward);
  return s.errors > 0 && s.finals == 0 ? 1 : 0;
}

}  // namespace rawflow::cli
