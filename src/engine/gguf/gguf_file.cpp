#include "engine/gguf/gguf_file.h"

#include <algorithm>
#include <bit>
#include <limits>
#include <numeric>
#include <utility>

#include <fmt/format.h>

#include "engine/gguf/byte_reader.h"

namespace ondol::engine {

static_assert(std::endian::native == std::endian::little,
              "GGUF is little-endian and the reader maps it in place");

namespace {

// Bounds on what a header may claim. Each is far above any real model (llama 405B has ~1,100
// tensors and ~30 metadata keys; vocabularies hold ~260k strings) and far below what would
// let a corrupted count drive a huge allocation. Counts are also bounded by the bytes left.
constexpr uint64_t kMaxMetadataEntries = 1 << 20;
constexpr uint64_t kMaxTensors = 1 << 20;
constexpr uint32_t kMaxArrayDepth = 8;
constexpr uint64_t kMaxTensorNameBytes = 256;
constexpr uint64_t kMaxAlignment = 1 << 20;

// Smallest possible encodings, used to bound counts by the bytes that remain.
constexpr uint64_t kMinMetadataEntryBytes = 8 + 4 + 1;   // key length, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // name length, n_dims, type, offset
constexpr uint64_t kMinStringBytes = 8;                  // length of an empty string
constexpr uint64_t kMinArrayBytes = 4 + 8;               // element type, count

constexpr uint64_t kHeaderBytes = 4 + 4 + 8 + 8;  // magic, version, n_tensors, n_kv

}  // namespace

// Parses one file into a GgufFile. A class so that the reader and the error context travel
// together instead of being passed to every helper.
class GgufParser {
 public:
  GgufParser(GgufFile& file, GgufOpenOptions options)
      : file_(file), reader_(file.bytes_), options_(options) {}

  Status parse() {
    if (Status s = parse_header(); !s) return s;
    file_.metadata_.reserve(static_cast<size_t>(num_metadata_));
    for (uint64_t i = 0; i < num_metadata_; ++i) {
      if (Status s = parse_metadata_entry(i); !s) return s;
    }
    if (Status s = read_alignment(); !s) return s;
    file_.tensors_.reserve(static_cast<size_t>(num_tensors_));
    for (uint64_t i = 0; i < num_tensors_; ++i) {
      if (Status s = parse_tensor_info(i); !s) return s;
    }
    return place_tensors();
  }

 private:
  Error truncated(std::string_view what) const {
    return make_error(fmt::format("truncated file: {} at offset {} runs past the end ({} bytes)",
                                  what, reader_.offset(), reader_.size()));
  }

  Status parse_header() {
    if (reader_.size() < kHeaderBytes) {
      return make_error(fmt::format("truncated header: {} bytes, a GGUF header needs {}",
                                    reader_.size(), kHeaderBytes));
    }
    uint32_t magic = 0;
    (void)reader_.read(magic);
    if (magic != kGgufMagic) {
      return make_error(fmt::format(
          "not a GGUF file (first bytes {:02x} {:02x} {:02x} {:02x}, expected 47 47 55 46 'GGUF')",
          magic & 0xffu, (magic >> 8) & 0xffu, (magic >> 16) & 0xffu, magic >> 24));
    }
    uint32_t version = 0;
    (void)reader_.read(version);
    if (version != 2 && version != 3) {
      if (version != 0 && (version & 0xffffu) == 0) {
        return make_error(
            fmt::format("big-endian GGUF (version field {:#x}) is not supported", version));
      }
      return make_error(fmt::format("unsupported GGUF version {} (supported: 2 and 3)", version));
    }
    file_.version_ = version;
    (void)reader_.read(num_tensors_);
    (void)reader_.read(num_metadata_);
    if (num_metadata_ > kMaxMetadataEntries ||
        num_metadata_ > reader_.remaining() / kMinMetadataEntryBytes) {
      return make_error(fmt::format(
          "metadata entry count {} cannot fit in the {} bytes after the header (corrupt or "
          "truncated file)",
          num_metadata_, reader_.remaining()));
    }
    if (num_tensors_ > kMaxTensors || num_tensors_ > reader_.remaining() / kMinTensorInfoBytes) {
      return make_error(fmt::format(
          "tensor count {} cannot fit in the {} bytes after the header (corrupt or truncated "
          "file)",
          num_tensors_, reader_.remaining()));
    }
    return Ok{};
  }

  // `describe()` names the string for an error message; it is only called on failure, so a
  // vocabulary of 150k strings formats nothing while it parses.
  template <typename Describe>
  Status read_string(Describe&& describe, std::string_view& out) {
    uint64_t length = 0;
    if (!reader_.read(length)) return truncated(fmt::format("length of {}", describe()));
    if (!reader_.read_chars(length, out)) {
      return make_error(fmt::format(
          "string length {} of {} at offset {} runs past the end of the file ({} bytes)", length,
          describe(), reader_.offset() - sizeof(length), reader_.size()));
    }
    return Ok{};
  }

  Status parse_metadata_entry(uint64_t index) {
    std::string_view key;
    if (Status s = read_string([&] { return fmt::format("metadata key #{}", index); }, key); !s)
      return s;
    if (key.empty()) return make_error(fmt::format("metadata key #{} is empty", index));
    uint32_t type_id = 0;
    if (!reader_.read(type_id)) return truncated(fmt::format("type of metadata '{}'", key));
    GgufValue value;
    if (Status s = parse_value(key, type_id, 0, value); !s) return s;
    if (!file_.metadata_index_.emplace(key, file_.metadata_.size()).second) {
      return make_error(fmt::format("duplicate metadata key '{}'", key));
    }
    file_.metadata_.push_back(GgufMetadataEntry{key, std::move(value)});
    return Ok{};
  }

  Status parse_value(std::string_view key, uint32_t type_id, uint32_t depth, GgufValue& out) {
    if (type_id >= kNumGgufTypes) {
      return make_error(fmt::format("metadata '{}' has unknown value type {}", key, type_id));
    }
    const auto type = static_cast<GgufType>(type_id);
    switch (type) {
      case GgufType::U8:
        return read_unsigned<uint8_t>(key, type, out);
      case GgufType::U16:
        return read_unsigned<uint16_t>(key, type, out);
      case GgufType::U32:
        return read_unsigned<uint32_t>(key, type, out);
      case GgufType::U64:
        return read_unsigned<uint64_t>(key, type, out);
      case GgufType::I8:
        return read_signed<int8_t>(key, type, out);
      case GgufType::I16:
        return read_signed<int16_t>(key, type, out);
      case GgufType::I32:
        return read_signed<int32_t>(key, type, out);
      case GgufType::I64:
        return read_signed<int64_t>(key, type, out);
      case GgufType::F32: {
        float v = 0;
        if (!reader_.read(v)) return truncated(fmt::format("value of '{}'", key));
        out = GgufValue::from_float(type, v);
        return Ok{};
      }
      case GgufType::F64: {
        double v = 0;
        if (!reader_.read(v)) return truncated(fmt::format("value of '{}'", key));
        out = GgufValue::from_float(type, v);
        return Ok{};
      }
      case GgufType::Bool: {
        uint8_t v = 0;
        if (!reader_.read(v)) return truncated(fmt::format("value of '{}'", key));
        if (v > 1) return make_error(fmt::format("metadata '{}' is a bool of value {}", key, v));
        out = GgufValue::from_bool(v != 0);
        return Ok{};
      }
      case GgufType::String: {
        std::string_view s;
        if (Status st = read_string([&] { return fmt::format("metadata '{}'", key); }, s); !st)
          return st;
        out = GgufValue::from_string(s);
        return Ok{};
      }
      case GgufType::Array:
        return parse_array(key, depth, out);
    }
    return make_error(fmt::format("metadata '{}' has unknown value type {}", key, type_id));
  }

  template <typename T>
  Status read_unsigned(std::string_view key, GgufType type, GgufValue& out) {
    T v = 0;
    if (!reader_.read(v)) return truncated(fmt::format("value of '{}'", key));
    out = GgufValue::from_unsigned(type, v);
    return Ok{};
  }

  template <typename T>
  Status read_signed(std::string_view key, GgufType type, GgufValue& out) {
    T v = 0;
    if (!reader_.read(v)) return truncated(fmt::format("value of '{}'", key));
    out = GgufValue::from_signed(type, v);
    return Ok{};
  }

  Status parse_array(std::string_view key, uint32_t depth, GgufValue& out) {
    if (depth + 1 > kMaxArrayDepth) {
      return make_error(
          fmt::format("metadata '{}' nests arrays deeper than {}", key, kMaxArrayDepth));
    }
    GgufArray array;
    uint32_t element_type_id = 0;
    if (!reader_.read(element_type_id) || !reader_.read(array.count)) {
      return truncated(fmt::format("array header of '{}'", key));
    }
    if (element_type_id >= kNumGgufTypes) {
      return make_error(
          fmt::format("metadata '{}' is an array of unknown type {}", key, element_type_id));
    }
    array.element_type = static_cast<GgufType>(element_type_id);
    const uint64_t element_bytes = gguf_type_size(array.element_type);
    const uint64_t min_element_bytes = element_bytes != 0                       ? element_bytes
                                       : array.element_type == GgufType::String ? kMinStringBytes
                                                                                : kMinArrayBytes;
    if (array.count > reader_.remaining() / min_element_bytes) {
      return make_error(
          fmt::format("array '{}' claims {} elements of type {} but only {} bytes remain", key,
                      array.count, gguf_type_name(array.element_type), reader_.remaining()));
    }
    switch (array.element_type) {
      case GgufType::String: {
        array.strings.resize(static_cast<size_t>(array.count));
        for (uint64_t i = 0; i < array.count; ++i) {
          if (Status s = read_string([&] { return fmt::format("element {} of '{}'", i, key); },
                                     array.strings[i]);
              !s) {
            return s;
          }
        }
        break;
      }
      case GgufType::Array: {
        array.arrays.resize(static_cast<size_t>(array.count));
        for (uint64_t i = 0; i < array.count; ++i) {
          if (Status s = parse_value(key, element_type_id, depth + 1, array.arrays[i]); !s) {
            return s;
          }
        }
        break;
      }
      case GgufType::Bool: {
        array.data = reader_.current();
        for (uint64_t i = 0; i < array.count; ++i) {
          uint8_t v = 0;
          (void)reader_.read(v);  // the count check above guarantees it fits
          if (v > 1) {
            return make_error(fmt::format("element {} of bool array '{}' has value {}", i, key, v));
          }
        }
        break;
      }
      default:
        array.data = reader_.current();
        (void)reader_.skip(array.count * element_bytes);
        break;
    }
    out = GgufValue::from_array(std::move(array));
    return Ok{};
  }

  Status read_alignment() {
    const GgufValue* value = file_.find(kGgufAlignmentKey);
    if (value == nullptr) return Ok{};
    if (value->type() != GgufType::U32) {
      return make_error(fmt::format("{} must be a u32, found {}", kGgufAlignmentKey,
                                    gguf_type_name(value->type())));
    }
    const uint64_t alignment = value->as_unsigned();
    if (alignment == 0 || !std::has_single_bit(alignment) || alignment > kMaxAlignment) {
      return make_error(fmt::format("{} = {} is not a power of two up to {}", kGgufAlignmentKey,
                                    alignment, kMaxAlignment));
    }
    file_.alignment_ = static_cast<uint32_t>(alignment);
    return Ok{};
  }

  Status parse_tensor_info(uint64_t index) {
    GgufTensor tensor;
    if (Status s =
            read_string([&] { return fmt::format("name of tensor #{}", index); }, tensor.name);
        !s) {
      return s;
    }
    if (tensor.name.empty() || tensor.name.size() > kMaxTensorNameBytes) {
      return make_error(fmt::format("tensor #{} has a name of {} bytes (1 to {} allowed)", index,
                                    tensor.name.size(), kMaxTensorNameBytes));
    }
    if (!reader_.read(tensor.num_dims)) {
      return truncated(fmt::format("dimensions of tensor '{}'", tensor.name));
    }
    if (tensor.num_dims == 0 || tensor.num_dims > kGgufMaxDims) {
      return make_error(fmt::format("tensor '{}' has {} dimensions (1 to {} allowed)", tensor.name,
                                    tensor.num_dims, kGgufMaxDims));
    }
    uint64_t num_elements = 1;
    for (uint32_t d = 0; d < tensor.num_dims; ++d) {
      if (!reader_.read(tensor.ne[d])) {
        return truncated(fmt::format("shape of tensor '{}'", tensor.name));
      }
      // ggml keeps shapes as int64: a size beyond that, or a product that overflows it, is
      // corruption, not a model.
      constexpr auto kMaxElements = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      if (tensor.ne[d] > kMaxElements ||
          (tensor.ne[d] != 0 && num_elements > kMaxElements / tensor.ne[d])) {
        return make_error(fmt::format("tensor '{}' has an absurd shape (dimension {} = {})",
                                      tensor.name, d, tensor.ne[d]));
      }
      num_elements *= tensor.ne[d];
    }
    uint32_t type_id = 0;
    if (!reader_.read(type_id) || !reader_.read(tensor.offset)) {
      return truncated(fmt::format("type and offset of tensor '{}'", tensor.name));
    }
    const std::optional<TensorTypeInfo> info = tensor_type_info(type_id);
    if (!info) {
      return make_error(
          fmt::format("unknown tensor type id {} in tensor '{}'", type_id, tensor.name));
    }
    if (!info->supported && !options_.allow_unsupported_types) {
      return make_error(
          fmt::format("unsupported tensor type {} in tensor '{}'", info->name, tensor.name));
    }
    tensor.type = info->type;
    if (tensor.ne[0] % info->block_size != 0) {
      return make_error(
          fmt::format("tensor '{}': first dimension {} is not a multiple of the {} block size {}",
                      tensor.name, tensor.ne[0], info->name, info->block_size));
    }
    // num_elements < 2^63 and bytes_per_block <= 2 * block_size * 8, so this cannot overflow.
    tensor.num_bytes = num_elements / info->block_size * info->bytes_per_block;
    if (!file_.tensor_index_.emplace(tensor.name, file_.tensors_.size()).second) {
      return make_error(fmt::format("duplicate tensor name '{}'", tensor.name));
    }
    file_.tensors_.push_back(tensor);
    return Ok{};
  }

  // Fixes the data section after the tensor table and checks that every tensor lies inside
  // the file, aligned, without overlapping another.
  Status place_tensors() {
    const uint64_t alignment = file_.alignment_;
    const uint64_t header_end = reader_.offset();
    file_.data_offset_ = (header_end + alignment - 1) / alignment * alignment;
    const uint64_t file_size = reader_.size();
    std::vector<GgufTensor>& tensors = file_.tensors_;
    for (GgufTensor& t : tensors) {
      if (t.offset % alignment != 0) {
        return make_error(fmt::format("tensor '{}' offset {} is not a multiple of the alignment {}",
                                      t.name, t.offset, alignment));
      }
      const uint64_t room = file_size >= file_.data_offset_ ? file_size - file_.data_offset_ : 0;
      if (t.offset > room || t.num_bytes > room - t.offset) {
        return make_error(fmt::format(
            "tensor '{}' data (offset {}, {} bytes) lies outside the file ({} bytes, data section "
            "at {})",
            t.name, t.offset, t.num_bytes, file_size, file_.data_offset_));
      }
      t.data = file_.bytes_.data() + file_.data_offset_ + t.offset;
    }
    std::vector<size_t> order(tensors.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
    for (size_t i = 1; i < order.size(); ++i) {
      const GgufTensor& prev = tensors[order[i - 1]];
      const GgufTensor& cur = tensors[order[i]];
      if (prev.offset + prev.num_bytes > cur.offset) {
        return make_error(fmt::format("tensors '{}' [{}, {}) and '{}' [{}, {}) overlap", prev.name,
                                      prev.offset, prev.offset + prev.num_bytes, cur.name,
                                      cur.offset, cur.offset + cur.num_bytes));
      }
    }
    return Ok{};
  }

  GgufFile& file_;
  ByteReader reader_;
  GgufOpenOptions options_;
  uint64_t num_tensors_ = 0;
  uint64_t num_metadata_ = 0;
};

Result<GgufFile> GgufFile::open(const std::string& path, GgufOpenOptions options) {
  Result<MappedFile> mapped = MappedFile::open(path);
  if (!mapped) return mapped.error();
  GgufFile file;
  file.file_ = std::move(mapped).value();
  file.bytes_ = file.file_.bytes();
  if (Status s = GgufParser(file, options).parse(); !s) {
    return make_error(fmt::format("{}: {}", path, s.error().message));
  }
  return file;
}

Result<GgufFile> GgufFile::open_memory(std::span<const std::byte> bytes, GgufOpenOptions options) {
  GgufFile file;
  file.bytes_ = bytes;
  if (Status s = GgufParser(file, options).parse(); !s) return s.error();
  return file;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].value;
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

Error missing(std::string_view key) {
  return make_error(fmt::format("metadata key '{}' not found", key));
}

Error wrong_type(std::string_view key, const GgufValue& v, std::string_view wanted) {
  return make_error(
      fmt::format("metadata '{}' is {}, expected {}", key, gguf_type_name(v.type()), wanted));
}

bool is_signed(GgufType t) {
  return t == GgufType::I8 || t == GgufType::I16 || t == GgufType::I32 || t == GgufType::I64;
}

// Integer value of `v` if it is an integer in [lo, hi].
template <typename T>
Result<T> integer_in_range(std::string_view key, const GgufValue& v, std::string_view wanted) {
  if (!v.is_integer()) return wrong_type(key, v, wanted);
  constexpr auto lo = std::numeric_limits<T>::min();
  constexpr auto hi = std::numeric_limits<T>::max();
  if (is_signed(v.type())) {
    const int64_t x = v.as_signed();
    if (std::cmp_less(x, lo) || std::cmp_greater(x, hi)) {
      return make_error(fmt::format("metadata '{}' = {} does not fit in {}", key, x, wanted));
    }
    return static_cast<T>(x);
  }
  const uint64_t x = v.as_unsigned();
  if (std::cmp_greater(x, hi)) {
    return make_error(fmt::format("metadata '{}' = {} does not fit in {}", key, x, wanted));
  }
  return static_cast<T>(x);
}

}  // namespace

Result<std::string_view> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(key);
  if (v->type() != GgufType::String) return wrong_type(key, *v, "string");
  return v->as_string();
}

Result<uint32_t> GgufFile::get_u32(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(key);
  return integer_in_range<uint32_t>(key, *v, "u32");
}

Result<uint64_t> GgufFile::get_u64(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(key);
  return integer_in_range<uint64_t>(key, *v, "u64");
}

Result<int32_t> GgufFile::get_i32(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(key);
  return integer_in_range<int32_t>(key, *v, "i32");
}

Result<float> GgufFile::get_f32(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(key);
  if (!v->is_float()) return wrong_type(key, *v, "f32");
  return static_cast<float>(v->as_double());
}

Result<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(key);
  if (v->type() != GgufType::Bool) return wrong_type(key, *v, "bool");
  return v->as_bool();
}

Result<std::span<const std::string_view>> GgufFile::get_string_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(key);
  if (v->type() != GgufType::Array || v->as_array().element_type != GgufType::String) {
    return wrong_type(key, *v, "array of strings");
  }
  return std::span<const std::string_view>(v->as_array().strings);
}

Result<std::vector<float>> GgufFile::get_f32_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(key);
  if (v->type() != GgufType::Array || (v->as_array().element_type != GgufType::F32 &&
                                       v->as_array().element_type != GgufType::F64)) {
    return wrong_type(key, *v, "array of floats");
  }
  const GgufArray& a = v->as_array();
  std::vector<float> out(static_cast<size_t>(a.count));
  for (uint64_t i = 0; i < a.count; ++i) out[i] = a.scalar_at<float>(i);
  return out;
}

Result<std::vector<int32_t>> GgufFile::get_i32_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(key);
  const GgufType t = v->type() == GgufType::Array ? v->as_array().element_type : GgufType::String;
  if (v->type() != GgufType::Array || !gguf_type_is_integer(t)) {
    return wrong_type(key, *v, "array of integers");
  }
  const GgufArray& a = v->as_array();
  std::vector<int32_t> out(static_cast<size_t>(a.count));
  for (uint64_t i = 0; i < a.count; ++i) {
    if (is_signed(t)) {
      const auto x = a.scalar_at<int64_t>(i);
      if (std::cmp_less(x, INT32_MIN) || std::cmp_greater(x, INT32_MAX)) {
        return make_error(fmt::format("element {} of '{}' = {} does not fit in i32", i, key, x));
      }
      out[i] = static_cast<int32_t>(x);
    } else {
      const auto x = a.scalar_at<uint64_t>(i);
      if (std::cmp_greater(x, INT32_MAX)) {
        return make_error(fmt::format("element {} of '{}' = {} does not fit in i32", i, key, x));
      }
      out[i] = static_cast<int32_t>(x);
    }
  }
  return out;
}

Result<std::string_view> GgufFile::get_string_or(std::string_view key,
                                                 std::string_view fallback) const {
  return has(key) ? get_string(key) : Result<std::string_view>(fallback);
}

Result<uint32_t> GgufFile::get_u32_or(std::string_view key, uint32_t fallback) const {
  return has(key) ? get_u32(key) : Result<uint32_t>(fallback);
}

Result<float> GgufFile::get_f32_or(std::string_view key, float fallback) const {
  return has(key) ? get_f32(key) : Result<float>(fallback);
}

Result<bool> GgufFile::get_bool_or(std::string_view key, bool fallback) const {
  return has(key) ? get_bool(key) : Result<bool>(fallback);
}

}  // namespace ondol::engine
