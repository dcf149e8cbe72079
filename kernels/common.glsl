// Shared GLSL for every kernel: fp16/bf16 unpacking from 32-bit words (no 16-bit storage
// needed) and workgroup reductions with or without subgroup operations.
//
// Options, set before #include "common.glsl" (or through kernels.cmake DEFINES):
//   USE_SUBGROUP=1       reductions use subgroupAdd/subgroupMax (variant FEATURES subgroup)
//   KWAAI_REDUCE_SIZE    number of invocations taking part in a reduction (a constant
//                        expression, usually gl_WorkGroupSize.x); declares the shared scratch.
// Reductions assume a 1-D workgroup and must be reached by every invocation (uniform control).
#ifndef KWAAI_COMMON_GLSL
#define KWAAI_COMMON_GLSL

#ifndef USE_SUBGROUP
#define USE_SUBGROUP 0
#endif

#if USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

// ---- 16-bit float formats packed two per uint (element 0 in the low half) ----
float kwaai_f16_lo(uint w) { return unpackHalf2x16(w).x; }
float kwaai_f16_hi(uint w) { return unpackHalf2x16(w).y; }
// bf16 is the top half of an f32, so widening is a shift.
float kwaai_bf16_lo(uint w) { return uintBitsToFloat(w << 16); }
float kwaai_bf16_hi(uint w) { return uintBitsToFloat(w & 0xffff0000u); }
vec2 kwaai_bf16x2(uint w) { return vec2(kwaai_bf16_lo(w), kwaai_bf16_hi(w)); }
// Element i of a packed 16-bit array stored as uint words.
float kwaai_f16_at(uint w, uint i) { return (i & 1u) == 0u ? kwaai_f16_lo(w) : kwaai_f16_hi(w); }
float kwaai_bf16_at(uint w, uint i) { return (i & 1u) == 0u ? kwaai_bf16_lo(w) : kwaai_bf16_hi(w); }

// ---- workgroup reductions ----
#ifdef KWAAI_REDUCE_SIZE
shared float kwaai_reduce_scratch[KWAAI_REDUCE_SIZE];

#if USE_SUBGROUP
// One partial per subgroup through shared memory, then the first subgroup folds the partials.
#define KWAAI_DEFINE_WG_REDUCE(fname, sg_op, combine, identity)                    \
  float fname(float v) {                                                          \
    float s = sg_op(v);                                                           \
    if (subgroupElect()) kwaai_reduce_scratch[gl_SubgroupID] = s;                 \
    barrier();                                                                    \
    if (gl_SubgroupID == 0u) {                                                    \
      float t = identity;                                                         \
      for (uint i = gl_SubgroupInvocationID; i < gl_NumSubgroups; i += gl_SubgroupSize) \
        t = combine(t, kwaai_reduce_scratch[i]);                                  \
      t = sg_op(t);                                                               \
      if (subgroupElect()) kwaai_reduce_scratch[0] = t;                           \
    }                                                                             \
    barrier();                                                                    \
    float r = kwaai_reduce_scratch[0];                                            \
    barrier();                                                                    \
    return r;                                                                     \
  }
#else
// Tree over shared memory; works for any size (not only powers of two).
#define KWAAI_DEFINE_WG_REDUCE(fname, sg_op, combine, identity)                    \
  float fname(float v) {                                                          \
    const uint n = uint(KWAAI_REDUCE_SIZE);                                       \
    const uint i = gl_LocalInvocationIndex;                                       \
    kwaai_reduce_scratch[i] = v;                                                  \
    barrier();                                                                    \
    uint half_n = 1u;                                                             \
    while (half_n < n) half_n <<= 1u;                                             \
    for (uint stride = half_n >> 1u; stride > 0u; stride >>= 1u) {                \
      if (i < stride && i + stride < n)                                           \
        kwaai_reduce_scratch[i] = combine(kwaai_reduce_scratch[i], kwaai_reduce_scratch[i + stride]); \
      barrier();                                                                  \
    }                                                                             \
    float r = kwaai_reduce_scratch[0];                                            \
    barrier();                                                                    \
    return r;                                                                     \
  }
#endif

float kwaai_add(float a, float b) { return a + b; }
KWAAI_DEFINE_WG_REDUCE(kwaai_wg_sum, subgroupAdd, kwaai_add, 0.0)
KWAAI_DEFINE_WG_REDUCE(kwaai_wg_max, subgroupMax, max, -1.0 / 0.0)
#endif  // KWAAI_REDUCE_SIZE

#endif  // KWAAI_COMMON_GLSL
