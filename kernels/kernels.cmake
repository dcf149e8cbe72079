# The kernel variant table. One line per variant; variants of one source differ only in
# DEFINES (dtype, subgroup use), never in copied sources. Format:
#   kwaai_kernel(NAME <variant> SOURCE <file.comp> BINDINGS <n> PUSH <bytes>
#                [DEFINES A=1 B ...] [FEATURES fp16 storage16 storage8 subgroup
#                                              subgroup_shuffle int8 int16 int64])
# BINDINGS = storage buffers at set 0, bindings 0..n-1; PUSH = push-constant block bytes.
# Both are checked against the compiled module by tests/runtime (kernel_table_test).

# --- runtime: buffer scale (y = a*x + b), used by runtime tests and the bandwidth probe.
kwaai_kernel(NAME scale_f32 SOURCE scale.comp BINDINGS 2 PUSH 16 DEFINES IN_F16=0)
kwaai_kernel(NAME scale_f16_f32 SOURCE scale.comp BINDINGS 2 PUSH 16 DEFINES IN_F16=1
             FEATURES storage16)
# --- runtime: per-workgroup sum, exercising common.glsl's reductions with and without subgroups.
kwaai_kernel(NAME reduce_sum_f32 SOURCE reduce_sum.comp BINDINGS 2 PUSH 8 DEFINES USE_SUBGROUP=0)
kwaai_kernel(NAME reduce_sum_f32_subgroup SOURCE reduce_sum.comp BINDINGS 2 PUSH 8
             DEFINES USE_SUBGROUP=1 FEATURES subgroup)

# --- vulkan backend ops (engine/vulkan). Weight dtypes: WTYPE 0 f32, 1 f16, 2 bf16, 3 q8_0,
# 4 q4_0, 5 q4_k, 6 q5_k, 7 q6_k (see weights.glsl; the format table's vk_wtype). Every op has a
# variant that needs no optional feature.
foreach(wt f32 f16 bf16 q8_0 q4_0 q4_k q5_k q6_k)
  if(wt STREQUAL "f32")
    set(wtn 0)
  elseif(wt STREQUAL "f16")
    set(wtn 1)
  elseif(wt STREQUAL "bf16")
    set(wtn 2)
  elseif(wt STREQUAL "q8_0")
    set(wtn 3)
  elseif(wt STREQUAL "q4_0")
    set(wtn 4)
  elseif(wt STREQUAL "q4_k")
    set(wtn 5)
  elseif(wt STREQUAL "q5_k")
    set(wtn 6)
  else()
    set(wtn 7)
  endif()
  # Decode mat-vec (M <= 8) and its gate/up + SiLU·mul fusion, each with and without subgroups.
  kwaai_kernel(NAME matmul_mv_${wt} SOURCE matvec.comp BINDINGS 3 PUSH 40 DEFINES WTYPE=${wtn})
  kwaai_kernel(NAME matmul_mv_sg_${wt} SOURCE matvec.comp BINDINGS 3 PUSH 40
               DEFINES WTYPE=${wtn} SUBGROUP FEATURES subgroup)
  kwaai_kernel(NAME matmul_mv_gu_${wt} SOURCE matvec.comp BINDINGS 4 PUSH 40
               DEFINES WTYPE=${wtn} GATEUP)
  kwaai_kernel(NAME matmul_mv_gu_sg_${wt} SOURCE matvec.comp BINDINGS 4 PUSH 40
               DEFINES WTYPE=${wtn} GATEUP SUBGROUP FEATURES subgroup)
  kwaai_kernel(NAME matmul_mm_${wt} SOURCE matmul.comp BINDINGS 3 PUSH 36 DEFINES WTYPE=${wtn})
  kwaai_kernel(NAME embedding_${wt} SOURCE embedding.comp BINDINGS 3 PUSH 36 DEFINES WTYPE=${wtn})
endforeach()
kwaai_kernel(NAME rms_norm_f32 SOURCE rms_norm.comp BINDINGS 3 PUSH 24)
kwaai_kernel(NAME layer_norm_f32 SOURCE layer_norm.comp BINDINGS 4 PUSH 28)
kwaai_kernel(NAME rope_f32 SOURCE rope.comp BINDINGS 3 PUSH 24)
kwaai_kernel(NAME attention_f32 SOURCE attention.comp BINDINGS 4 PUSH 72)
kwaai_kernel(NAME attention_split_f32 SOURCE attention.comp BINDINGS 4 PUSH 72 DEFINES SPLIT)
kwaai_kernel(NAME attention_combine_f32 SOURCE attention_combine.comp BINDINGS 2 PUSH 16)
kwaai_kernel(NAME kv_write_f32 SOURCE kv_write.comp BINDINGS 2 PUSH 28)
kwaai_kernel(NAME rope_kv_f32 SOURCE rope_kv.comp BINDINGS 7 PUSH 56)
kwaai_kernel(NAME add_f32 SOURCE eltwise.comp BINDINGS 3 PUSH 16 DEFINES OP_ADD)
kwaai_kernel(NAME silu_mul_f32 SOURCE eltwise.comp BINDINGS 3 PUSH 16 DEFINES OP_SILU_MUL)
kwaai_kernel(NAME gelu_f32 SOURCE eltwise.comp BINDINGS 2 PUSH 16 DEFINES OP_GELU)
kwaai_kernel(NAME gelu_tanh_f32 SOURCE eltwise.comp BINDINGS 2 PUSH 16 DEFINES OP_GELU_TANH)
kwaai_kernel(NAME bias_add_f32 SOURCE eltwise.comp BINDINGS 2 PUSH 16 DEFINES OP_BIAS_ADD)
kwaai_kernel(NAME copy_u32 SOURCE copy.comp BINDINGS 2 PUSH 12)
kwaai_kernel(NAME copy_u32x4 SOURCE copy.comp BINDINGS 2 PUSH 12 DEFINES VEC4)
kwaai_kernel(NAME softmax_f32 SOURCE rowreduce.comp BINDINGS 2 PUSH 16 DEFINES OP_SOFTMAX)
kwaai_kernel(NAME argmax_f32 SOURCE rowreduce.comp BINDINGS 2 PUSH 16 DEFINES OP_ARGMAX)
kwaai_kernel(NAME blockwise8_absmax SOURCE blockwise8.comp BINDINGS 2 PUSH 20 DEFINES OP_ABSMAX)
kwaai_kernel(NAME blockwise8_quantize SOURCE blockwise8.comp BINDINGS 4 PUSH 20 DEFINES OP_QUANTIZE)
kwaai_kernel(NAME blockwise8_dequantize SOURCE blockwise8.comp BINDINGS 4 PUSH 20
             DEFINES OP_DEQUANTIZE)
kwaai_kernel(NAME topk_abs_f32 SOURCE topk.comp BINDINGS 4 PUSH 32)
kwaai_kernel(NAME moe_route_f32 SOURCE moe.comp BINDINGS 3 PUSH 24 DEFINES OP_ROUTE)
kwaai_kernel(NAME gather_rows_f32 SOURCE moe.comp BINDINGS 3 PUSH 24 DEFINES OP_GATHER)
kwaai_kernel(NAME scatter_add_rows_f32 SOURCE moe.comp BINDINGS 4 PUSH 28 DEFINES OP_SCATTER_ADD)
