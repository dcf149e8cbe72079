#version 450
// out[t, :] = table[ids[t], :] as f32, for any weight dtype (WTYPE, see weights.glsl).
// Tables larger than one binding are gathered by several dispatches over row chunks
// [row0, row0 + rows): a dispatch writes only the tokens whose id falls in its chunk, and
// the dispatch flagged `zero_invalid` also writes the zero rows of ids outside [0, V).
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Params {
  uint T;
  uint K;
  uint V;
  uint row0;
  uint rows;
  uint zero_invalid;
  uint ids_base;
  uint w_base;
  uint o_base;
} p;

layout(std430, binding = 0) readonly buffer IBuf { int IDS[]; };
layout(std430, binding = 1) readonly buffer WBufB { uint WBUF[]; };
layout(std430, binding = 2) writeonly buffer OBuf { float O[]; };

#include "ops_common.glsl"
#include "weights.glsl"

void main() {
  uint idx = flat_index();
  if (idx >= p.T * p.K) return;
  uint t = idx / p.K, k = idx % p.K;
  int id = IDS[p.ids_base + t];
  if (id < 0 || uint(id) >= p.V) {
    if (p.zero_invalid != 0u) O[p.o_base + idx] = 0.0;
    return;
  }
  uint r = uint(id);
  if (r < p.row0 || r >= p.row0 + p.rows) return;
  O[p.o_base + idx] = w_at(p.w_base, p.K, r - p.row0, k);
}
