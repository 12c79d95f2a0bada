// Memory sizes as operators write them: "536870912", "512MiB", "4GiB", "1.5G", "2000kB", or a
// share of the memory available now, "25%" (as --gpu-memory-utilization is for a GPU).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace ondol {

struct MemorySize {
  int64_t bytes = 0;    // set for an absolute size
  double fraction = 0;  // set (0, 1] for a percentage

  bool empty() const { return bytes == 0 && fraction == 0; }
  // Bytes, with a fraction taken of `available`.
  int64_t resolve(int64_t available) const {
    return fraction > 0 ? static_cast<int64_t>(fraction * static_cast<double>(available)) : bytes;
  }
  std::string to_string() const;
};

// Decimal (k, M, G, T: powers of 1000) and binary (Ki, Mi, Gi, Ti: powers of 1024) units, an
// optional trailing "B", case-insensitive units; a bare number is bytes.
Result<MemorySize> parse_memory_size(std::string_view text);

// MemAvailable from /proc/meminfo, in bytes; 0 when unknown.
int64_t available_memory_bytes();

}  // namespace ondol
