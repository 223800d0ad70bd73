// rawflow batch CONFIG (INPUT... | --manifest FILE) --out DIR: an archive through the pipeline of
// a `run` configuration (its tasks, engine and outputs; the streams come from the inputs), with
// results per input, resume, failure lists and shards for cluster array jobs (docs/bulk.md).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/run_summary.h"
#include "media/input.h"
#include "nodes/items_sink.h"
#include "pipeline/batch_inputs.h"
#include "pipeline/batch_progress.h"
#include "pipeline/config.h"
#include "pipeline/graph.h"
#include "pipeline/metrics.h"

namespace rawflow::cli {
namespace {

namespace fs = std::filesystem;

// Exit codes (docs/bulk.md): a scheduler's retry policy keys on them.
constexpr int kExitSomeFailed = 3;
constexpr int kExitInterrupted =
    130;  // SIGINT or SIGTERM: stopped, results of finished inputs kept

std::atomic<bool> g_stop{false};
extern "C" void on_batch_signal(int) { g_stop = true; }

// An input's `failure` while it has not ended in this run, and after a stop cut it short: neither
// done nor failed, a re-run does it.
constexpr const char* kNotFinished = "not finished";

struct Input {
  std::string path;   // as listed (absolute for local files)
  std::string shown;  // in messages and the failed list: a URL's user and password hidden
  std::string id;
  int attempts = 0;
  std::string failure;
};

// The --set overrides that make the configuration's streams one file stream per input (named by
// its id), whatever the file lists; everything else is as the user's file and --set say, and
// messages keep pointing at the user's file.
std::vector<std::string> stream_overrides(
    std::vector<std::string> sets,
    const std::vector<std::pair<std::string, std::string>>& streams) {
  sets.push_back("streams=[]");
  for (size_t k = 0; k < streams.size(); ++k) {
    const std::string at = "streams." + std::to_string(k) + ".";
    sets.push_back(at + "name=" + streams[k].first);
    sets.push_back(at + "url=" + streams[k].second);
    sets.push_back(at + "kind=file");
  }
  return sets;
}

PipelineConfig batch_config(const std::string& config_path, const std::vector<std::string>& sets,
                            const std::vector<const Input*>& inputs) {
  std::vector<std::pair<std::string, std::string>> streams;
  for (const Input* in : inputs) streams.emplace_back(in->id, in->path);
  PipelineConfig cfg =
      load_config(config_path, stream_overrides(sets, streams), /*require_output=*/false);
  // An input cut by a stop has no results and is redone whole: nothing to wait for.
  cfg.engine.shutdown_grace_s = 0;
  return cfg;
}

// What in the configuration changes results: the tasks and the model (files and options), not
// the streams, outputs, metrics or how the engine schedules — so a shard re-run with another CPU
// count (engine.threads from SLURM_CPUS_PER_TASK) or batch size still finds its results.
std::string config_digest(const PipelineConfig& cfg) {
  PipelineConfig d = cfg;
  d.streams.clear();
  d.outputs = {};
  d.metrics = {};
  const EngineConfig scheduling_defaults;
  d.engine.threads = scheduling_defaults.threads;
  d.engine.max_batch = scheduling_defaults.max_batch;
  d.engine.kv_cache_budget_mb = scheduling_defaults.kv_cache_budget_mb;
  d.engine.prefill_chunk = scheduling_defaults.prefill_chunk;
  d.engine.shutdown_grace_s = scheduling_defaults.shutdown_grace_s;
  return pipeline::fnv1a64_hex(dump_config(d));
}

}  // namespace

int cmd_batch(const CommandArgs& argv) {
  std::vector<std::string> sets;
  const std::vector<std::string> rest = take_set_overrides(argv, "batch", sets);
  Args a("batch", "CONFIG.yaml (INPUT... | --manifest FILE) --out DIR [options]");
  a.positional("CONFIG INPUT", "pipeline configuration, then files, directories or glob patterns")
      .option("--manifest", "", "a file with one input path or URL per line")
      .option("--out", "", "results directory: items/, failed/, progress/")
      .flag("--force", "redo inputs whose results exist")
      .option("--retries", "", "attempts more for a failed input", "0")
      .option("--shard-index", "", "this shard (else SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX)")
      .option("--shard-count", "", "number of shards", "1")
      .option("--max-active", "", "inputs read at once", "4")
      .option("--progress-interval", "",
              "seconds between progress lines when stderr is not a terminal", "30")
      .option("--set", "", "KEY=VALUE: override one configuration key; repeatable");
  if (!a.parse_or_help(rest)) return 0;
  const auto& pos = a.positionals();
  if (pos.empty()) throw UsageError("rawflow batch: give a CONFIG\n" + a.help());
  if (!a.has("--out")) throw UsageError("rawflow batch: --out DIR is required");
  if (a.has("--manifest") == (pos.size() > 1))
    throw UsageError("rawflow batch: give INPUTs or --manifest FILE (one of them)");
  const std::string config_path = pos[0];
  const std::string out_dir = a.get("--out");
  const long long retries = a.get_int("--retries");
  const long long max_active = a.get_int("--max-active");
  if (retries < 0 || max_active < 1)
    throw UsageError("rawflow batch: --retries must be >= 0 and --max-active >= 1");

  PipelineConfig cfg;
  std::vector<std::string> listed;
  pipeline::Shard shard;
  try {
    // Checked with a stand-in stream: the configuration need not list any.
    cfg = load_config(config_path, stream_overrides(sets, {{"batch-input", "input.mkv"}}),
                      /*require_output=*/false);
    listed = a.has("--manifest")
                 ? pipeline::read_manifest(a.get("--manifest"))
                 : pipeline::expand_inputs(std::vector<std::string>(pos.begin() + 1, pos.end()));
    std::optional<int64_t> index;
    if (a.has("--shard-index")) index = a.get_int("--shard-index");
    shard = pipeline::resolve_shard(index, a.get_int("--shard-count"), std::getenv);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const std::runtime_error& e) {
    std::fprintf(stderr, "rawflow batch: %s\n", e.what());
    return 2;
  }

  const std::string digest = config_digest(cfg);
  std::vector<Input> inputs;
  for (size_t k : pipeline::shard_positions(listed.size(), shard)) {
    Input in;
    in.path = pipeline::absolute_input(listed[k]);
    in.shown = media::redact_url(in.path);
    in.id = pipeline::input_id(in.path, digest);
    inputs.push_back(in);
  }
  std::vector<Input*> todo;
  size_t done_before = 0;
  for (Input& in : inputs) {
    if (!a.flag_set("--force") && fs::exists(fs::path(out_dir) / "items" / (in.id + ".jsonl")))
      ++done_before;
    else
      todo.push_back(&in);
  }
  std::fprintf(stderr,
               "rawflow batch: shard %lld of %lld: %zu inputs, %zu done before, %zu to do\n",
               static_cast<long long>(shard.index), static_cast<long long>(shard.count),
               inputs.size(), done_before, todo.size());

  // Progress: DIR/progress/<shard>.json replaced every second; on a terminal a bar rewritten in
  // place, otherwise a line every --progress-interval seconds (and at each input's end).
  pipeline::BatchProgress progress;
  progress.shard = shard.index;
  progress.shards = shard.count;
  progress.inputs = inputs.size();
  progress.done_before = done_before;
  const double line_every = std::max(1.0, a.get_double("--progress-interval"));
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  const auto started = std::chrono::steady_clock::now();
  std::mutex mu;
  std::condition_variable wake;
  bool finished_all = false;
  const fs::path progress_file =
      fs::path(out_dir) / "progress" / (std::to_string(shard.index) + ".json");
  fs::create_directories(progress_file.parent_path());
  // The same figures on /metrics while a run's pipeline (and its registry) exists.
  std::optional<pipeline::BatchProgressMetrics> gauges;
  const auto report = [&](bool line) {  // with `mu` held
    progress.elapsed_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    nodes::ItemsSink::write_file_atomically(progress_file.string(), progress.json() + "\n");
    if (gauges) gauges->publish(progress);
    if (tty)
      std::fprintf(stderr, "\r%s\033[K", progress.bar(30).c_str());
    else if (line)
      std::fprintf(stderr, "rawflow batch: %s\n", progress.line().c_str());
  };
  std::jthread reporter([&](std::stop_token st) {
    std::unique_lock lock(mu);
    auto next_line = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (!st.stop_requested() && !finished_all) {
      const auto now = std::chrono::steady_clock::now();
      const bool line = now >= next_line;
      if (line)
        next_line = now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(line_every));
      report(line);
      wake.wait_for(lock, std::chrono::seconds(1));
    }
  });

  std::set<std::string> transcribe;
  for (const TaskConfig& t : cfg.tasks)
    if (t.kind == TaskKind::Transcribe) transcribe.insert(t.name);
  std::signal(SIGINT, on_batch_signal);
  std::signal(SIGTERM, on_batch_signal);
  for (long long attempt = 0; attempt <= retries && !todo.empty() && !g_stop; ++attempt) {
    std::map<std::string, Input*> by_id;
    std::vector<const Input*> run;
    for (Input* in : todo) {
      by_id[in->id] = in;
      run.push_back(in);
      ++in->attempts;
      in->failure = kNotFinished;
    }
    pipeline::PipelineExtras extras;
    extras.max_active_sources = static_cast<size_t>(max_active);
    nodes::ItemsSinkOptions items{
        out_dir, transcribe, [&](const nodes::ItemOutcome& o) {
          std::lock_guard lock(mu);
          Input& in = *by_id.at(o.id);
          // After a stop, inputs end cut short: interrupted, not failed (a re-run does them).
          in.failure = o.failure.empty() || !g_stop ? o.failure : kNotFinished;
          if (o.failure.empty()) {
            ++progress.done;
            progress.media_s += o.media_s;
          }
          if (tty) std::fprintf(stderr, "\r\033[K");
          std::fprintf(stderr, "rawflow batch: %s %s%s%s\n", o.failure.empty() ? "done" : "failed",
                       in.shown.c_str(), o.failure.empty() ? "" : ": ", o.failure.c_str());
          // Done, with something the user should know (in its .jsonl too).
          for (const std::string& e : o.errors)
            std::fprintf(stderr, "rawflow batch:   note on %s: %s\n", in.shown.c_str(), e.c_str());
          report(!tty);
        }};
    extras.sinks.emplace_back("items", std::make_unique<nodes::ItemsSink>(std::move(items)));
    extras.add_metrics = [&](pipeline::MetricsRegistry& registry) {
      std::lock_guard lock(mu);
      gauges.emplace(registry, shard.index);
      gauges->publish(progress);
    };
    pipeline::Pipeline p(batch_config(config_path, sets, run), std::move(extras));
    const pipeline::RunSummary summary = p.run(g_stop);
    {
      std::lock_guard lock(mu);
      gauges.reset();  // the registry goes with `p`
      if (tty) std::fprintf(stderr, "\r\033[K");
      print_run_summary("rawflow batch", summary);
    }
    std::vector<Input*> failed;
    for (Input* in : todo)
      if (!in->failure.empty()) failed.push_back(in);
    todo = failed;
  }
  {
    std::lock_guard lock(mu);
    for (const Input* in : todo)
      if (!(in->failure == kNotFinished && g_stop)) ++progress.failed;
    finished_all = true;
    report(true);
    if (tty) std::fprintf(stderr, "\n");
  }
  wake.notify_all();
  reporter.join();

  // The shard's failure list, replaced as a whole: it names what failed in this run only.
  std::string tsv = "input\terror\tattempts\n";
  size_t n_failed = 0;
  for (const Input* in : todo) {
    if (in->failure == kNotFinished && g_stop) continue;  // interrupted, not failed
    std::string why = in->failure;
    for (char& c : why)
      if (c == '\t' || c == '\n') c = ' ';
    tsv += in->shown + "\t" + why + "\t" + std::to_string(in->attempts) + "\n";
    ++n_failed;
  }
  fs::create_directories(fs::path(out_dir) / "failed");
  nodes::ItemsSink::write_file_atomically(
      (fs::path(out_dir) / "failed" / (std::to_string(shard.index) + ".tsv")).string(), tsv);
  std::fprintf(stderr, "rawflow batch: %zu of %zu inputs done, %zu failed%s\n",
               progress.done + progress.done_before, inputs.size(), n_failed,
               g_stop ? ", interrupted" : "");
  if (g_stop) return kExitInterrupted;
  return n_failed > 0 ? kExitSomeFailed : 0;
}

}  // namespace rawflow::cli
