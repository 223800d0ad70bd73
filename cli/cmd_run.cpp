// rawflow run CONFIG: the streaming pipeline (pipeline/graph.h) for a YAML configuration.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/run_summary.h"
#include "nodes/stderr_log.h"
#include "pipeline/config.h"
#include "pipeline/graph.h"

namespace rawflow::cli {
namespace {

// The first SIGINT/SIGTERM stops the inputs and lets the work in flight finish
// (engine.shutdown_grace_s); a second one cancels it at once.
std::atomic<bool> g_stop{false};
std::atomic<bool> g_hurry{false};
extern "C" void on_run_signal(int) {
  if (g_stop.exchange(true)) g_hurry = true;
}

// Exit statuses (README): 0 done (or stopped with everything in flight finished), 1 nothing
// succeeded, 2 usage or configuration, 4 stopped with requests cancelled after the grace period.
constexpr int kExitStoppedWithCancelled = 4;

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
  std::signal(SIGINT, on_run_signal);
  std::signal(SIGTERM, on_run_signal);
  // Errors on stderr too, unless the stdout sink already prints them to this same terminal.
  pipeline::PipelineExtras extras;
  const bool errors_on_terminal = cfg.outputs.stdout_sink.enabled &&
                                  cfg.outputs.stdout_sink.format == StdoutFormat::Text &&
                                  ::isatty(STDOUT_FILENO) && ::isatty(STDERR_FILENO);
  if (!errors_on_terminal)
    extras.sinks.emplace_back("stderr",
                              std::make_unique<nodes::StderrLog>(std::cerr, "rawflow run: "));
  pipeline::Pipeline p(std::move(cfg), std::move(extras));
  const pipeline::RunSummary s = p.run(g_stop, &g_hurry);
  print_run_summary("rawflow run", s);
  if (s.stopped && s.cancelled_at_stop > 0) {
    std::fprintf(stderr,
                 "rawflow run: stopped; %lld request(s) still unfinished %s were cancelled (an "
                 "error event each)\n",
                 static_cast<long long>(s.cancelled_at_stop),
                 g_hurry ? "at the second signal" : "when the grace period ended");
    return kExitStoppedWithCancelled;
  }
  if (s.stopped) std::fprintf(stderr, "rawflow run: stopped; every request in flight finished\n");
  return s.errors > 0 && s.finals == 0 ? 1 : 0;
}

}  // namespace rawflow::cli
