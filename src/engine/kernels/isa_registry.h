// How each ISA translation unit contributes its kernels to a KernelTable. Internal to the kernels
// library; each function is defined in the unit compiled for that ISA and must only be called
// when the CPU supports it (kernel_table.cpp checks).
#pragma once

#include "engine/kernels/kernel_table.h"

namespace ondol::kernels {

void register_scalar_matmul(KernelTable& table);
void register_scalar_ops(KernelTable& table);

void register_avx2_matmul_float(KernelTable& table);
void register_avx2_matmul_quant(KernelTable& table);
void register_avx2_ops(KernelTable& table);

void register_avx512_matmul_float(KernelTable& table);
void register_avx512_matmul_quant(KernelTable& table);
void register_avx512_matmul_q8_0x16(KernelTable& table);  // after matmul_quant (its prepare)
void register_avx512_ops(KernelTable& table);
void register_avx512_matmul_bf16(KernelTable& table);  // needs avx512bf16 too

}  // namespace ondol::kernels
