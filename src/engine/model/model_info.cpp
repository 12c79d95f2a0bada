#include "engine/model/model_info.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "engine/tokenizer/vocab.h"

namespace ondol::engine {

namespace {

std::string human_bytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", v, units[u]);
}

std::string_view tokenizer_kind_name(TokenizerKind kind) {
  switch (kind) {
    case TokenizerKind::SentencePiece:
      return "llama (SentencePiece BPE)";
    case TokenizerKind::BytePair:
      return "gpt2 (byte-level BPE)";
    case TokenizerKind::WordPiece:
      return "bert (WordPiece)";
  }
  return "?";
}

}  // namespace

ModelInfo model_info(const GgufFile& file) {
  ModelInfo info;
  info.path = file.path();
  if (auto name = file.get_string("general.name")) info.name = std::string(*name);
  if (auto arch = file.get_string("general.architecture")) info.architecture = std::string(*arch);

  std::map<std::string, TensorTypeBytes> by_type;
  for (const GgufTensor& t : file.tensors()) {
    TensorTypeBytes& b = by_type[std::string(tensor_type_name(t.type))];
    b.type = std::string(tensor_type_name(t.type));
    b.num_tensors += 1;
    b.num_elements += static_cast<int64_t>(t.num_elements());
    b.num_bytes += static_cast<int64_t>(t.num_bytes);
    info.num_params += static_cast<int64_t>(t.num_elements());
    info.weight_bytes += static_cast<int64_t>(t.num_bytes);
  }
  for (auto& [name, b] : by_type) info.by_type.push_back(b);
  std::sort(
      info.by_type.begin(), info.by_type.end(),
      [](const TensorTypeBytes& a, const TensorTypeBytes& b) { return a.num_bytes > b.num_bytes; });
  info.tied_embeddings = file.find_tensor("token_embd.weight") != nullptr &&
                         file.find_tensor("output.weight") == nullptr;

  if (auto config = read_model_config(file)) {
    info.config = *config;
    const int64_t kv_values = 2 * int64_t{config->num_layers} * config->kv_dim();
    info.kv_bytes_per_token_f16 = kv_values * 2;
    info.kv_bytes_per_token_f32 = kv_values * 4;
    info.kv_bytes_per_token_i8 =
        kv_values + 2 * int64_t{config->num_layers} * config->num_kv_heads * 4;
  } else {
    info.config_error = config.error().message;
  }

  if (auto vocab = Vocab::from_gguf(file)) {
    info.tokenizer = std::string(tokenizer_kind_name(vocab->kind()));
    info.vocab_size = static_cast<int64_t>(vocab->size());
  } else {
    info.tokenizer = "none: " + vocab.error().message;
  }
  info.has_chat_template = file.has("tokenizer.chat_template");
  return info;
}

std::string format_model_info(const ModelInfo& info) {
  std::string s;
  auto line = [&s](std::string_view key, const std::string& value) {
    s += fmt::format("{:<22}{}\n", fmt::format("{}:", key), value);
  };
  line("file", info.path);
  if (!info.name.empty()) line("name", info.name);
  line("architecture", info.architecture.empty() ? "(none)" : info.architecture);
  if (info.config) {
    const ModelConfig& c = *info.config;
    line("layers", fmt::format("{}", c.num_layers));
    line("embedding", fmt::format("{}", c.dim));
    line("feed-forward", fmt::format("{}", c.ffn_dim));
    line("heads", fmt::format("{} query, {} key/value, head_dim {}", c.num_heads, c.num_kv_heads,
                              c.head_dim));
    line("vocab (embedding)", fmt::format("{}", c.vocab_size));
    line("context", fmt::format("{}", c.context_length));
    line("rope", fmt::format("{}, base {}, {} of {} dims, scale {}",
                             c.rope.style == kernels::RopeStyle::kNeox ? "neox" : "normal",
                             c.rope.freq_base, c.rope.rotary_dim, c.head_dim, c.rope.freq_scale));
    line("rms eps", fmt::format("{}", c.rms_eps));
    line("output", info.tied_embeddings ? "tied to token_embd" : "output.weight");
  } else {
    line("runnable", "no: " + info.config_error);
  }
  line("parameters", fmt::format("{} ({:.1f} M)", info.num_params, info.num_params / 1e6));
  line("weights", human_bytes(info.weight_bytes));
  for (const TensorTypeBytes& b : info.by_type) {
    line(fmt::format("  {}", b.type), fmt::format("{} tensors, {} elements, {}", b.num_tensors,
                                                  b.num_elements, human_bytes(b.num_bytes)));
  }
  line("tokenizer", info.tokenizer);
  if (info.vocab_size > 0) line("vocab (tokenizer)", fmt::format("{}", info.vocab_size));
  line("chat template", info.has_chat_template ? "yes" : "no");
  if (info.config) {
    line("KV per token",
         fmt::format("{} (F16), {} (F32), {} (int8)", human_bytes(info.kv_bytes_per_token_f16),
                     human_bytes(info.kv_bytes_per_token_f32),
                     human_bytes(info.kv_bytes_per_token_i8)));
    const int64_t ctx = info.config->context_length;
    line("memory at context",
         fmt::format("{} = weights {} + F16 KV {} for {} tokens",
                     human_bytes(info.weight_bytes + ctx * info.kv_bytes_per_token_f16),
                     human_bytes(info.weight_bytes), human_bytes(ctx * info.kv_bytes_per_token_f16),
                     ctx));
  }
  return s;
}

}  // namespace ondol::engine
