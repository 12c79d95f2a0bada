// run_tiles: walks a MatmulTask in register tiles of RM activation rows x RN weight rows, so each
// weight value loaded (and unpacked) is used RM times. The loop keeps one tile of W hot while
// all activation rows stream past it; edge tiles use smaller instantiations.
//
// Included only by ISA translation units. The anonymous namespace is deliberate: each unit gets
// its own copy compiled with its own -m flags, never one the linker could share with a unit for
// another ISA (see docs/engine-kernels.md).
#pragma once

#include <cstdint>

#include "engine/kernels/kernel_table.h"

namespace ondol::kernels {
namespace {

// Kernel provides kTileM, kTileN (M > 1), kGemvTileN (M == 1) and
// template <int RM, int RN> static void tile(const MatmulTask&, int64_t m0, int64_t n0), which
// computes y rows [m0, m0 + RM) x columns [n0, n0 + RN). Its loops over RM and RN carry
// `#pragma GCC unroll`: at -O2 GCC leaves them rolled, and the accumulator arrays then live on
// the stack instead of in registers (measured: 3-4x slower).
// `extra` is passed on to the kernel's tile after n0 (a kernel's own per-tile arguments).
template <class Kernel, int RM, int RN, class... Extra>
inline void dispatch_tile(int rm, int rn, const MatmulTask& t, int64_t m0, int64_t n0,
                          Extra... extra) {
  if constexpr (RM > 1) {
    if (rm < RM) return dispatch_tile<Kernel, RM - 1, RN>(rm, rn, t, m0, n0, extra...);
  }
  if constexpr (RN > 1) {
    if (rn < RN) return dispatch_tile<Kernel, RM, RN - 1>(rm, rn, t, m0, n0, extra...);
  }
  Kernel::template tile<RM, RN>(t, m0, n0, extra...);
}

inline int clamp_tile(int64_t remaining, int tile) {
  return remaining < tile ? static_cast<int>(remaining) : tile;
}

template <class Kernel>
void run_tiles(const MatmulTask& t) {
  if (t.m == 1) {
    // Decode: no reuse to gain; wider N tiles keep more independent loads in flight.
    constexpr int kRn = Kernel::kGemvTileN;
    for (int64_t n0 = t.n_begin; n0 < t.n_end; n0 += kRn) {
      dispatch_tile<Kernel, 1, kRn>(1, clamp_tile(t.n_end - n0, kRn), t, 0, n0);
    }
    return;
  }
  constexpr int kRm = Kernel::kTileM;
  constexpr int kRn = Kernel::kTileN;
  for (int64_t n0 = t.n_begin; n0 < t.n_end; n0 += kRn) {
    const int rn = clamp_tile(t.n_end - n0, kRn);
    for (int64_t m0 = 0; m0 < t.m; m0 += kRm) {
      dispatch_tile<Kernel, kRm, kRn>(clamp_tile(t.m - m0, kRm), rn, t, m0, n0);
    }
  }
}

}  // namespace
}  // namespace ondol::kernels
