#include "model/model_loader.h"

#include <filesystem>

#include "model/error.h"
#include "model/formats/gguf.h"
#include "model/formats/hf_checkpoint.h"
#include "model/tokenizer/vocab.h"

namespace rawflow {
namespace {

class GgufWeights : public WeightSource {
 public:
  explicit GgufWeights(std::unique_ptr<GgufFile> f)
      : config_(Gemma4Config::from_gguf(*f)), tensors_(std::move(f)) {}
  const TensorRef* find(const std::string& name) const override { return tensors_.find(name); }
  const std::vector<TensorRef>& all() const override { return tensors_.all(); }
  const Gemma4Config& config() const override { return config_; }
  const std::string& path() const override { return tensors_.path(); }
  size_t file_bytes() const override { return tensors_.file().file_size(); }
  const GgufFile& file() const { return tensors_.file(); }

 private:
  Gemma4Config config_;
  GgufTensors tensors_;
};

}  // namespace

std::unique_ptr<WeightSource> open_weights(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw ModelFileError(path + ": no such file or directory");
  if (fs::is_directory(path, ec)) return HfCheckpoint::open(path);
  return std::make_unique<GgufWeights>(GgufFile::open(path));
}

LoadedModel load_model(const std::string& path, const LoadOptions& opt) {
  auto weights = open_weights(path);
  Vocab vocab;
  if (auto* g = dynamic_cast<GgufWeights*>(weights.get())) {
    vocab = Vocab::from_gguf(g->file());
  } else {
    const auto tj = std::filesystem::path(path) / "tokenizer.json";
    if (!std::filesystem::exists(tj))
      throw ModelFileError(path + ": tokenizer.json is missing from the model directory");
    vocab = Vocab::from_tokenizer_json(tj.string());
  }
  if (static_cast<int64_t>(vocab.size()) > weights->config().vocab_size)
    throw ModelFileError(path + ": the vocabulary has " + std::to_string(vocab.size()) +
                         " tokens but token_embd has " +
                         std::to_string(weights->config().vocab_size) + " rows");
  LoadedModel m;
  LoadOptions text_opt = opt;
  if (text_opt.suppress_ids.empty() && weights->config().suppress_ids.empty())
    for (const char* s : {"<image|>", "<audio|>"})
      if (int32_t id = vocab.find(s); id >= 0) text_opt.suppress_ids.push_back(id);
  m.tokenizer = std::make_unique<Tokenizer>(std::move(vocab));
  m.text = std::make_unique<Gemma4Text>(std::move(weights), text_opt);
  return m;
}

}  // namespace rawflow
