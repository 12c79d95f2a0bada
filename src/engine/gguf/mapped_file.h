// MappedFile: a whole file mapped read-only into memory. Model weights are read in place from
// the page cache, so opening a multi-GB model costs no copy and pages are shared between
// processes serving the same file.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "common/result.h"

namespace ondol::engine {

class MappedFile {
 public:
  static Result<MappedFile> open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  void reset();

  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace ondol::engine
