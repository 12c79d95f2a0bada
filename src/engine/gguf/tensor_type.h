// TensorType: the ggml tensor type ids as stored in GGUF, with the block layout that gives a
// tensor's byte size. Quantised types store `block_size` elements in `bytes_per_block` bytes;
// plain types have a block of one element.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ondol::engine {

// Values are the on-disk ids (ggml_type); gaps are ids ggml has retired.
enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

struct TensorTypeInfo {
  TensorType type;
  std::string_view name;     // "Q4_K", as ggml and llama.cpp print it
  uint32_t block_size;       // elements per block
  uint32_t bytes_per_block;  // bytes per block
  bool supported;            // the engine has kernels for it
};

// The layout of a known type id, or nullopt for an id ggml never defined (or retired).
std::optional<TensorTypeInfo> tensor_type_info(uint32_t type_id);
// Shorthand for a type that is known to exist.
const TensorTypeInfo& tensor_type_info(TensorType type);
std::string_view tensor_type_name(TensorType type);

}  // namespace ondol::engine
