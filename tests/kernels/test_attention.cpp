// Causal GQA attention over a KV cache: decode (T = 1) at KV length 1 and 2048, prefill,
// prefill continuing after a past, batches, and MHA/MQA head layouts.
#include <cmath>

#include "tests/kernels/op_test_util.hpp"
#include "tests/kernels/reference.hpp"

namespace kwaai::test {
namespace {

using engine::DType;

struct AttnCase {
  std::int64_t B, T, Hq, Hkv, D, L, n_past;
  std::int64_t window = 0;  // sliding window (0: full causal)
  float alibi = 0.0f;       // ALiBi max bias (0: none; Bloom: 8)
};

void run_attention(engine::Backend& be, Rng& rng, const AttnCase& c, float logit_range = 1.0f) {
  SCOPED_TRACE("B " + std::to_string(c.B) + " T " + std::to_string(c.T) + " Hq " +
               std::to_string(c.Hq) + " Hkv " + std::to_string(c.Hkv) + " D " +
               std::to_string(c.D) + " L " + std::to_string(c.L) + " n_past " +
               std::to_string(c.n_past) + " window " + std::to_string(c.window) + " alibi " +
               std::to_string(c.alibi));
  const auto q = rng.vec(c.B * c.T * c.Hq * c.D, -logit_range, logit_range);
  auto k = rng.vec(c.B * c.L * c.Hkv * c.D);
  const auto v = rng.vec(c.B * c.L * c.Hkv * c.D);
  // Rows past n_past + T are outside the causal window: make them huge so attending to
  // them by mistake cannot go unnoticed.
  for (std::int64_t b = 0; b < c.B; ++b)
    for (std::int64_t j = c.n_past + c.T; j < c.L; ++j)
      for (std::int64_t i = 0; i < c.Hkv * c.D; ++i)
        k[static_cast<std::size_t>((b * c.L + j) * c.Hkv * c.D + i)] = 1e3f;
  // With a window that hides row 0 from every query (the earliest sits at n_past), row 0 is made
  // huge the same way; otherwise the reference's masking alone tells a wrong window apart.
  if (c.window > 0 && c.n_past >= c.window)
    for (std::int64_t b = 0; b < c.B; ++b)
      for (std::int64_t i = 0; i < c.Hkv * c.D; ++i)
        k[static_cast<std::size_t>(b * c.L * c.Hkv * c.D + i)] = 1e3f;
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.D));
  const auto out = poisoned(be, DType::F32, {c.B, c.T, c.Hq, c.D});
  be.attention(upload(be, DType::F32, {c.B, c.T, c.Hq, c.D}, q),
               upload(be, DType::F32, {c.B, c.L, c.Hkv, c.D}, k),
               upload(be, DType::F32, {c.B, c.L, c.Hkv, c.D}, v), out, c.n_past, scale, c.window,
               c.alibi);
  EXPECT_TRUE(all_close(
      download<float>(be, out),
      ref::attention(q, k, v, c.B, c.T, c.Hq, c.Hkv, c.D, c.L, c.n_past, scale, c.window, c.alibi),
      2e-5, 1e-4));
}

class AttentionTest : public OpTest {};

TEST_P(AttentionTest, gqa_decode_kv_length_1) {
  KWAAI_SEEDED_RNG();
  run_attention(be(), rng, {1, 1, 32, 8, 128, 16, 0});
}

TEST_P(AttentionTest, gqa_decode_kv_length_2048) {
  KWAAI_SEEDED_RNG();
  run_attention(be(), rng, {1, 1, 32, 8, 128, 2048, 2047});
}

TEST_P(AttentionTest, gqa_prefill_33_tokens_from_empty_cache) {
  KWAAI_SEEDED_RNG();
  run_attention(be(), rng, {1, 33, 32, 8, 128, 64, 0});
}

TEST_P(AttentionTest, prefill_after_past_batched) {
  KWAAI_SEEDED_RNG();
  run_attention(be(), rng, {2, 7, 4, 2, 64, 128, 100});
}

TEST_P(AttentionTest, odd_head_layouts_mha_mqa_and_small_dims) {
  KWAAI_SEEDED_RNG();
  run_attention(be(), rng, {1, 3, 1, 1, 1, 5, 2});
  run_attention(be(), rng, {1, 5, 7, 7, 33, 9, 1});  // MHA, odd D
  run_attention(be(), rng, {3, 2, 6, 1, 16, 7, 4});  // MQA
}

TEST_P(AttentionTest, large_logits_stay_finite) {
  KWAAI_SEEDED_RNG();
  run_attention(be(), rng, {1, 4, 8, 2, 64, 32, 20}, 40.0f);
  run_attention(be(), rng, {1, 70, 8, 2, 64, 100, 20}, 40.0f);  // blocked prefill path
}

// Prefill long enough for the CPU's blocked (flash-style) path: query blocks that end inside a
// 64-key block and across several, a past that is not a multiple of the 16-key chunk, the
// smallest head dims (stories260K's 8), MQA (one KV head for 32 query heads) and odd D.
TEST_P(AttentionTest, blocked_prefill_crossing_key_blocks_and_chunks) {
  KWAAI_SEEDED_RNG();
  run_attention(be(), rng, {1, 8, 4, 2, 64, 8, 0});  // the smallest blocked step
  run_attention(be(), rng, {1, 150, 32, 8, 128, 160, 0});
  run_attention(be(), rng, {2, 67, 8, 2, 64, 200, 37});  // a past, batched
  run_attention(be(), rng, {1, 40, 8, 8, 8, 64, 5});     // D = 8
  run_attention(be(), rng, {1, 33, 32, 1, 64, 40, 3});   // MQA
  run_attention(be(), rng, {1, 21, 6, 3, 33, 30, 2});    // odd D
}

// Decode over contexts on both sides of the Vulkan backend's partition size (256 keys) and of
// its partition cap (64 partitions, then partitions grow), batched, with large logits: the
// split (flash-decoding) path and its combine step; the CPU's blocked decode (>= 128 keys).
TEST_P(AttentionTest, decode_contexts_crossing_partition_boundaries) {
  KWAAI_SEEDED_RNG();
  for (std::int64_t n_past : {255, 256, 257, 511, 700})
    run_attention(be(), rng, {1, 1, 8, 2, 64, n_past + 3, n_past});
  run_attention(be(), rng, {3, 1, 4, 4, 33, 600, 599}, 40.0f);  // batched, odd D, MHA
  run_attention(be(), rng, {1, 1, 4, 1, 128, 16500, 16400});    // > 64 partitions of 256
}

// Sliding-window attention (Mistral): each query sees its last W rows. Prefill shorter and longer
// than the window on both CPU paths (rows and blocked, windows that start inside and across
// 64-key blocks), decode after a long past (Vulkan's split path: partitions wholly before the
// window are empty), a window of 1, and a window wider than the context (no effect).
TEST_P(AttentionTest, sliding_window_keeps_the_last_w_rows) {
  KWAAI_SEEDED_RNG();
  run_attention(be(), rng, {1, 5, 4, 2, 16, 8, 0, 3});        // row path, prefill
  run_attention(be(), rng, {1, 17, 4, 2, 16, 18, 0, 8});      // tiny-mistral's shape
  run_attention(be(), rng, {2, 70, 8, 2, 64, 100, 20, 50});   // blocked, a past, batched
  run_attention(be(), rng, {1, 150, 4, 1, 32, 160, 0, 100});  // window start inside key blocks
  run_attention(be(), rng, {1, 1, 8, 2, 64, 20, 17, 8});      // decode, row path
  run_attention(be(), rng, {1, 1, 8, 2, 64, 703, 700, 300});  // decode, blocked / split
  run_attention(be(), rng, {1, 1, 4, 4, 33, 600, 599, 257});
  run_attention(be(), rng, {1, 9, 4, 2, 16, 12, 2, 1});     // window 1: itself only
  run_attention(be(), rng, {1, 9, 4, 2, 16, 12, 2, 1000});  // wider than the context
}

// ALiBi (Bloom): the per-head linear bias on key distance, with head counts that are and are
// not powers of two (6 and 12 take HF's extra-slope rule), on the CPU's row and blocked paths,
// prefill after a past, and decode after long pasts (Vulkan's split path), where a bias of -0.5
// per key decides which keys matter at all.
TEST_P(AttentionTest, alibi_biases_each_head_by_key_distance) {
  KWAAI_SEEDED_RNG();
  run_attention(be(), rng, {1, 5, 6, 6, 16, 8, 0, 0, 8.0f});        // row path, prefill
  run_attention(be(), rng, {1, 17, 6, 6, 16, 18, 0, 0, 8.0f});      // tiny-bloom's shape
  run_attention(be(), rng, {2, 70, 12, 12, 32, 100, 20, 0, 8.0f});  // blocked, a past, batched
  run_attention(be(), rng, {1, 1, 8, 8, 64, 20, 17, 0, 8.0f});      // decode, row path
  run_attention(be(), rng, {1, 1, 6, 6, 64, 703, 700, 0, 8.0f});    // decode, blocked / split
  run_attention(be(), rng, {1, 1, 16, 16, 64, 300, 290, 0, 8.0f}, 20.0f);
}

TEST_P(AttentionTest, rejects_bad_shapes_and_cache_overflow) {
  auto& b = be();
  const auto q = b.alloc(DType::F32, {1, 2, 4, 8});
  const auto k = b.alloc(DType::F32, {1, 10, 2, 8});
  EXPECT_TRUE(throws_invalid("attention", [&] { b.attention(q, k, k, q, 9, 1.0f, 0, 0.0f); }));
  EXPECT_TRUE(throws_invalid("attention", [&] {
    b.attention(q, b.alloc(DType::F32, {1, 10, 3, 8}), b.alloc(DType::F32, {1, 10, 3, 8}), q, 0,
                1.0f, 0, 0.0f);
  }));
  EXPECT_TRUE(throws_invalid("attention", [&] {
    b.attention(q, k, b.alloc(DType::F32, {1, 10, 2, 4}), q, 0, 1.0f, 0, 0.0f);
  }));
  EXPECT_TRUE(throws_invalid("attention", [&] {
    b.attention(q, k, k, b.alloc(DType::F32, {1, 2, 4, 4}), 0, 1.0f, 0, 0.0f);
  }));
  EXPECT_TRUE(throws_invalid("attention", [&] { b.attention(q, k, k, q, 0, 1.0f, -1, 0.0f); }));
}

KWAAI_INSTANTIATE_OPS(AttentionTest);

}  // namespace
}  // namespace kwaai::test
