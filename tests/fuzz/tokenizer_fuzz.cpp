// libFuzzer target: arbitrary bytes through every tokenizer kind (SentencePiece, byte-level
// BPE, WordPiece) built from the shared vocab fixtures. Decoding must give back bytes, and the
// incremental detokenizer must only ever emit valid UTF-8.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/incremental_detokenizer.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/utf8.h"

namespace {

using namespace ondol;
using namespace ondol::engine;

std::vector<Tokenizer>& tokenizers() {
  static std::vector<Tokenizer> all = [] {
    std::vector<Tokenizer> out;
    for (const char* name : {"llama-spm", "gpt-2", "deepseek-llm", "bert-bge"}) {
      const std::string path =
          std::string(ONDOL_SHARED_DIR) + "/fixtures/tokenizer/ggml-vocab-" + name + ".gguf";
      Result<GgufFile> file = GgufFile::open(path);
      if (!file.ok()) std::abort();
      Result<Tokenizer> t = Tokenizer::from_gguf(*file);
      if (!t.ok()) std::abort();
      out.push_back(std::move(t).value());
    }
    return out;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const Tokenizer& t : tokenizers()) {
    const std::vector<TokenId> ids =
        t.encode(text, EncodeOptions{.add_special = true, .parse_special = (size % 2) == 0});
    for (TokenId id : ids) {
      if (!t.vocab().contains(id)) std::abort();
    }
    (void)t.decode(ids);
    IncrementalDetokenizer detok(t);
    std::string out;
    for (TokenId id : ids) detok.push(id, out);
    detok.flush(out);
    if (!utf8::is_valid(out)) std::abort();
  }
  return 0;
}
