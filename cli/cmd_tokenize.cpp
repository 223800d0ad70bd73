// `rawflow tokenize`: token ids of text, with a model's (or a tokenizer.json's) vocabulary.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "model/error.h"
#include "model/formats/gguf.h"
#include "model/tokenizer/tokenizer.h"

namespace rawflow::cli {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Vocab load_vocab(const std::string& path) {
  if (ends_with(path, ".json")) return Vocab::from_tokenizer_json(path);
  auto f = GgufFile::open(path);
  return Vocab::from_gguf(*f);
}

// One input line: a JSON string, or an object with a "text" string.
std::string line_text(const std::string& line, const std::string& path, size_t line_no) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(path + ":" + std::to_string(line_no) + ": not JSON: " + e.what());
  }
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("text") && j["text"].is_string())
    return j["text"].get<std::string>();
  throw UsageError(path + ":" + std::to_string(line_no) +
                   ": expected a JSON string or an object with a \"text\" string");
}

}  // namespace

int cmd_tokenize(const CommandArgs& argv) {
  Args a("tokenize", "rawflow tokenize --model FILE (--text TEXT | --jsonl IN [--out OUT])");
  a.option("--model", "-m", "model GGUF, or a tokenizer.json")
      .option("--text", "-t", "text to tokenize; prints the ids")
      .option("--jsonl", "", "input: one JSON string (or {\"text\": ...}) per line")
      .option("--out", "-o", "output for --jsonl: one {\"ids\": [...], \"decoded\": ...} per line",
              "-")
      .flag("--no-special", "match only user-defined token strings, not control tokens")
      .flag("--quiet", "no timing line on stderr");
  if (!a.parse_or_help(argv)) return 0;
  const bool parse_special = !a.flag_set("--no-special");
  const bool quiet = a.flag_set("--quiet");

  const auto t_load = std::chrono::steady_clock::now();
  const Tokenizer tok(load_vocab(a.get("--model")));
  const double load_s = seconds_since(t_load);
  if (!quiet)
    std::fprintf(stderr, "tokenize: %zu tokens, %zu merges loaded in %.3f s\n", tok.vocab().size(),
                 tok.vocab().merges.size(), load_s);

  if (auto text = a.get_opt("--text")) {
    const auto ids = tok.encode(*text, parse_special);
    for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? " %d" : "%d", ids[i]);
    std::printf("\n");
    return 0;
  }
  const std::string in_path = a.get("--jsonl");
  std::ifstream in(in_path, std::ios::binary);
  if (!in) throw UsageError("rawflow tokenize: cannot open `" + in_path + "`");
  std::vector<std::string> texts;
  std::string line;
  size_t bytes = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    texts.push_back(line_text(line, in_path, texts.size() + 1));
    bytes += texts.back().size();
  }

  std::vector<std::vector<int32_t>> all(texts.size());
  const auto t_enc = std::chrono::steady_clock::now();
  size_t n_tokens = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    all[i] = tok.encode(texts[i], parse_special);
    n_tokens += all[i].size();
  }
  const double enc_s = seconds_since(t_enc);

  const std::string out_path = a.get("--out");
  std::ofstream file;
  if (out_path != "-") {
    file.open(out_path, std::ios::binary);
    if (!file) throw UsageError("rawflow tokenize: cannot write `" + out_path + "`");
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    nlohmann::json j;
    j["ids"] = all[i];
    j["decoded"] = tok.decode(all[i]);
    // Decoded text may hold invalid UTF-8 (byte tokens of a broken input); keep the line valid
    // JSON.
    const std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    if (out_path == "-")
      std::fwrite(s.data(), 1, s.size(), stdout);
    else
      file << s;
  }
  if (file.is_open() && !file.good())
    throw UsageError("rawflow tokenize: write to `" + out_path + "` failed");
  if (!quiet)
    std::fprintf(stderr, "tokenize: %zu lines, %zu bytes -> %zu tokens in %.3f s (%.2f MB/s)\n",
                 texts.size(), bytes, n_tokens, enc_s, enc_s > 0 ? bytes / enc_s / 1e6 : 0.0);
  return 0;
}

}  // namespace rawflow::cli
