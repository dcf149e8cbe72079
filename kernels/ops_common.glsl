// Helpers shared by the op kernels (kernels/*.comp of the "vulkan" backend).
//
// Large element-wise dispatches exceed the 65535 workgroups a single grid dimension is
// guaranteed to allow, so the host spreads them over x and y; flat_index() folds the 2-D
// grid back into one linear invocation index.
#ifndef KWAAI_OPS_COMMON_GLSL
#define KWAAI_OPS_COMMON_GLSL

uint flat_index() {
  return gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
}

uint flat_group() { return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x; }

#endif
