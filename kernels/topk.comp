#version 450
// Per row of x[M, N]: the k entries of largest |x| in descending |x| (ties: lower index),
// one workgroup per row, in three steps:
//  1. radix select: four 8-bit histogram passes over the bits of |x| (non-negative floats
//     order like their bit patterns) find the k-th largest key T and how many entries equal
//     to T are needed;
//  2. ordered compaction into a scratch row: every key > T, plus the lowest-index entries
//     equal to T (a workgroup prefix sum per chunk keeps index order for those);
//  3. bitonic sort of the k (padded to P = next power of two) selected (key, index) pairs
//     in the scratch buffer, then the indices and signed values are written out.
// Costs O(4N + P log^2 P) per row and fixed shared memory, for any N and k.
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 256) in;
const uint WG = 256u;

layout(push_constant) uniform Params {
  uint M;
  uint N;
  uint k;
  uint P;  // power of two >= k; scratch holds 2 * P words per row
  uint x_base;
  uint i_base;
  uint v_base;
  uint s_base;
} p;

layout(std430, binding = 0) readonly buffer XBuf { float X[]; };
layout(std430, binding = 1) writeonly buffer IBuf { int IDX[]; };
layout(std430, binding = 2) writeonly buffer VBuf { float VAL[]; };
layout(std430, binding = 3) coherent buffer SBuf { uint S[]; };

#include "ops_common.glsl"

shared uint hist[256];
shared uint sel_prefix;
shared uint sel_mask;
shared uint sel_remaining;
shared uint gt_count;
shared uint tie_count;
shared uint scan[WG];

uint key_of(uint xo, uint i) { return floatBitsToUint(X[xo + i]) & 0x7FFFFFFFu; }

// True when pair a sorts before pair b: larger key first, then lower index.
bool before(uint ka, uint ia, uint kb, uint ib) { return ka > kb || (ka == kb && ia < ib); }

void main() {
  uint row = flat_group();
  if (row >= p.M) return;  // uniform per workgroup
  uint tid = gl_LocalInvocationID.x;
  uint xo = p.x_base + row * p.N;
  uint so = p.s_base + row * 2u * p.P;

  // 1. radix select
  if (tid == 0u) {
    sel_prefix = 0u;
    sel_mask = 0u;
    sel_remaining = p.k;
    gt_count = 0u;
    tie_count = 0u;
  }
  for (int pass = 0; pass < 4; ++pass) {
    uint shift = uint(24 - 8 * pass);
    hist[tid] = 0u;  // WG == 256 bins
    barrier();
    uint prefix = sel_prefix, mask = sel_mask;
    for (uint i = tid; i < p.N; i += WG) {
      uint key = key_of(xo, i);
      if ((key & mask) == prefix) atomicAdd(hist[(key >> shift) & 0xFFu], 1u);
    }
    barrier();
    if (tid == 0u) {
      uint cum = 0u;
      for (int b = 255; b >= 0; --b) {
        uint h = hist[b];
        if (cum + h >= sel_remaining) {
          sel_remaining -= cum;
          sel_prefix |= uint(b) << shift;
          sel_mask |= 0xFFu << shift;
          break;
        }
        cum += h;
      }
    }
    barrier();
  }
  uint T = sel_prefix;
  uint ties_needed = sel_remaining;
  uint n_gt = p.k - ties_needed;

  // 2. ordered compaction
  for (uint c0 = 0u; c0 < p.N; c0 += WG) {
    uint i = c0 + tid;
    uint key = i < p.N ? key_of(xo, i) : 0u;
    bool is_gt = i < p.N && key > T;
    bool is_tie = i < p.N && key == T;
    if (is_gt) {
      uint slot = atomicAdd(gt_count, 1u);
      S[so + 2u * slot] = key;
      S[so + 2u * slot + 1u] = i;
    }
    scan[tid] = is_tie ? 1u : 0u;
    barrier();
    for (uint off = 1u; off < WG; off <<= 1) {  // inclusive Hillis-Steele scan
      uint add = tid >= off ? scan[tid - off] : 0u;
      barrier();
      scan[tid] += add;
      barrier();
    }
    uint base = tie_count;
    if (is_tie) {
      uint rank = base + scan[tid] - 1u;
      if (rank < ties_needed) {
        uint slot = n_gt + rank;
        S[so + 2u * slot] = key;
        S[so + 2u * slot + 1u] = i;
      }
    }
    barrier();
    if (tid == WG - 1u) tie_count = base + scan[WG - 1u];
    barrier();
  }
  for (uint s = p.k + tid; s < p.P; s += WG) {  // padding sorts last
    S[so + 2u * s] = 0u;
    S[so + 2u * s + 1u] = 0xFFFFFFFFu;
  }
  memoryBarrierBuffer();
  barrier();

  // 3. bitonic sort of P pairs
  for (uint size = 2u; size <= p.P; size <<= 1) {
    for (uint stride = size >> 1; stride > 0u; stride >>= 1) {
      for (uint i = tid; i < p.P; i += WG) {
        uint j = i ^ stride;
        if (j > i) {
          uint ka = S[so + 2u * i], ia = S[so + 2u * i + 1u];
          uint kb = S[so + 2u * j], ib = S[so + 2u * j + 1u];
          bool forward = (i & size) == 0u;
          bool swap = forward ? before(kb, ib, ka, ia) : before(ka, ia, kb, ib);
          if (swap) {
            S[so + 2u * i] = kb;
            S[so + 2u * i + 1u] = ib;
            S[so + 2u * j] = ka;
            S[so + 2u * j + 1u] = ia;
          }
        }
      }
      memoryBarrierBuffer();
      barrier();
    }
  }

  for (uint j = tid; j < p.k; j += WG) {
    uint i = S[so + 2u * j + 1u];
    IDX[p.i_base + row * p.k + j] = int(i);
    VAL[p.v_base + row * p.k + j] = X[xo + i];
  }
}
