// Helpers shared by the kernel tests: seeded random data, 64-byte aligned buffers, and the ISA
// levels to run each fast kernel at.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "engine/kernels/isa.h"
#include "engine/kernels/kernel_table.h"
#include "engine/kernels/weight_type.h"

namespace ondol::kernels {

// Readable test parameters in gtest output (found by argument-dependent lookup).
inline void PrintTo(Isa isa, std::ostream* os) {
  *os << isa_name(isa);
}
inline void PrintTo(WeightType type, std::ostream* os) {
  *os << weight_type_info(type).name;
}

}  // namespace ondol::kernels

namespace ondol::kernels::testing {

// Normal(0, stddev) values from a fixed seed, so failures reproduce.
inline std::vector<float> random_normal(size_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline std::vector<float> random_uniform(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Zero-initialised bytes at a 64-byte aligned address.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(int64_t bytes)
      : storage_(std::make_unique<uint8_t[]>(static_cast<size_t>(bytes) + kAlign)) {
    std::memset(storage_.get(), 0, static_cast<size_t>(bytes) + kAlign);
    const auto address = reinterpret_cast<uintptr_t>(storage_.get());
    data_ = storage_.get() + (kAlign - address % kAlign) % kAlign;
  }
  uint8_t* data() { return data_; }

 private:
  static constexpr uintptr_t kAlign = 64;
  std::unique_ptr<uint8_t[]> storage_;
  uint8_t* data_;
};

// The SIMD levels a fast kernel is compared against scalar at.
inline constexpr Isa kFastIsas[] = {Isa::kAvx2, Isa::kAvx512};

inline std::string isa_test_name(Isa isa) {
  return std::string(isa_name(isa));
}

}  // namespace ondol::kernels::testing
