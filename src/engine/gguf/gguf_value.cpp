#include "engine/gguf/gguf_value.h"

#include <utility>

namespace ondol::engine {

std::string_view gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::U8:
      return "u8";
    case GgufType::I8:
      return "i8";
    case GgufType::U16:
      return "u16";
    case GgufType::I16:
      return "i16";
    case GgufType::U32:
      return "u32";
    case GgufType::I32:
      return "i32";
    case GgufType::F32:
      return "f32";
    case GgufType::Bool:
      return "bool";
    case GgufType::String:
      return "string";
    case GgufType::Array:
      return "array";
    case GgufType::U64:
      return "u64";
    case GgufType::I64:
      return "i64";
    case GgufType::F64:
      return "f64";
  }
  return "unknown";
}

size_t gguf_type_size(GgufType type) {
  switch (type) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::Bool:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64:
      return 8;
    case GgufType::String:
    case GgufType::Array:
      return 0;
  }
  return 0;
}

bool gguf_type_is_integer(GgufType type) {
  switch (type) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::U16:
    case GgufType::I16:
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::U64:
    case GgufType::I64:
      return true;
    default:
      return false;
  }
}

GgufValue GgufValue::from_unsigned(GgufType type, uint64_t v) {
  GgufValue out;
  out.type_ = type;
  out.u64_ = v;
  out.i64_ = static_cast<int64_t>(v);
  return out;
}

GgufValue GgufValue::from_signed(GgufType type, int64_t v) {
  GgufValue out;
  out.type_ = type;
  out.i64_ = v;
  out.u64_ = static_cast<uint64_t>(v);
  return out;
}

GgufValue GgufValue::from_float(GgufType type, double v) {
  GgufValue out;
  out.type_ = type;
  out.f64_ = v;
  return out;
}

GgufValue GgufValue::from_bool(bool v) {
  GgufValue out;
  out.type_ = GgufType::Bool;
  out.u64_ = v ? 1 : 0;
  return out;
}

GgufValue GgufValue::from_string(std::string_view v) {
  GgufValue out;
  out.type_ = GgufType::String;
  out.str_ = v;
  return out;
}

GgufValue GgufValue::from_array(GgufArray array) {
  GgufValue out;
  out.type_ = GgufType::Array;
  out.array_ = std::move(array);
  return out;
}

}  // namespace ondol::engine
