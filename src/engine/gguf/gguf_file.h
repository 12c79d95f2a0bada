// GgufFile: a parsed, validated GGUF (v2/v3) file. Metadata and tensors are views into the
// read-only mapping (or into the caller's buffer for open_memory), valid while the GgufFile
// lives. Opening validates the whole layout, so every tensor view handed out lies inside the
// file, is aligned, and does not overlap another.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "engine/gguf/gguf_value.h"
#include "engine/gguf/mapped_file.h"
#include "engine/gguf/tensor_type.h"

namespace ondol::engine {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
inline constexpr uint32_t kGgufMaxDims = 4;
inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr std::string_view kGgufAlignmentKey = "general.alignment";

struct GgufTensor {
  std::string_view name;
  TensorType type = TensorType::F32;
  uint32_t num_dims = 0;
  // ggml order: ne[0] is the contiguous (fastest-varying) dimension; unused dims are 1.
  // A llama weight matrix of shape (rows=out, cols=in) is ne = {in, out, 1, 1}.
  std::array<uint64_t, kGgufMaxDims> ne{1, 1, 1, 1};
  uint64_t offset = 0;  // bytes from the start of the data section
  uint64_t num_bytes = 0;
  const std::byte* data = nullptr;  // into the mapping; aligned to the file's alignment

  uint64_t num_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

struct GgufMetadataEntry {
  std::string_view key;
  GgufValue value;
};

struct GgufOpenOptions {
  // Accept tensors of ggml types the engine has no kernels for (for `ondol model info`); their
  // layout is still validated.
  bool allow_unsupported_types = false;
};

class GgufFile {
 public:
  static Result<GgufFile> open(const std::string& path, GgufOpenOptions options = {});
  // Parses a buffer the caller keeps alive for the GgufFile's lifetime.
  static Result<GgufFile> open_memory(std::span<const std::byte> bytes,
                                      GgufOpenOptions options = {});

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute offset of the data section
  uint64_t file_size() const { return bytes_.size(); }
  const std::string& path() const { return file_.path(); }

  const std::vector<GgufMetadataEntry>& metadata() const { return metadata_; }  // file order
  const std::vector<GgufTensor>& tensors() const { return tensors_; }           // file order

  bool has(std::string_view key) const { return find(key) != nullptr; }
  const GgufValue* find(std::string_view key) const;
  const GgufTensor* find_tensor(std::string_view name) const;

  // Typed accessors: an error names the key when it is missing or of another type.
  // Integer getters accept any integer type whose value fits; get_f32 accepts f32 and f64.
  Result<std::string_view> get_string(std::string_view key) const;
  Result<uint32_t> get_u32(std::string_view key) const;
  Result<uint64_t> get_u64(std::string_view key) const;
  Result<int32_t> get_i32(std::string_view key) const;
  Result<float> get_f32(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<std::span<const std::string_view>> get_string_array(std::string_view key) const;
  Result<std::vector<float>> get_f32_array(std::string_view key) const;
  Result<std::vector<int32_t>> get_i32_array(std::string_view key) const;

  // The fallback when the key is absent; still an error when present with the wrong type.
  Result<std::string_view> get_string_or(std::string_view key, std::string_view fallback) const;
  Result<uint32_t> get_u32_or(std::string_view key, uint32_t fallback) const;
  Result<float> get_f32_or(std::string_view key, float fallback) const;
  Result<bool> get_bool_or(std::string_view key, bool fallback) const;

 private:
  friend class GgufParser;

  MappedFile file_;  // empty for open_memory
  std::span<const std::byte> bytes_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<GgufMetadataEntry> metadata_;
  std::vector<GgufTensor> tensors_;
  std::unordered_map<std::string_view, size_t> metadata_index_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace ondol::engine
