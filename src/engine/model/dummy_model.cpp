#include "engine/model/dummy_model.h"

#include <fmt/format.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/gguf/gguf_writer.h"
#include "engine/kernels/quantize.h"
#include "engine/tokenizer/token.h"

namespace ondol::engine {

namespace {

constexpr DummyShape kShapes[] = {
    {.name = "llama-110m",
     .arch = Architecture::kLlama,
     .dim = 768,
     .num_layers = 12,
     .num_heads = 12,
     .num_kv_heads = 12,
     .ffn_dim = 2048,
     .vocab_size = 32000,
     .context_length = 2048,
     .tied_embeddings = true},
    {.name = "tiny",
     .arch = Architecture::kLlama,
     .dim = 256,
     .num_layers = 2,
     .num_heads = 4,
     .num_kv_heads = 2,
     .ffn_dim = 512,
     .vocab_size = 1024,
     .context_length = 256,
     .tied_embeddings = false},
    {.name = "tiny-qwen2",
     .arch = Architecture::kQwen2,
     .dim = 256,
     .num_layers = 2,
     .num_heads = 4,
     .num_kv_heads = 2,
     .ffn_dim = 512,
     .vocab_size = 1024,
     .context_length = 256,
     .tied_embeddings = false},
};

constexpr int kNumByteTokens = 256;
constexpr int kNumSpecialTokens = 3;  // <unk> <s> </s>

// splitmix64: a small, portable generator, so files are identical on every platform.
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>((next() >> 11) + 1) * 0x1p-53; }  // (0, 1]
};

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001B3ull;
  return h;
}

// Box-Muller, two values per pair of uniforms.
void fill_normal(Rng& rng, float* out, int64_t n, float stddev) {
  for (int64_t i = 0; i < n; i += 2) {
    const double r = std::sqrt(-2.0 * std::log(rng.uniform()));
    const double a = 2.0 * M_PI * rng.uniform();
    out[i] = static_cast<float>(r * std::cos(a)) * stddev;
    if (i + 1 < n) out[i + 1] = static_cast<float>(r * std::sin(a)) * stddev;
  }
}

struct Vocabulary {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
};

// Specials, bytes, then pieces in falling score: single characters, then letter pairs and
// triples, each bare and with the "▁" word-start marker, until vocab_size tokens. Every prefix
// of a piece is itself a piece, so SentencePiece BPE can merge up to any of them.
Vocabulary make_vocabulary(int vocab_size) {
  Vocabulary v;
  auto add = [&](std::string text, TokenType type, float score) {
    v.tokens.push_back(std::move(text));
    v.types.push_back(static_cast<int32_t>(type));
    v.scores.push_back(score);
  };
  add("<unk>", TokenType::Unknown, 0.0f);
  add("<s>", TokenType::Control, 0.0f);
  add("</s>", TokenType::Control, 0.0f);
  for (int b = 0; b < kNumByteTokens; ++b) add(fmt::format("<0x{:02X}>", b), TokenType::Byte, 0.0f);

  const std::string space = "\xE2\x96\x81";  // U+2581
  std::vector<std::string> pieces = {space};
  const std::string singles =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()";
  for (char c : singles) {
    pieces.push_back(std::string(1, c));
    pieces.push_back(space + c);
  }
  const std::string letters = "etaoinshrdlcumwfgypbvkjxqz";  // English letter frequency order
  for (char a : letters) {
    for (char b : letters) {
      pieces.push_back(std::string{a, b});
      pieces.push_back(space + a + b);
    }
  }
  for (char a : letters) {
    for (char b : letters) {
      for (char c : letters) {
        pieces.push_back(std::string{a, b, c});
        pieces.push_back(space + a + b + c);
      }
    }
  }
  for (size_t i = 0; v.tokens.size() < static_cast<size_t>(vocab_size); ++i) {
    const std::string text =
        i < pieces.size() ? pieces[i] : fmt::format("{}w{}", space, i - pieces.size());
    add(text, TokenType::Normal, -static_cast<float>(i));
  }
  return v;
}

}  // namespace

std::span<const DummyShape> dummy_shapes() {
  return kShapes;
}

std::optional<DummyShape> find_dummy_shape(std::string_view name) {
  for (const DummyShape& s : kShapes) {
    if (s.name == name) return s;
  }
  return std::nullopt;
}

Status write_dummy_model(std::string_view shape_name, kernels::WeightType type,
                         const std::string& path, uint64_t seed) {
  auto shape = find_dummy_shape(shape_name);
  if (!shape) {
    std::string names;
    for (const DummyShape& s : kShapes)
      names += fmt::format("{}{}", names.empty() ? "" : ", ", s.name);
    return make_error(fmt::format("unknown model shape '{}' (known: {})", shape_name, names));
  }
  return write_dummy_model(*shape, type, path, seed);
}

Status write_dummy_model(const DummyShape& s, kernels::WeightType type, const std::string& path,
                         uint64_t seed) {
  if (s.dim % s.num_heads != 0 || s.num_heads % s.num_kv_heads != 0 ||
      s.vocab_size < kNumSpecialTokens + kNumByteTokens + 1) {
    return make_error(fmt::format("inconsistent dummy shape '{}'", s.name));
  }
  const int head_dim = s.dim / s.num_heads;
  for (int k : {s.dim, s.ffn_dim, s.num_heads * head_dim}) {
    if (!kernels::is_valid_row_length(type, k)) {
      return make_error(fmt::format("shape '{}' has rows of {} values, not whole {} blocks", s.name,
                                    k, kernels::weight_type_info(type).name));
    }
  }

  GgufWriter w;
  const std::string arch(architecture_name(s.arch));
  const std::string p = arch + ".";
  w.set_string("general.architecture", arch);
  w.set_string("general.name",
               fmt::format("ondol dummy {} {}", s.name, kernels::weight_type_info(type).name));
  w.set_u32(p + "context_length", s.context_length);
  w.set_u32(p + "embedding_length", s.dim);
  w.set_u32(p + "feed_forward_length", s.ffn_dim);
  w.set_u32(p + "block_count", s.num_layers);
  w.set_u32(p + "attention.head_count", s.num_heads);
  w.set_u32(p + "attention.head_count_kv", s.num_kv_heads);
  w.set_f32(p + "attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_f32(p + "rope.freq_base", 10000.0f);
  w.set_u32(p + "rope.dimension_count", head_dim);

  const Vocabulary vocab = make_vocabulary(s.vocab_size);
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", vocab.tokens);
  w.set_f32_array("tokenizer.ggml.scores", vocab.scores);
  w.set_i32_array("tokenizer.ggml.token_type", vocab.types);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_bool("tokenizer.ggml.add_eos_token", false);

  const TensorType tensor_type = static_cast<TensorType>(type);
  // A (rows, cols) matrix of normal(0, 0.02) values, generated and converted one row at a time.
  auto add_matrix = [&](const std::string& name, int64_t rows, int64_t cols) {
    const uint64_t ne[2] = {static_cast<uint64_t>(cols), static_cast<uint64_t>(rows)};
    w.add_tensor(name, tensor_type, ne, [=](std::span<std::byte> out) {
      Rng rng{seed ^ fnv1a(name)};
      std::vector<float> row(cols);
      const int64_t bytes = kernels::row_bytes(type, cols);
      for (int64_t r = 0; r < rows; ++r) {
        fill_normal(rng, row.data(), cols, kDummyWeightStddev);
        kernels::quantize_row(type, row.data(), out.data() + r * bytes, cols);
      }
    });
  };
  auto add_vector = [&](const std::string& name, int64_t n, bool random) {
    const uint64_t ne[1] = {static_cast<uint64_t>(n)};
    w.add_tensor(name, TensorType::F32, ne, [=](std::span<std::byte> out) {
      auto* f = reinterpret_cast<float*>(out.data());
      if (random) {
        Rng rng{seed ^ fnv1a(name)};
        fill_normal(rng, f, n, kDummyWeightStddev);
      } else {
        std::fill(f, f + n, 1.0f);
      }
    });
  };

  const int q_dim = s.num_heads * head_dim;
  const int kv_dim = s.num_kv_heads * head_dim;
  add_matrix("token_embd.weight", s.vocab_size, s.dim);
  for (int l = 0; l < s.num_layers; ++l) {
    const std::string b = fmt::format("blk.{}.", l);
    add_vector(b + "attn_norm.weight", s.dim, false);
    add_matrix(b + "attn_q.weight", q_dim, s.dim);
    add_matrix(b + "attn_k.weight", kv_dim, s.dim);
    add_matrix(b + "attn_v.weight", kv_dim, s.dim);
    if (s.arch == Architecture::kQwen2) {
      add_vector(b + "attn_q.bias", q_dim, true);
      add_vector(b + "attn_k.bias", kv_dim, true);
      add_vector(b + "attn_v.bias", kv_dim, true);
    }
    add_matrix(b + "attn_output.weight", s.dim, q_dim);
    add_vector(b + "ffn_norm.weight", s.dim, false);
    add_matrix(b + "ffn_gate.weight", s.ffn_dim, s.dim);
    add_matrix(b + "ffn_up.weight", s.ffn_dim, s.dim);
    add_matrix(b + "ffn_down.weight", s.dim, s.ffn_dim);
  }
  add_vector("output_norm.weight", s.dim, false);
  if (!s.tied_embeddings) add_matrix("output.weight", s.vocab_size, s.dim);
  return w.write_file(path);
}

}  // namespace ondol::engine
