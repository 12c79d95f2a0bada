#include "engine/model/model_config.h"

#include <fmt/format.h>

#include <string>

namespace ondol::engine {

std::string_view architecture_name(Architecture arch) {
  switch (arch) {
    case Architecture::kLlama:
      return "llama";
    case Architecture::kQwen2:
      return "qwen2";
  }
  return "?";
}

namespace {

// Metadata values are u32 in the file; the model works with int, so refuse what cannot fit.
Result<int> get_int(const GgufFile& file, const std::string& key) {
  auto v = file.get_u32(key);
  if (!v) return v.error();
  if (*v == 0 || *v > (1u << 30))
    return make_error(fmt::format("{} = {} is out of range", key, *v));
  return static_cast<int>(*v);
}

}  // namespace

Result<ModelConfig> read_model_config(const GgufFile& file) {
  auto arch_name = file.get_string("general.architecture");
  if (!arch_name) return arch_name.error();
  ModelConfig c;
  if (*arch_name == "llama") {
    c.arch = Architecture::kLlama;
  } else if (*arch_name == "qwen2") {
    c.arch = Architecture::kQwen2;
  } else {
    return make_error(
        fmt::format("unsupported architecture '{}' (supported: llama, qwen2)", *arch_name));
  }
  const std::string p = std::string(*arch_name) + ".";

  auto num_layers = get_int(file, p + "block_count");
  auto dim = get_int(file, p + "embedding_length");
  auto ffn_dim = get_int(file, p + "feed_forward_length");
  auto num_heads = get_int(file, p + "attention.head_count");
  auto context = get_int(file, p + "context_length");
  for (const Result<int>* r : {&num_layers, &dim, &ffn_dim, &num_heads, &context}) {
    if (!*r) return r->error();
  }
  c.num_layers = *num_layers;
  c.dim = *dim;
  c.ffn_dim = *ffn_dim;
  c.num_heads = *num_heads;
  c.context_length = *context;

  c.num_kv_heads = c.num_heads;
  if (file.has(p + "attention.head_count_kv")) {
    auto kv = get_int(file, p + "attention.head_count_kv");
    if (!kv) return kv.error();
    c.num_kv_heads = *kv;
  }
  if (c.dim % c.num_heads != 0) {
    return make_error(
        fmt::format("embedding_length {} is not a multiple of head_count {}", c.dim, c.num_heads));
  }
  if (c.num_heads % c.num_kv_heads != 0) {
    return make_error(fmt::format("head_count {} is not a multiple of head_count_kv {}",
                                  c.num_heads, c.num_kv_heads));
  }
  c.head_dim = c.dim / c.num_heads;

  auto eps = file.get_f32_or(p + "attention.layer_norm_rms_epsilon", 1e-5f);
  if (!eps) return eps.error();
  if (!(*eps > 0.0f)) return make_error("attention.layer_norm_rms_epsilon must be positive");
  c.rms_eps = *eps;

  auto base = file.get_f32_or(p + "rope.freq_base", 10000.0f);
  if (!base) return base.error();
  auto rotary_dim = file.get_u32_or(p + "rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  if (!rotary_dim) return rotary_dim.error();
  auto scaling = file.get_string_or(p + "rope.scaling.type", "none");
  if (!scaling) return scaling.error();
  float freq_scale = 1.0f;
  if (*scaling == "linear") {
    auto factor = file.get_f32(p + "rope.scaling.factor");
    if (!factor) return factor.error();
    if (!(*factor > 0.0f)) return make_error("rope.scaling.factor must be positive");
    freq_scale = 1.0f / *factor;
  } else if (*scaling != "none") {
    return make_error(
        fmt::format("unsupported rope.scaling.type '{}' (supported: none, linear)", *scaling));
  }
  c.rope = kernels::RopeParams{
      .head_dim = c.head_dim,
      .rotary_dim = static_cast<int>(*rotary_dim),
      .freq_base = *base,
      .freq_scale = freq_scale,
      .style =
          c.arch == Architecture::kQwen2 ? kernels::RopeStyle::kNeox : kernels::RopeStyle::kNormal,
  };
  if (!kernels::is_valid(c.rope)) {
    return make_error(fmt::format("invalid RoPE parameters (dimension_count {}, head_dim {})",
                                  *rotary_dim, c.head_dim));
  }

  const GgufTensor* embd = file.find_tensor("token_embd.weight");
  if (embd == nullptr) return make_error("missing tensor 'token_embd.weight'");
  if (embd->num_dims != 2 || embd->ne[0] != static_cast<uint64_t>(c.dim) || embd->ne[1] == 0 ||
      embd->ne[1] > (1u << 30)) {
    return make_error(
        fmt::format("tensor 'token_embd.weight' has shape [{}, {}], expected [{}, "
                    "vocab]",
                    embd->ne[0], embd->ne[1], c.dim));
  }
  c.vocab_size = static_cast<int>(embd->ne[1]);
  return c;
}

}  // namespace ondol::engine
