// The AVX-VNNI table (Alder Lake and later, Zen 5): the AVX2 table with the packed-weight
// kernels on 256-bit vpdpbusd (VEX-encoded, no AVX-512 needed). Everything else is AVX2's.
#include <immintrin.h>

#include <algorithm>
#include <utility>

#include "engine/cpu/kernels.hpp"

#define KWAAI_AVX_VNNI __attribute__((target("avx2,fma,f16c,avxvnni")))

namespace kwaai::engine::cpu {

namespace {

#define KWAAI_GEMM256_TARGET KWAAI_AVX_VNNI
#define KWAAI_GEMM256_VNNI 1
#include "engine/cpu/gemm_x86_256.inl"
#undef KWAAI_GEMM256_VNNI
#undef KWAAI_GEMM256_TARGET

}  // namespace

const KernelTable* avx_vnni_kernels() {
  static const KernelTable* table = []() -> const KernelTable* {
    const KernelTable* base = avx2_kernels();
    if (!base || !cpu_has_avx_vnni()) return nullptr;
    static KernelTable t = *base;
    t.name = "avx-vnni";
    t.gemm_q8_0 = gemm_each_group<gemm256<PackCode::Q8_0>>;
    t.gemm_q4_0 = gemm_each_group<gemm256<PackCode::Q4_0>>;
    t.gemm_q4_k = gemm_each_group<gemm256<PackCode::Q4_K>>;
    t.gemm_q5_k = gemm_each_group<gemm256<PackCode::Q5_K>>;
    t.gemm_q6_k = gemm_each_group<gemm256<PackCode::Q6_K>>;
    t.gemm_rows = kGemm256Rows;
    t.gemm_groups = 1;
    t.q8_0_act_offset = 128;
    t.q4_0_act_offset = 8;
    t.int8_peak_loop = int8_peak_loop256;
    return &t;
  }();
  return table;
}

}  // namespace kwaai::engine::cpu
