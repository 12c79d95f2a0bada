#include "engine/model/model_weights.h"

#include <fmt/format.h>

#include <string>

#include "engine/kernels/weight_type.h"

namespace ondol::engine {

namespace {

std::string shape_string(const GgufTensor& t) {
  std::string s = "[";
  for (uint32_t i = 0; i < t.num_dims; ++i) s += fmt::format("{}{}", i ? ", " : "", t.ne[i]);
  return s + "]";
}

// A (rows, cols) matrix is stored as ggml ne = {cols, rows}.
Result<kernels::WeightMatrix> get_matrix(const GgufFile& file, const std::string& name,
                                         int64_t rows, int64_t cols) {
  const GgufTensor* t = file.find_tensor(name);
  if (t == nullptr) return make_error(fmt::format("missing tensor '{}'", name));
  if (t->num_dims != 2 || t->ne[0] != static_cast<uint64_t>(cols) ||
      t->ne[1] != static_cast<uint64_t>(rows)) {
    return make_error(fmt::format("tensor '{}' has shape {}, expected [{}, {}]", name,
                                  shape_string(*t), cols, rows));
  }
  auto type = kernels::weight_type_from_ggml(static_cast<uint32_t>(t->type));
  if (!type) {
    return make_error(
        fmt::format("tensor '{}' has unsupported type {}", name, tensor_type_name(t->type)));
  }
  if (!kernels::is_valid_row_length(*type, cols)) {
    return make_error(fmt::format("tensor '{}': rows of {} values are not whole {} blocks", name,
                                  cols, kernels::weight_type_info(*type).name));
  }
  return kernels::WeightMatrix{.type = *type, .data = t->data, .num_rows = rows, .num_cols = cols};
}

// Norm weights and biases: F32 vectors of n values, read in place.
Result<const float*> get_vector(const GgufFile& file, const std::string& name, int64_t n) {
  const GgufTensor* t = file.find_tensor(name);
  if (t == nullptr) return make_error(fmt::format("missing tensor '{}'", name));
  if (t->num_elements() != static_cast<uint64_t>(n) || t->ne[0] != static_cast<uint64_t>(n)) {
    return make_error(
        fmt::format("tensor '{}' has shape {}, expected [{}]", name, shape_string(*t), n));
  }
  if (t->type != TensorType::F32) {
    return make_error(
        fmt::format("tensor '{}' has type {}, expected F32", name, tensor_type_name(t->type)));
  }
  return reinterpret_cast<const float*>(t->data);
}

}  // namespace

Result<ModelWeights> load_model_weights(const GgufFile& file, const ModelConfig& c) {
  ModelWeights w;
  auto embd = get_matrix(file, "token_embd.weight", c.vocab_size, c.dim);
  if (!embd) return embd.error();
  w.token_embd = *embd;
  auto norm = get_vector(file, "output_norm.weight", c.dim);
  if (!norm) return norm.error();
  w.output_norm = *norm;
  if (file.find_tensor("output.weight") != nullptr) {
    auto out = get_matrix(file, "output.weight", c.vocab_size, c.dim);
    if (!out) return out.error();
    w.output = *out;
  } else {
    w.output = w.token_embd;
    w.tied_output = true;
  }

  w.layers.resize(c.num_layers);
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = fmt::format("blk.{}.", l);
    LayerWeights& L = w.layers[l];
    struct MatrixSpec {
      kernels::WeightMatrix* dst;
      const char* name;
      int rows, cols;
    };
    const MatrixSpec matrices[] = {
        {&L.wq, "attn_q.weight", c.q_dim(), c.dim},
        {&L.wk, "attn_k.weight", c.kv_dim(), c.dim},
        {&L.wv, "attn_v.weight", c.kv_dim(), c.dim},
        {&L.wo, "attn_output.weight", c.dim, c.q_dim()},
        {&L.w_gate, "ffn_gate.weight", c.ffn_dim, c.dim},
        {&L.w_up, "ffn_up.weight", c.ffn_dim, c.dim},
        {&L.w_down, "ffn_down.weight", c.dim, c.ffn_dim},
    };
    for (const MatrixSpec& m : matrices) {
      auto r = get_matrix(file, p + m.name, m.rows, m.cols);
      if (!r) return r.error();
      *m.dst = *r;
    }
    struct VectorSpec {
      const float** dst;
      const char* name;
      int n;
    };
    std::vector<VectorSpec> vectors = {{&L.attn_norm, "attn_norm.weight", c.dim},
                                       {&L.ffn_norm, "ffn_norm.weight", c.dim}};
    if (c.arch == Architecture::kQwen2) {
      vectors.push_back({&L.bq, "attn_q.bias", c.q_dim()});
      vectors.push_back({&L.bk, "attn_k.bias", c.kv_dim()});
      vectors.push_back({&L.bv, "attn_v.bias", c.kv_dim()});
    }
    for (const VectorSpec& v : vectors) {
      auto r = get_vector(file, p + v.name, v.n);
      if (!r) return r.error();
      *v.dst = *r;
    }
  }
  return w;
}

}  // namespace ondol::engine
