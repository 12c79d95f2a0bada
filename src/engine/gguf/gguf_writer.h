// GgufWriter: builds a GGUF v3 file (metadata, tensor table, aligned tensor data). Used by
// `ondol model make-dummy` and by tests that need small model files. Mistakes in what is added
// (duplicate key, bad shape, wrong byte count) are recorded and reported by write_*, so building
// a file reads as a list of set_/add_ calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "common/result.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_value.h"
#include "engine/gguf/tensor_type.h"

namespace ondol::engine {

class GgufWriter {
 public:
  // Called once per tensor while writing, with a zeroed buffer of exactly the tensor's bytes.
  using TensorFill = std::function<void(std::span<std::byte> out)>;

  // An alignment other than 32 is recorded as general.alignment.
  explicit GgufWriter(uint32_t alignment = kGgufDefaultAlignment);

  void set_u8(std::string_view key, uint8_t v);
  void set_i8(std::string_view key, int8_t v);
  void set_u16(std::string_view key, uint16_t v);
  void set_i16(std::string_view key, int16_t v);
  void set_u32(std::string_view key, uint32_t v);
  void set_i32(std::string_view key, int32_t v);
  void set_u64(std::string_view key, uint64_t v);
  void set_i64(std::string_view key, int64_t v);
  void set_f32(std::string_view key, float v);
  void set_f64(std::string_view key, double v);
  void set_bool(std::string_view key, bool v);
  void set_string(std::string_view key, std::string_view v);
  void set_string_array(std::string_view key, std::span<const std::string> values);
  void set_string_array(std::string_view key, std::span<const std::string_view> values);
  void set_f32_array(std::string_view key, std::span<const float> values);
  void set_i32_array(std::string_view key, std::span<const int32_t> values);
  void set_u32_array(std::string_view key, std::span<const uint32_t> values);

  // `ne` in ggml order (ne[0] contiguous). The span is borrowed until the write_* call.
  void add_tensor(std::string_view name, TensorType type, std::span<const uint64_t> ne,
                  std::span<const std::byte> data);
  void add_tensor(std::string_view name, TensorType type, std::span<const uint64_t> ne,
                  TensorFill fill);

  Status write_file(const std::string& path) const;
  Result<std::vector<std::byte>> write_memory() const;

 private:
  struct PendingTensor {
    std::string name;
    TensorType type;
    std::vector<uint64_t> ne;
    uint64_t offset;  // within the data section
    uint64_t num_bytes;
    std::span<const std::byte> data;  // empty when fill is set
    TensorFill fill;
  };
  using Sink = std::function<bool(const void* data, size_t size)>;

  bool begin_key(std::string_view key, GgufType type);
  void add_tensor_info(std::string_view name, TensorType type, std::span<const uint64_t> ne,
                       std::span<const std::byte> data, TensorFill fill);
  Status write_to(const Sink& sink) const;

  uint32_t alignment_;
  std::string metadata_;  // serialised key/value entries
  uint64_t num_metadata_ = 0;
  std::unordered_set<std::string> keys_;
  std::vector<PendingTensor> tensors_;
  uint64_t data_bytes_ = 0;  // data section size so far, padding included
  std::optional<Error> first_error_;
};

}  // namespace ondol::engine
