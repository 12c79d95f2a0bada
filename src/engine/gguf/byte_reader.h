// ByteReader: a bounds-checked little-endian cursor over an untrusted byte buffer. Every read
// says whether it fit; nothing here trusts a length it was given, so a corrupted file yields an
// error at the caller and never a read past the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>

namespace ondol::engine {

class ByteReader {
 public:
  explicit ByteReader(std::span<const std::byte> bytes) : bytes_(bytes) {}

  size_t offset() const { return offset_; }
  size_t size() const { return bytes_.size(); }
  size_t remaining() const { return bytes_.size() - offset_; }
  const std::byte* current() const { return bytes_.data() + offset_; }

  // Reads a trivially copyable value stored little-endian (GGUF is little-endian; so are the
  // hosts we build for, which the static_assert in gguf_file.cpp pins).
  template <typename T>
  bool read(T& out) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (remaining() < sizeof(T)) return false;
    std::memcpy(&out, bytes_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return true;
  }

  bool skip(uint64_t num_bytes) {
    if (num_bytes > remaining()) return false;
    offset_ += static_cast<size_t>(num_bytes);
    return true;
  }

  // A view of the next `num_bytes` bytes as characters; false if they run past the end.
  bool read_chars(uint64_t num_bytes, std::string_view& out) {
    if (num_bytes > remaining()) return false;
    out = std::string_view(reinterpret_cast<const char*>(bytes_.data() + offset_),
                           static_cast<size_t>(num_bytes));
    offset_ += static_cast<size_t>(num_bytes);
    return true;
  }

 private:
  std::span<const std::byte> bytes_;
  size_t offset_ = 0;
};

}  // namespace ondol::engine
