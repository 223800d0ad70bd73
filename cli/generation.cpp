#include "cli/generation.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>

#include "model/gemma4/chat.h"

namespace rawflow::cli {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

void declare_generation_options(Args& a) {
  a.option("--n-predict", "-n", "tokens to generate (0 = only evaluate the prompt)", "128")
      .flag("--greedy", "always take the most likely token")
      .option("--temp", "", "temperature (default: the file's general.sampling.temp)")
      .option("--top-k", "", "top-k (default: the file's general.sampling.top_k)")
      .option("--top-p", "", "top-p (default: the file's general.sampling.top_p)")
      .option("--min-p", "", "min-p", "0")
      .option("--seed", "", "random seed", "0")
      .option("--batch", "-b", "prompt tokens per forward pass", "512")
      .option("--logprobs-out", "",
              "write float32 log-probs, one vocabulary row per prompt position")
      .option("--prompt-tokens-out", "", "write the prompt's token ids, comma-separated")
      .flag("--llama-bidirectional",
            "images attend bidirectionally on every layer (llama.cpp) instead of sliding layers "
            "only (HF)");
}

GenerationOptions generation_options(const Args& a, const Gemma4Config& cfg) {
  GenerationOptions o;
  SamplingParams& sp = o.sampling;
  sp.greedy = a.flag_set("--greedy");
  sp.temperature = a.has("--temp") ? static_cast<float>(a.get_double("--temp")) : cfg.sampling_temp;
  sp.top_k = a.has("--top-k") ? static_cast<int32_t>(a.get_int("--top-k")) : cfg.sampling_top_k;
  sp.top_p = a.has("--top-p") ? static_cast<float>(a.get_double("--top-p")) : cfg.sampling_top_p;
  sp.min_p = static_cast<float>(a.get_double("--min-p"));
  sp.seed = static_cast<uint64_t>(a.get_int("--seed"));
  o.n_predict = a.get_int("--n-predict");
  o.batch = std::max<long long>(1, a.get_int("--batch"));
  if (a.has("--logprobs-out")) o.logprobs_out = a.get("--logprobs-out");
  if (a.has("--prompt-tokens-out")) o.tokens_out = a.get("--prompt-tokens-out");
  o.forward.bidirectional_on_full_layers = a.flag_set("--llama-bidirectional");
  return o;
}

void run_generation(const LoadedModel& m, const PromptInput& prompt, const GenerationOptions& o) {
  const Gemma4Config& cfg = m.text->config();
  for (int32_t id : prompt.tokens)
    if (id < 0 || id >= cfg.vocab_size)
      throw UsageError("token id " + std::to_string(id) + " is outside the vocabulary (size " +
                       std::to_string(cfg.vocab_size) + ")");
  if (!o.tokens_out.empty()) {
    std::ofstream t(o.tokens_out);
    for (size_t i = 0; i < prompt.size(); ++i) t << (i ? "," : "") << prompt.tokens[i];
    t << "\n";
    if (!t) throw UsageError("cannot write `" + o.tokens_out + "`");
  }
  std::ofstream lp_out;
  if (!o.logprobs_out.empty()) {
    lp_out.open(o.logprobs_out, std::ios::binary);
    if (!lp_out) throw UsageError("cannot write `" + o.logprobs_out + "`");
  }
  Sampler sampler(o.sampling);
  KvCache cache(cfg);
  std::vector<float> last_logits;
  std::vector<float> lp(static_cast<size_t>(cfg.vocab_size));

  auto t_prefill = std::chrono::steady_clock::now();
  for (size_t at = 0; at < prompt.size();) {
    const size_t end = prompt.prefill_cut(at, static_cast<size_t>(o.batch));
    SequenceChunk ch =
        prompt.chunk(&cache, at, end, lp_out.is_open() ? LogitsWanted::All : LogitsWanted::Last);
    ForwardResult r = m.text->forward(std::span<SequenceChunk>(&ch, 1), o.forward);
    const auto& rows = r.logits[0];
    const size_t n_rows = rows.size() / static_cast<size_t>(cfg.vocab_size);
    if (lp_out.is_open())
      for (size_t i = 0; i < n_rows; ++i) {
        log_softmax(std::span<const float>(rows.data() + i * cfg.vocab_size, cfg.vocab_size), lp);
        lp_out.write(reinterpret_cast<const char*>(lp.data()),
                     static_cast<std::streamsize>(lp.size() * sizeof(float)));
      }
    last_logits.assign(rows.end() - cfg.vocab_size, rows.end());
    at = end;
  }
  const double prefill_s = seconds_since(t_prefill);
  if (lp_out.is_open()) {
    lp_out.close();
    if (!lp_out) throw UsageError("writing `" + o.logprobs_out + "` failed");
  }

  const std::vector<int32_t> stops = stop_ids(m.tokenizer->vocab());
  StreamingDetokenizer detok(*m.tokenizer);
  auto t_decode = std::chrono::steady_clock::now();
  int64_t generated = 0;
  for (; generated < o.n_predict; ++generated) {
    const int32_t next = sampler.sample(last_logits);
    if (std::find(stops.begin(), stops.end(), next) != stops.end()) break;
    const std::string text = detok.push(next);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    if (generated + 1 == o.n_predict) {
      ++generated;
      break;
    }
    SequenceChunk ch;
    ch.cache = &cache;
    ch.tokens = {next};
    last_logits = std::move(m.text->forward(std::span<SequenceChunk>(&ch, 1), o.forward).logits[0]);
  }
  const std::string rest = detok.flush();
  std::fwrite(rest.data(), 1, rest.size(), stdout);
  if (o.n_predict > 0) std::fputc('\n', stdout);
  const double decode_s = seconds_since(t_decode);
  std::fprintf(
      stderr,
      "prompt: %zu tokens in %.3f s (%.1f t/s); generated: %lld tokens in %.3f s (%.1f t/s)\n",
      prompt.size(), prefill_s, prompt.size() / std::max(prefill_s, 1e-9),
      static_cast<long long>(generated), decode_s, generated / std::max(decode_s, 1e-9));
}

}  // namespace rawflow::cli
