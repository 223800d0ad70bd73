// rawflow bench: prefill (ppN) and decode (tgN) throughput the way llama-bench measures them —
// ppN evaluates N prompt tokens in one batch into an empty cache, tgN generates N tokens one at a
// time from an empty cache — repeated, reported as mean ± standard deviation, plus peak RSS.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/engine_options.h"
#include "model/model_loader.h"

namespace rawflow::cli {
namespace {

struct Stats {
  double mean = 0, sd = 0;
};

Stats stats(const std::vector<double>& v) {
  Stats s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / static_cast<double>(v.size() - 1)) : 0.0;
  return s;
}

double peak_rss_gib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / (1024.0 * 1024.0);  // ru_maxrss is in KiB
}

}  // namespace

int cmd_bench(const CommandArgs& argv) {
  Args a("bench", "--model PATH [-p 512] [-n 64] [-b 512] [-d 0] [--threads T] [-r REPS]");
  a.option("--model", "-m", "GGUF file or Hugging Face directory")
      .option("--n-prompt", "-p", "prompt tokens for the prefill test (0 = skip)", "512")
      .option("--n-gen", "-n", "generated tokens for the decode test (0 = skip)", "64")
      .option("--repetitions", "-r", "repetitions of each test", "3")
      .option("--batch", "-b", "prompt tokens per forward (llama-bench's -ub)", "512")
      .option("--n-depth", "-d", "tokens already in the cache before each test (llama-bench's -d)",
              "0");
  declare_engine_options(a);
  if (!a.parse_or_help(argv)) return 0;
  const LoadOptions lo = engine_options(a);
  const int64_t depth = a.get_int("--n-depth");
  if (depth < 0) throw UsageError("--n-depth " + std::to_string(depth) + ": must be at least 0");
  const std::string path = a.get("--model");
  LoadedModel m = load_model(path, lo);
  const Gemma4Config& cfg = m.text->config();
  const int64_t n_prompt = a.get_int("--n-prompt"), n_gen = a.get_int("--n-gen");
  const int reps = static_cast<int>(std::max(1LL, a.get_int("--repetitions")));
  std::printf("model: %s (%lld layers, hidden %lld, vocab %lld), file %.2f GiB, threads %d\n",
              path.c_str(), static_cast<long long>(cfg.n_layer), static_cast<long long>(cfg.hidden),
              static_cast<long long>(cfg.vocab_size), m.text->weights().file_bytes() / 1073741824.0,
              engine_threads());
  std::printf("batch kernels: %s\n", m.text->batch_kernels().c_str());
  // Random ordinary tokens, like llama-bench; the content does not change the work done.
  std::mt19937 rng(42);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(cfg.vocab_size - 1));
  // A prompt longer than the batch goes in as llama-bench feeds it (micro-batches of -ub tokens
  // into one cache): the same work, and activations bounded by the batch, not the prompt.
  const int64_t batch = std::max(1LL, a.get_int("--batch"));
  auto prefill = [&](KvCache& cache, int64_t n) {
    for (int64_t at = 0; at < n; at += batch) {
      SequenceChunk ch;
      ch.cache = &cache;
      for (int64_t i = at; i < std::min(n, at + batch); ++i) ch.tokens.push_back(tok(rng));
      ch.logits = LogitsWanted::Last;
      m.text->forward(std::span<SequenceChunk>(&ch, 1));
    }
  };
  // Each repetition starts from a fresh cache holding `depth` tokens, filled outside the timing.
  auto run_prefill = [&] {
    KvCache cache(cfg);
    prefill(cache, depth);
    auto t0 = std::chrono::steady_clock::now();
    prefill(cache, n_prompt);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  auto run_decode = [&] {
    KvCache cache(cfg);
    prefill(cache, depth);
    int32_t next = tok(rng);
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < n_gen; ++i) {
      SequenceChunk ch;
      ch.cache = &cache;
      ch.tokens = {next};
      auto r = m.text->forward(std::span<SequenceChunk>(&ch, 1));
      next = static_cast<int32_t>(std::max_element(r.logits[0].begin(), r.logits[0].end()) -
                                  r.logits[0].begin());
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  auto report = [&](const char* name, int64_t n, const std::function<double()>& f) {
    f();  // warm-up: primitive creation and first-touch of weights are not throughput
    std::vector<double> tps;
    for (int r = 0; r < reps; ++r) tps.push_back(static_cast<double>(n) / f());
    Stats s = stats(tps);
    // llama-bench's test names: "pp512", "tg64 @ d2048".
    std::string test = name + std::to_string(n);
    if (depth > 0) test += " @ d" + std::to_string(depth);
    std::printf("%-8s %10.2f ± %.2f t/s\n", test.c_str(), s.mean, s.sd);
    std::fflush(stdout);
  };
  if (n_prompt > 0) report("pp", n_prompt, run_prefill);
  if (n_gen > 0) report("tg", n_gen, run_decode);
  std::printf("peak RSS %.3f GiB (%.2f x file)\n", peak_rss_gib(),
              peak_rss_gib() / (m.text->weights().file_bytes() / 1073741824.0));
  return 0;
}

}  // namespace rawflow::cli
