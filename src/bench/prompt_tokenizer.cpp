#include "bench/prompt_tokenizer.h"

#include <utility>

#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"

namespace ondol::bench {

namespace {

constexpr engine::EncodeOptions kPromptBody{.add_special = false, .parse_special = false};

class GgufPromptTokenizer final : public PromptTokenizer {
 public:
  GgufPromptTokenizer(engine::GgufFile file, engine::Tokenizer tokenizer)
      : file_(std::move(file)), tokenizer_(std::move(tokenizer)) {}

  int64_t count(std::string_view text) const override {
    return static_cast<int64_t>(tokenizer_.encode(text, kPromptBody).size());
  }

  std::string first_tokens(std::string_view text, int64_t num_tokens) const override {
    std::vector<engine::TokenId> ids = tokenizer_.encode(text, kPromptBody);
    if (num_tokens < static_cast<int64_t>(ids.size())) ids.resize(static_cast<size_t>(num_tokens));
    return tokenizer_.decode(ids);
  }

 private:
  engine::GgufFile file_;  // kept open: the tokenizer may refer to its mapped data
  engine::Tokenizer tokenizer_;
};

}  // namespace

Result<std::unique_ptr<PromptTokenizer>> load_gguf_tokenizer(const std::string& path) {
  auto file = engine::GgufFile::open(path);
  if (!file) return make_error("--tokenizer " + path + ": " + file.error().message);
  auto tokenizer = engine::Tokenizer::from_gguf(*file);
  if (!tokenizer) return make_error("--tokenizer " + path + ": " + tokenizer.error().message);
  std::unique_ptr<PromptTokenizer> out =
      std::make_unique<GgufPromptTokenizer>(std::move(file).value(), std::move(tokenizer).value());
  return out;
}

}  // namespace ondol::bench
