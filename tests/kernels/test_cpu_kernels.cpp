// The CPU backend's per-ISA inner loops (scalar, AVX2, AVX-VNNI, AVX-512 VNNI) must compute the
// same functions: the backend only ever runs the fastest table the CPU has, so the others are
// exercised here, against the scalar table and a double reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "engine/core/formats.hpp"
#include "engine/core/kquants.hpp"
#include "engine/cpu/kernels.hpp"
#include "engine/cpu/qpack.hpp"
#include "tests/kernels/op_test_util.hpp"

namespace kwaai::engine::cpu {
namespace {

// Every table this CPU can run, the scalar reference first.
std::vector<const KernelTable*> tables() {
  std::vector<const KernelTable*> t{&scalar_kernels()};
  if (auto* k = avx2_kernels()) t.push_back(k);
  if (auto* k = avx_vnni_kernels()) t.push_back(k);
  if (auto* k = avx512_kernels()) t.push_back(k);
  return t;
}

TEST(CpuKernels, every_isa_table_agrees_on_float_dots) {
  KWAAI_SEEDED_RNG();
  for (std::int64_t n : {1, 7, 15, 16, 17, 31, 33, 64, 4097}) {
    const auto a = rng.vec(n), b = rng.vec(n);
    double ref = 0, abs_sum = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      ref += static_cast<double>(a[i]) * b[i];
      abs_sum += std::fabs(static_cast<double>(a[i]) * b[i]);
    }
    const double tol = 1e-6 * std::sqrt(static_cast<double>(n)) * abs_sum + 1e-6;
    for (const auto* k : tables()) {
      SCOPED_TRACE(std::string(k->name) + " n " + std::to_string(n));
      EXPECT_NEAR(k->dot_f32(a.data(), b.data(), n), ref, tol);
    }
  }
}

// GGUF rows of random weights of `t` with the extreme codes planted: -128 is a legal Q8_0 code
// in a GGUF file, and quantize_row_q4_0 rarely produces the nibbles 0 and 15.
std::vector<std::byte> random_quant_rows(test::Rng& rng, DType t, std::int64_t N, std::int64_t K) {
  const auto w = rng.vec(N * K, -2, 2);
  std::vector<std::byte> bytes(dtype_bytes(t, N * K));
  from_f32(t, w.data(), bytes.data(), N * K);
  if (t == DType::Q8_0) {
    auto* b = reinterpret_cast<BlockQ8_0*>(bytes.data());
    b[0].qs[0] = -128;
    b[0].qs[1] = 127;
  } else if (t == DType::Q6_K) {
    // -128 is a legal Q6_K scale the quantizer never writes; the codes 0 and 63 it does.
    reinterpret_cast<BlockQ6_K*>(bytes.data())[0].scales[3] = -128;
  } else if (t == DType::Q4_0) {
    auto* b = reinterpret_cast<BlockQ4_0*>(bytes.data());
    b[0].qs[0] = 0x0F;
    b[N * K / 32 - 1].qs[15] = 0xF0;
  }
  return bytes;
}

// The packed-weight kernels of every table against a double reference of what they promise
// (exact integer block sums, then the scales), on row counts that leave partial groups, block
// counts that are not multiples of any unroll, every tile height 1..gemm_rows, with and without
// accumulation; outputs past n_valid must stay poisoned. The tables do the same integer sums
// and the same two float operations per block, so they must also agree bit for bit.
TEST(CpuKernels, packed_kernels_of_every_table_match_the_reference_and_each_other) {
  KWAAI_SEEDED_RNG();
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    const bool kq = format_info(t).block_elems == kSuperBlock;
    for (std::int64_t N : {1, 7, 16, 17, 33}) {
      for (std::int64_t nb : kq ? std::vector<std::int64_t>{8, 16, 24}
                                : std::vector<std::int64_t>{1, 3, 7, 12, 33}) {
        const std::int64_t K = nb * 32;
        const auto rows = random_quant_rows(rng, t, N, K);
        const PackGeometry g = pack_geometry(t, N, K);
        std::vector<std::byte> packed(g.total_bytes() + 64);
        // 64-byte aligned start, as HostStorage gives the kernels.
        auto* base = reinterpret_cast<std::byte*>(
            (reinterpret_cast<std::uintptr_t>(packed.data()) + 63) / 64 * 64);
        pack_rows(g, rows.data(), base);
        std::vector<float> wdec(static_cast<std::size_t>(N * K));
        to_f32(t, rows.data(), wdec.data(), N * K);
        for (int mr = 1; mr <= kMaxGemmRows; ++mr) {
          const auto x = rng.vec(mr * K, -3, 3);
          std::vector<float> first_out;  // the first table's (scalar when it has this mr)
          for (const auto* k : tables()) {
            if (mr > k->gemm_rows) continue;
            SCOPED_TRACE(std::string(k->name) + " " + std::string(dtype_name(t)) + " N " +
                         std::to_string(N) + " K " + std::to_string(K) + " mr " +
                         std::to_string(mr));
            ActPack act;
            act.reset(mr, K, k->gemm_rows);
            const std::int32_t off = kq                 ? 1
                                     : t == DType::Q8_0 ? k->q8_0_act_offset
                                                        : k->q4_0_act_offset;
            act.quantize_tiles(x.data(), k->quantize_act, off, 0, act.tiles());
            ASSERT_EQ(act.tiles(), 1);
            const ActTile a = act.tile(0);
            // Reference from the activation codes and decoded weights, block by block.
            std::vector<BlockQ8Act> qa(static_cast<std::size_t>(mr * nb));
            for (int m = 0; m < mr; ++m) quantize_act_q8(x.data() + m * K, qa.data() + m * nb, nb);
            const std::int64_t ldy = g.groups * 16 + 3;
            for (const auto& [accumulate, split] :
                 {std::pair{false, false}, std::pair{true, false}, std::pair{false, true}}) {
              std::vector<float> y(static_cast<std::size_t>(mr * ldy), std::nanf(""));
              if (accumulate)
                for (std::int64_t m = 0; m < mr; ++m)
                  for (std::int64_t n = 0; n < N; ++n)
                    y[static_cast<std::size_t>(m * ldy + n)] = 0.5f;
              const GemmFn fn = t == DType::Q8_0   ? k->gemm_q8_0
                                : t == DType::Q4_0 ? k->gemm_q4_0
                                : t == DType::Q4_K ? k->gemm_q4_k
                                : t == DType::Q5_K ? k->gemm_q5_k
                                                   : k->gemm_q6_k;
              // As many groups per call as the table takes (the last call of an odd count one).
              for (std::int64_t gi = 0; gi < g.groups; gi += k->gemm_groups) {
                const int groups =
                    static_cast<int>(std::min<std::int64_t>(k->gemm_groups, g.groups - gi));
                const auto* codes =
                    reinterpret_cast<const std::uint8_t*>(base) + gi * g.group_bytes;
                const auto* scales =
                    reinterpret_cast<const std::uint16_t*>(codes + g.scales_offset());
                const int n_valid =
                    static_cast<int>(std::min<std::int64_t>(16 * groups, N - gi * 16));
                if (!split) {
                  fn(codes, scales, g.group_bytes, groups, nb, a, y.data() + gi * 16, ldy, n_valid,
                     accumulate);
                  continue;
                }
                // The same blocks in two calls, the second continuing the first's chain (K-quant
                // calls start at super-blocks).
                const std::int64_t b1 = kq ? nb / 16 * 8 : nb / 2;
                if (b1 > 0)
                  fn(codes, scales, g.group_bytes, groups, b1, a, y.data() + gi * 16, ldy, n_valid,
                     accumulate);
                ActTile rest = a;
                rest.qs += b1 * a.mr * 32;
                rest.d += b1 * a.mr;
                rest.bias += b1 * a.mr;
                rest.hsum += b1 * a.mr;
                rest.dbias += b1 * a.mr;
                fn(codes + b1 * 16 * g.code_bytes,
                   reinterpret_cast<const std::uint16_t*>(codes + g.scales_at(b1)), g.group_bytes,
                   groups, nb - b1, rest, y.data() + gi * 16, ldy, n_valid, accumulate || b1 > 0);
              }
              for (std::int64_t m = 0; m < mr; ++m) {
                for (std::int64_t n = 0; n < ldy; ++n) {
                  const float got = y[static_cast<std::size_t>(m * ldy + n)];
                  if (n >= N) {
                    ASSERT_TRUE(std::isnan(got))
                        << "wrote past the valid rows at " << m << "," << n;
                    continue;
                  }
                  double ref = accumulate ? 0.5 : 0.0, mag = 0;
                  for (std::int64_t b = 0; b < nb; ++b) {
                    const BlockQ8Act& ab = qa[static_cast<std::size_t>(m * nb + b)];
                    double blk = 0;
                    for (int i = 0; i < 32; ++i)
                      blk +=
                          static_cast<double>(wdec[static_cast<std::size_t>(n * K + b * 32 + i)]) *
                          ab.qs[i];
                    ref += blk * ab.d;
                    mag += std::fabs(blk * ab.d);
                  }
                  ASSERT_NEAR(got, ref, 1e-5 * mag + 1e-6) << "y[" << m << "," << n << "]";
                }
              }
              // Every table, and a K split in two continued chains, must give the same bits.
              if (!accumulate) {
                if (first_out.empty())
                  first_out = y;
                else
                  for (std::size_t i = 0; i < y.size(); ++i)
                    ASSERT_EQ(std::memcmp(&y[i], &first_out[i], 4), 0)
                        << "differs from the first table's result at " << i;
              }
            }
          }
        }
      }
    }
  }
}

// The 16-bit float kernels of every table against a double reference (f32 activations, the
// decoded weights), K not a multiple of the 32-value step (zero padding), partial groups,
// every tile height, accumulation, a K split in two continued chains; all tables agree bit for
// bit (one fused multiply-add per value in k order in each).
TEST(CpuKernels, half_kernels_of_every_table_match_the_reference_and_each_other) {
  KWAAI_SEEDED_RNG();
  for (DType t : {DType::F16, DType::BF16}) {
    for (std::int64_t N : {1, 16, 21}) {
      for (std::int64_t K : {1, 31, 64, 172}) {
        const auto w = rng.vec(N * K, -2, 2);
        std::vector<std::byte> rows(dtype_bytes(t, N * K));
        from_f32(t, w.data(), rows.data(), N * K);
        std::vector<float> wdec(w.size());
        to_f32(t, rows.data(), wdec.data(), N * K);
        const PackGeometry g = pack_geometry(t, N, K);
        ASSERT_FALSE(g.scaled);
        std::vector<std::byte> packed(g.total_bytes() + 64);
        auto* base = reinterpret_cast<std::byte*>(
            (reinterpret_cast<std::uintptr_t>(packed.data()) + 63) / 64 * 64);
        pack_rows(g, rows.data(), base);
        const std::int64_t kp = g.nb * 32;
        for (int mr = 1; mr <= kMaxGemmRows; ++mr) {
          const auto x = rng.vec(mr * K, -3, 3);
          std::vector<float> first_out;
          for (const auto* k : tables()) {
            if (mr > k->gemm_half_rows) continue;
            SCOPED_TRACE(std::string(k->name) + " " + std::string(dtype_name(t)) + " N " +
                         std::to_string(N) + " K " + std::to_string(K) + " mr " +
                         std::to_string(mr));
            FloatActPack act;
            act.reset(mr, K, k->gemm_half_rows);
            act.fill_tiles(x.data(), 0, act.tiles());
            ASSERT_EQ(act.tiles(), 1);
            const FloatTile a = act.tile(0);
            const GemmHalfFn fn = t == DType::F16 ? k->gemm_f16 : k->gemm_bf16;
            const std::int64_t ldy = g.groups * 16 + 2;
            for (const auto& [accumulate, split] :
                 {std::pair{false, false}, std::pair{true, false}, std::pair{false, true}}) {
              std::vector<float> y(static_cast<std::size_t>(mr * ldy), std::nanf(""));
              if (accumulate)
                for (std::int64_t m = 0; m < mr; ++m)
                  for (std::int64_t n = 0; n < N; ++n)
                    y[static_cast<std::size_t>(m * ldy + n)] = 0.5f;
              for (std::int64_t gi = 0; gi < g.groups; ++gi) {
                const auto* wv = reinterpret_cast<const std::uint16_t*>(base + gi * g.group_bytes);
                const int n_valid = static_cast<int>(std::min<std::int64_t>(16, N - gi * 16));
                float* yg = y.data() + gi * 16;
                // 1- and 2-row tiles split their sums into chains (half_chains), so only
                // taller tiles promise the same bits when K is split.
                if (!split || half_chains(mr) > 1) {
                  fn(wv, kp, a, yg, ldy, n_valid, accumulate);
                  continue;
                }
                const std::int64_t k1 = kp / 2;
                if (k1 > 0) fn(wv, k1, a, yg, ldy, n_valid, accumulate);
                FloatTile rest = a;
                rest.xt += k1 * a.mr;
                fn(wv + k1 * 16, kp - k1, rest, yg, ldy, n_valid, accumulate || k1 > 0);
              }
              for (std::int64_t m = 0; m < mr; ++m)
                for (std::int64_t n = 0; n < ldy; ++n) {
                  const float got = y[static_cast<std::size_t>(m * ldy + n)];
                  if (n >= N) {
                    ASSERT_TRUE(std::isnan(got))
                        << "wrote past the valid rows at " << m << "," << n;
                    continue;
                  }
                  double ref = accumulate ? 0.5 : 0.0, mag = 0;
                  for (std::int64_t kk = 0; kk < K; ++kk) {
                    const double p =
                        static_cast<double>(wdec[static_cast<std::size_t>(n * K + kk)]) *
                        x[static_cast<std::size_t>(m * K + kk)];
                    ref += p;
                    mag += std::fabs(p);
                  }
                  ASSERT_NEAR(got, ref, 1e-5 * mag + 1e-6) << "y[" << m << "," << n << "]";
                }
              if (!accumulate) {
                if (first_out.empty())
                  first_out = y;
                else
                  for (std::size_t i = 0; i < y.size(); ++i)
                    ASSERT_EQ(std::memcmp(&y[i], &first_out[i], 4), 0)
                        << "differs from the first table's result at " << i;
              }
            }
          }
        }
      }
    }
  }
}

// Upload / download of packed weights: GGUF rows -> packed -> GGUF rows is the identity, and a
// row read from the packed form (embedding) decodes as the row does.
TEST(CpuKernels, packing_round_trips_and_rows_decode_from_the_packed_form) {
  KWAAI_SEEDED_RNG();
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    for (std::int64_t N : {1, 15, 16, 17, 40}) {
      const std::int64_t K = format_info(t).block_elems == kSuperBlock ? 512 : 96;
      const auto rows = random_quant_rows(rng, t, N, K);
      const PackGeometry g = pack_geometry(t, N, K);
      EXPECT_EQ(g.group_bytes % 64, 0u);
      EXPECT_GE(g.total_bytes(), rows.size());
      std::vector<std::byte> packed(g.total_bytes()), back(rows.size());
      pack_rows(g, rows.data(), packed.data());
      unpack_rows(g, packed.data(), back.data());
      ASSERT_EQ(std::memcmp(back.data(), rows.data(), rows.size()), 0);
      std::vector<float> ref(static_cast<std::size_t>(K)), got(ref.size());
      const std::size_t rb = dtype_bytes(t, K);
      for (std::int64_t r = 0; r < N; ++r) {
        to_f32(t, rows.data() + r * rb, ref.data(), K);
        packed_row_to_f32(g, packed.data(), r, got.data());
        ASSERT_EQ(got, ref) << "row " << r;
      }
      EXPECT_THROW(packed_row_to_f32(g, packed.data(), N, got.data()), std::out_of_range);
      // Any bytes, not only what the quantizer writes: the repacking keeps every bit.
      std::vector<std::byte> noise(rows.size());
      for (auto& b : noise) b = static_cast<std::byte>(rng.next());
      pack_rows(g, noise.data(), packed.data());
      unpack_rows(g, packed.data(), back.data());
      ASSERT_EQ(std::memcmp(back.data(), noise.data(), noise.size()), 0);
    }
  }
  // 16-bit floats: any row length (zero-padded to 32 values in the packed form).
  for (DType t : {DType::F16, DType::BF16}) {
    for (std::int64_t K : {1, 33, 172}) {
      const std::int64_t N = 19;
      const auto w = rng.vec(N * K, -2, 2);
      std::vector<std::byte> rows(dtype_bytes(t, N * K));
      from_f32(t, w.data(), rows.data(), N * K);
      const PackGeometry g = pack_geometry(t, N, K);
      std::vector<std::byte> packed(g.total_bytes()), back(rows.size());
      pack_rows(g, rows.data(), packed.data());
      unpack_rows(g, packed.data(), back.data());
      ASSERT_EQ(std::memcmp(back.data(), rows.data(), rows.size()), 0);
      std::vector<float> ref(static_cast<std::size_t>(K)), got(ref.size());
      for (std::int64_t r = 0; r < N; ++r) {
        to_f32(t, rows.data() + r * K * 2, ref.data(), K);
        packed_row_to_f32(g, packed.data(), r, got.data());
        ASSERT_EQ(got, ref) << "row " << r;
      }
    }
  }
  EXPECT_THROW(pack_geometry(DType::Q8_0, 4, 33), std::invalid_argument);
  EXPECT_THROW(pack_geometry(DType::F32, 4, 32), std::invalid_argument);
}

TEST(CpuKernels, every_isa_table_quantizes_activations_to_the_reference_bytes) {
  KWAAI_SEEDED_RNG();
  for (std::int64_t nb : {1, 2, 7, 128, 448}) {
    auto x = rng.vec(nb * 32, -4, 4);
    // Ties of the rounding (x * id exactly k + 0.5), a zero block and an amax sign flip.
    for (std::int64_t j = 0; j < 32; ++j) x[j] = (j % 2 ? 1.0f : -1.0f) * (j + 0.5f);
    x[31] = 127.0f;  // id = 1: codes are the values, ties at .5 round to even
    if (nb > 1)
      for (std::int64_t j = 32; j < 64; ++j) x[j] = 0.0f;
    std::vector<BlockQ8Act> ref(static_cast<std::size_t>(nb));
    quantize_act_q8(x.data(), ref.data(), nb);
    EXPECT_EQ(ref[0].qs[0], 0);  // -0.5 -> -0
    EXPECT_EQ(ref[0].qs[1], 2);  // 1.5 -> 2
    EXPECT_EQ(ref[0].qs[5], 6);  // 5.5 -> 6
    for (const auto* k : tables()) {
      SCOPED_TRACE(std::string(k->name) + " blocks " + std::to_string(nb));
      std::vector<BlockQ8Act> got(static_cast<std::size_t>(nb));
      std::memset(got.data(), 0xA5, got.size() * sizeof(BlockQ8Act));
      k->quantize_act(x.data(), got.data(), nb);
      ASSERT_EQ(std::memcmp(got.data(), ref.data(), got.size() * sizeof(BlockQ8Act)), 0);
    }
  }
}

TEST(CpuKernels, every_isa_table_agrees_on_axpy_exp_sum_and_silu_mul) {
  KWAAI_SEEDED_RNG();
  for (std::int64_t n : {1, 7, 15, 16, 17, 33, 128, 4097}) {
    SCOPED_TRACE("n " + std::to_string(n));
    auto x = rng.vec(n, -30, 30);
    const auto y0 = rng.vec(n, -3, 3), u = rng.vec(n, -2, 2);
    // exp's underflow end after the shift: exp(-112.5) and a result that is denormal in float.
    if (n > 3) x[3] = -100.0f;
    if (n > 4) x[4] = -78.0f;
    // Extremes: exp's overflow / underflow ends and silu's saturation.
    auto g = rng.vec(n, -20, 20);
    g[0] = 120.0f;
    if (n > 1) g[1] = -120.0f;
    if (n > 2) g[2] = 0.0f;
    const float a = 0.75f, shift = 12.5f;
    for (const auto* k : tables()) {
      SCOPED_TRACE(k->name);
      std::vector<float> y = y0;
      k->axpy_f32(a, x.data(), y.data(), n);
      for (std::int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(y[i], y0[i] + static_cast<double>(a) * x[i], 1e-5 * (1 + std::fabs(y[i])));

      std::vector<float> e = x;
      const double sum = k->exp_sum_f32(e.data(), shift, n);
      double ref_sum = 0;
      for (std::int64_t i = 0; i < n; ++i) {
        const float d = x[i] - shift;  // the kernels subtract in float too
        const double r = std::exp(static_cast<double>(d));
        ref_sum += r;
        ASSERT_NEAR(e[i], r, 4e-7 * r + 1e-37) << "i " << i << " x " << x[i];
      }
      EXPECT_NEAR(sum, ref_sum, 1e-6 * ref_sum);

      std::vector<float> o(static_cast<std::size_t>(n), std::nanf(""));
      k->silu_mul_f32(g.data(), u.data(), o.data(), n);
      for (std::int64_t i = 0; i < n; ++i) {
        const double gi = g[i];
        const double r = gi / (1.0 + std::exp(-gi)) * u[i];
        ASSERT_NEAR(o[i], r, 1e-6 * (std::fabs(r) + 1e-30)) << "i " << i << " g " << g[i];
      }
    }
  }
}

}  // namespace
}  // namespace kwaai::engine::cpu
