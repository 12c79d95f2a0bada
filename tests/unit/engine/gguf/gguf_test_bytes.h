// GgufBytes: hand-assembles GGUF bytes for tests that need files the writer refuses to make
// (bad magic, overlapping tensors, absurd counts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace ondol::engine::testing {

class GgufBytes {
 public:
  template <typename T>
  GgufBytes& le(T v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
    return *this;
  }
  GgufBytes& str(std::string_view s) {
    le<uint64_t>(s.size());
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    bytes_.insert(bytes_.end(), p, p + s.size());
    return *this;
  }
  // magic, version, tensor count, metadata count
  GgufBytes& header(uint64_t num_tensors, uint64_t num_metadata, uint32_t version = 3) {
    return le<uint32_t>(0x46554747).le<uint32_t>(version).le(num_tensors).le(num_metadata);
  }
  GgufBytes& pad_to(size_t alignment) {
    while (bytes_.size() % alignment != 0) bytes_.push_back(std::byte{0});
    return *this;
  }
  GgufBytes& zeros(size_t n) {
    bytes_.insert(bytes_.end(), n, std::byte{0});
    return *this;
  }
  const std::vector<std::byte>& bytes() const { return bytes_; }
  size_t size() const { return bytes_.size(); }

 private:
  std::vector<std::byte> bytes_;
};

}  // namespace ondol::engine::testing
