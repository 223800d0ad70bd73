// rawflow generate: prefill a prompt, then decode token by token, streaming text to stdout.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/engine_options.h"
#include "model/chat.h"
#include "model/error.h"
#include "model/model_loader.h"
#include "model/sampler.h"

namespace rawflow::cli {
namespace {

std::vector<int32_t> parse_token_list(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    try {
      size_t used = 0;
      long v = std::stol(item, &used);
      if (used != item.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(item);
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      throw UsageError("rawflow generate: `--tokens` wants comma-separated ids, got `" + item +
                       "`");
    }
  }
  if (ids.empty()) throw UsageError("rawflow generate: `--tokens` is empty");
  return ids;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int cmd_generate(const CommandArgs& argv) {
  Args a("generate", "--model PATH (-p TEXT | --tokens ID,ID,...) [options]");
  a.option("--model", "-m", "GGUF file or Hugging Face directory")
      .option("--prompt", "-p", "user prompt, wrapped in the Gemma 4 turn format")
      .option("--tokens", "", "exact prompt token ids, comma-separated (no template, no BOS added)")
      .flag("--raw", "use --prompt as is (no turn format; special tokens still parsed)")
      .option("--n-predict", "-n", "tokens to generate (0 = only evaluate the prompt)", "128")
      .flag("--greedy", "always take the most likely token")
      .option("--temp", "", "temperature (default: the file's general.sampling.temp)")
      .option("--top-k", "", "top-k (default: the file's general.sampling.top_k)")
      .option("--top-p", "", "top-p (default: the file's general.sampling.top_p)")
      .option("--min-p", "", "min-p", "0")
      .option("--seed", "", "random seed", "0")
      .option("--batch", "-b", "prompt tokens per forward pass", "512")
      .option("--logprobs-out", "",
              "write float32 log-probs, one vocabulary row per prompt position")
      .flag("--help", "show this help");
  declare_engine_options(a);
  a.parse(argv);
  if (a.flag_set("--help")) {
    std::printf("%s", a.help().c_str());
    return 0;
  }
  if (a.has("--prompt") == a.has("--tokens"))
    throw UsageError("rawflow generate: give exactly one of --prompt and --tokens\n" + a.help());

  const LoadOptions lo = engine_options(a);
  auto t_load = std::chrono::steady_clock::now();
  LoadedModel m = load_model(a.get("--model"), lo);
  const Gemma4Config& cfg = m.text->config();
  std::fprintf(stderr, "loaded %s in %.2f s\n", a.get("--model").c_str(), seconds_since(t_load));

  std::vector<int32_t> prompt;
  if (a.has("--tokens")) {
    prompt = parse_token_list(a.get("--tokens"));
  } else {
    const std::string text =
        a.flag_set("--raw") ? a.get("--prompt") : render_user_prompt(a.get("--prompt"));
    prompt = m.tokenizer->encode(text, /*parse_special=*/true);
  }
  for (int32_t id : prompt)
    if (id < 0 || id >= cfg.vocab_size)
      throw UsageError("rawflow generate: token id " + std::to_string(id) +
                       " is outside the vocabulary (size " + std::to_string(cfg.vocab_size) + ")");

  SamplingParams sp;
  sp.greedy = a.flag_set("--greedy");
  sp.temperature = a.has("--temp") ? static_cast<float>(a.get_double("--temp")) : cfg.sampling_temp;
  sp.top_k = a.has("--top-k") ? static_cast<int32_t>(a.get_int("--top-k")) : cfg.sampling_top_k;
  sp.top_p = a.has("--top-p") ? static_cast<float>(a.get_double("--top-p")) : cfg.sampling_top_p;
  sp.min_p = static_cast<float>(a.get_double("--min-p"));
  sp.seed = static_cast<uint64_t>(a.get_int("--seed"));
  Sampler sampler(sp);

  const int64_t n_predict = a.get_int("--n-predict");
  const int64_t batch = std::max<long long>(1, a.get_int("--batch"));
  std::ofstream lp_out;
  if (a.has("--logprobs-out")) {
    lp_out.open(a.get("--logprobs-out"), std::ios::binary);
    if (!lp_out)
      throw UsageError("rawflow generate: cannot write `" + a.get("--logprobs-out") + "`");
  }

  KvCache cache(cfg);
  std::vector<float> last_logits;
  std::vector<float> lp(static_cast<size_t>(cfg.vocab_size));
  auto t_prefill = std::chrono::steady_clock::now();
  for (size_t at = 0; at < prompt.size(); at += static_cast<size_t>(batch)) {
    SequenceChunk ch;
    ch.cache = &cache;
    ch.tokens.assign(prompt.begin() + at, prompt.begin() + std::min(prompt.size(), at + batch));
    ch.logits = lp_out.is_open() ? LogitsWanted::All : LogitsWanted::Last;
    std::span<SequenceChunk> one(&ch, 1);
    ForwardResult r = m.text->forward(one);
    const auto& rows = r.logits[0];
    const size_t n_rows = rows.size() / static_cast<size_t>(cfg.vocab_size);
    if (lp_out.is_open())
      for (size_t i = 0; i < n_rows; ++i) {
        log_softmax(std::span<const float>(rows.data() + i * cfg.vocab_size, cfg.vocab_size), lp);
        lp_out.write(reinterpret_cast<const char*>(lp.data()),
                     static_cast<std::streamsize>(lp.size() * sizeof(float)));
      }
    last_logits.assign(rows.end() - cfg.vocab_size, rows.end());
  }
  const double prefill_s = seconds_since(t_prefill);
  if (lp_out.is_open()) {
    lp_out.close();
    if (!lp_out)
      throw UsageError("rawflow generate: writing `" + a.get("--logprobs-out") + "` failed");
  }

  const std::vector<int32_t> stops = stop_ids(m.tokenizer->vocab());
  StreamingDetokenizer detok(*m.tokenizer);
  auto t_decode = std::chrono::steady_clock::now();
  int64_t generated = 0;
  for (; generated < n_predict; ++generated) {
    const int32_t next = sampler.sample(last_logits);
    if (std::find(stops.begin(), stops.end(), next) != stops.end()) break;
    const std::string text = detok.push(next);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    if (generated + 1 == n_predict) {
      ++generated;
      break;
    }
    SequenceChunk ch;
    ch.cache = &cache;
    ch.tokens = {next};
    std::span<SequenceChunk> one(&ch, 1);
    last_logits = std::move(m.text->forward(one).logits[0]);
  }
  const std::string rest = detok.flush();
  std::fwrite(rest.data(), 1, rest.size(), stdout);
  if (n_predict > 0) std::fputc('\n', stdout);
  const double decode_s = seconds_since(t_decode);
  std::fprintf(
      stderr,
      "prompt: %zu tokens in %.3f s (%.1f t/s); generated: %lld tokens in %.3f s (%.1f t/s)\n",
      prompt.size(), prefill_s, prompt.size() / std::max(prefill_s, 1e-9),
      static_cast<long long>(generated), decode_s, generated / std::max(decode_s, 1e-9));
  return 0;
}

}  // namespace rawflow::cli
