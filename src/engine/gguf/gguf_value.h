// GgufValue: one metadata value of a GGUF file, as a view into the file's bytes. Strings are
// string_views and scalar arrays a pointer to their little-endian elements, so reading a
// 150k-entry vocabulary allocates one vector of views, not 150k strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace ondol::engine {

// On-disk value type ids (gguf_type).
enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

inline constexpr uint32_t kNumGgufTypes = 13;

std::string_view gguf_type_name(GgufType type);
// Bytes of one element of a fixed-size type; 0 for String and Array.
size_t gguf_type_size(GgufType type);
bool gguf_type_is_integer(GgufType type);

class GgufValue;

// An array value. Exactly one of the three representations is used, by element_type:
// fixed-size scalars -> `data` (count * gguf_type_size bytes, unaligned, little-endian);
// String -> `strings`; Array -> `arrays`.
struct GgufArray {
  GgufType element_type = GgufType::U8;
  uint64_t count = 0;
  const std::byte* data = nullptr;
  std::vector<std::string_view> strings;
  std::vector<GgufValue> arrays;

  // Element i of a scalar array widened to the requested type. Precondition: i < count and the
  // element type is a scalar (checked by callers through GgufFile's typed accessors).
  template <typename T>
  T scalar_at(uint64_t i) const;
};

class GgufValue {
 public:
  GgufValue() = default;
  static GgufValue from_unsigned(GgufType type, uint64_t v);
  static GgufValue from_signed(GgufType type, int64_t v);
  static GgufValue from_float(GgufType type, double v);
  static GgufValue from_bool(bool v);
  static GgufValue from_string(std::string_view v);
  static GgufValue from_array(GgufArray array);

  GgufType type() const { return type_; }
  bool is_integer() const { return gguf_type_is_integer(type_); }
  bool is_float() const { return type_ == GgufType::F32 || type_ == GgufType::F64; }

  // Raw accessors: valid only for the matching type family.
  uint64_t as_unsigned() const { return u64_; }
  int64_t as_signed() const { return i64_; }
  double as_double() const { return f64_; }
  bool as_bool() const { return u64_ != 0; }
  std::string_view as_string() const { return str_; }
  const GgufArray& as_array() const { return array_; }

 private:
  GgufType type_ = GgufType::U8;
  uint64_t u64_ = 0;  // unsigned integers and bool
  int64_t i64_ = 0;   // signed integers
  double f64_ = 0;    // floats
  std::string_view str_;
  GgufArray array_;
};

template <typename T>
T GgufArray::scalar_at(uint64_t i) const {
  const std::byte* p = data + i * gguf_type_size(element_type);
  auto load = [p](auto zero) {
    decltype(zero) v;
    std::memcpy(&v, p, sizeof v);
    return v;
  };
  switch (element_type) {
    case GgufType::U8:
      return static_cast<T>(load(uint8_t{}));
    case GgufType::I8:
      return static_cast<T>(load(int8_t{}));
    case GgufType::U16:
      return static_cast<T>(load(uint16_t{}));
    case GgufType::I16:
      return static_cast<T>(load(int16_t{}));
    case GgufType::U32:
      return static_cast<T>(load(uint32_t{}));
    case GgufType::I32:
      return static_cast<T>(load(int32_t{}));
    case GgufType::U64:
      return static_cast<T>(load(uint64_t{}));
    case GgufType::I64:
      return static_cast<T>(load(int64_t{}));
    case GgufType::F32:
      return static_cast<T>(load(float{}));
    case GgufType::F64:
      return static_cast<T>(load(double{}));
    case GgufType::Bool:
      return static_cast<T>(load(uint8_t{}) != 0);
    case GgufType::String:
    case GgufType::Array:
      break;
  }
  return T{};
}

}  // namespace ondol::engine
