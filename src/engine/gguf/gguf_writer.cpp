#include "engine/gguf/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unordered_set>

#include <fmt/format.h>

namespace ondol::engine {
namespace {

constexpr uint32_t kWriteVersion = 3;

template <typename T>
void append_le(std::string& out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));  // hosts are little-endian (asserted in gguf_file.cpp)
  out.append(bytes, sizeof(T));
}

void append_string(std::string& out, std::string_view s) {
  append_le<uint64_t>(out, s.size());
  out.append(s);
}

uint64_t align_up(uint64_t n, uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

}  // namespace

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    first_error_ = make_error(fmt::format("alignment {} is not a power of two", alignment));
    alignment_ = kGgufDefaultAlignment;
  }
  if (alignment_ != kGgufDefaultAlignment) set_u32(kGgufAlignmentKey, alignment_);
}

bool GgufWriter::begin_key(std::string_view key, GgufType type) {
  if (key.empty() || !keys_.emplace(key).second) {
    if (!first_error_) {
      first_error_ = make_error(fmt::format("metadata key '{}' is empty or set twice", key));
    }
    return false;
  }
  append_string(metadata_, key);
  append_le<uint32_t>(metadata_, static_cast<uint32_t>(type));
  ++num_metadata_;
  return true;
}

void GgufWriter::set_u8(std::string_view key, uint8_t v) {
  if (begin_key(key, GgufType::U8)) append_le(metadata_, v);
}
void GgufWriter::set_i8(std::string_view key, int8_t v) {
  if (begin_key(key, GgufType::I8)) append_le(metadata_, v);
}
void GgufWriter::set_u16(std::string_view key, uint16_t v) {
  if (begin_key(key, GgufType::U16)) append_le(metadata_, v);
}
void GgufWriter::set_i16(std::string_view key, int16_t v) {
  if (begin_key(key, GgufType::I16)) append_le(metadata_, v);
}
void GgufWriter::set_u32(std::string_view key, uint32_t v) {
  if (begin_key(key, GgufType::U32)) append_le(metadata_, v);
}
void GgufWriter::set_i32(std::string_view key, int32_t v) {
  if (begin_key(key, GgufType::I32)) append_le(metadata_, v);
}
void GgufWriter::set_u64(std::string_view key, uint64_t v) {
  if (begin_key(key, GgufType::U64)) append_le(metadata_, v);
}
void GgufWriter::set_i64(std::string_view key, int64_t v) {
  if (begin_key(key, GgufType::I64)) append_le(metadata_, v);
}
void GgufWriter::set_f32(std::string_view key, float v) {
  if (begin_key(key, GgufType::F32)) append_le(metadata_, v);
}
void GgufWriter::set_f64(std::string_view key, double v) {
  if (begin_key(key, GgufType::F64)) append_le(metadata_, v);
}
void GgufWriter::set_bool(std::string_view key, bool v) {
  if (begin_key(key, GgufType::Bool)) append_le<uint8_t>(metadata_, v ? 1 : 0);
}
void GgufWriter::set_string(std::string_view key, std::string_view v) {
  if (begin_key(key, GgufType::String)) append_string(metadata_, v);
}

void GgufWriter::set_string_array(std::string_view key, std::span<const std::string> values) {
  if (!begin_key(key, GgufType::Array)) return;
  append_le<uint32_t>(metadata_, static_cast<uint32_t>(GgufType::String));
  append_le<uint64_t>(metadata_, values.size());
  for (const std::string& s : values) append_string(metadata_, s);
}

void GgufWriter::set_string_array(std::string_view key, std::span<const std::string_view> values) {
  if (!begin_key(key, GgufType::Array)) return;
  append_le<uint32_t>(metadata_, static_cast<uint32_t>(GgufType::String));
  append_le<uint64_t>(metadata_, values.size());
  for (std::string_view s : values) append_string(metadata_, s);
}

void GgufWriter::set_f32_array(std::string_view key, std::span<const float> values) {
  if (!begin_key(key, GgufType::Array)) return;
  append_le<uint32_t>(metadata_, static_cast<uint32_t>(GgufType::F32));
  append_le<uint64_t>(metadata_, values.size());
  for (float v : values) append_le(metadata_, v);
}

void GgufWriter::set_i32_array(std::string_view key, std::span<const int32_t> values) {
  if (!begin_key(key, GgufType::Array)) return;
  append_le<uint32_t>(metadata_, static_cast<uint32_t>(GgufType::I32));
  append_le<uint64_t>(metadata_, values.size());
  for (int32_t v : values) append_le(metadata_, v);
}

void GgufWriter::set_u32_array(std::string_view key, std::span<const uint32_t> values) {
  if (!begin_key(key, GgufType::Array)) return;
  append_le<uint32_t>(metadata_, static_cast<uint32_t>(GgufType::U32));
  append_le<uint64_t>(metadata_, values.size());
  for (uint32_t v : values) append_le(metadata_, v);
}

void GgufWriter::add_tensor(std::string_view name, TensorType type, std::span<const uint64_t> ne,
                            std::span<const std::byte> data) {
  add_tensor_info(name, type, ne, data, nullptr);
}

void GgufWriter::add_tensor(std::string_view name, TensorType type, std::span<const uint64_t> ne,
                            TensorFill fill) {
  add_tensor_info(name, type, ne, {}, std::move(fill));
}

void GgufWriter::add_tensor_info(std::string_view name, TensorType type,
                                 std::span<const uint64_t> ne, std::span<const std::byte> data,
                                 TensorFill fill) {
  auto fail = [&](std::string message) {
    if (!first_error_) first_error_ = make_error(fmt::format("tensor '{}': {}", name, message));
  };
  if (name.empty()) return fail("empty name");
  for (const PendingTensor& t : tensors_) {
    if (t.name == name) return fail("added twice");
  }
  if (ne.empty() || ne.size() > kGgufMaxDims) {
    return fail(fmt::format("{} dimensions (1 to {} allowed)", ne.size(), kGgufMaxDims));
  }
  const TensorTypeInfo& info = tensor_type_info(type);
  if (ne[0] % info.block_size != 0) {
    return fail(fmt::format("first dimension {} is not a multiple of the {} block size {}", ne[0],
                            info.name, info.block_size));
  }
  uint64_t num_elements = 1;
  for (uint64_t n : ne) num_elements *= n;
  const uint64_t num_bytes = num_elements / info.block_size * info.bytes_per_block;
  if (!fill && data.size() != num_bytes) {
    return fail(fmt::format("{} bytes given, {} needed", data.size(), num_bytes));
  }
  tensors_.push_back(PendingTensor{.name = std::string(name),
                                   .type = type,
                                   .ne = std::vector<uint64_t>(ne.begin(), ne.end()),
                                   .offset = data_bytes_,
                                   .num_bytes = num_bytes,
                                   .data = data,
                                   .fill = std::move(fill)});
  data_bytes_ = align_up(data_bytes_ + num_bytes, alignment_);
}

Status GgufWriter::write_to(const Sink& sink) const {
  if (first_error_) return *first_error_;
  std::string header;
  append_le<uint32_t>(header, kGgufMagic);
  append_le<uint32_t>(header, kWriteVersion);
  append_le<uint64_t>(header, tensors_.size());
  append_le<uint64_t>(header, num_metadata_);
  header += metadata_;
  for (const PendingTensor& t : tensors_) {
    append_string(header, t.name);
    append_le<uint32_t>(header, static_cast<uint32_t>(t.ne.size()));
    for (uint64_t n : t.ne) append_le<uint64_t>(header, n);
    append_le<uint32_t>(header, static_cast<uint32_t>(t.type));
    append_le<uint64_t>(header, t.offset);
  }
  header.resize(align_up(header.size(), alignment_), '\0');
  auto io_error = [] { return make_error(fmt::format("write failed: {}", std::strerror(errno))); };
  if (!sink(header.data(), header.size())) return io_error();

  const std::string padding(alignment_, '\0');
  std::vector<std::byte> scratch;
  uint64_t written = 0;
  for (const PendingTensor& t : tensors_) {
    std::span<const std::byte> bytes = t.data;
    if (t.fill) {
      scratch.assign(static_cast<size_t>(t.num_bytes), std::byte{0});
      t.fill(scratch);
      bytes = scratch;
    }
    if (!sink(bytes.data(), bytes.size())) return io_error();
    written += bytes.size();
    const uint64_t pad = align_up(written, alignment_) - written;
    if (!sink(padding.data(), static_cast<size_t>(pad))) return io_error();
    written += pad;
  }
  return Ok{};
}

Status GgufWriter::write_file(const std::string& path) const {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return make_error(fmt::format("cannot create '{}': {}", path, std::strerror(errno)));
  }
  Status status = write_to([f](const void* data, size_t size) {
    return size == 0 || std::fwrite(data, 1, size, f) == size;
  });
  const bool closed = std::fclose(f) == 0;
  if (!status) return make_error(fmt::format("{}: {}", path, status.error().message));
  if (!closed) return make_error(fmt::format("cannot close '{}': {}", path, std::strerror(errno)));
  return Ok{};
}

Result<std::vector<std::byte>> GgufWriter::write_memory() const {
  std::vector<std::byte> out;
  Status status = write_to([&out](const void* data, size_t size) {
    const auto* p = static_cast<const std::byte*>(data);
    out.insert(out.end(), p, p + size);
    return true;
  });
  if (!status) return status.error();
  return out;
}

}  // namespace ondol::engine
