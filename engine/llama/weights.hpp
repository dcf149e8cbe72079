// Moving weights from engine/model's host tensors to the device, with optional load-time
// block quantization (Q8_0 / Q4_0) of matrices.
#pragma once

#include <string>

#include "engine/core/backend.hpp"
#include "engine/model/host_tensor.hpp"

namespace kwaai::engine::llama {

// Uploads a weight matrix [N, K]. Under kNoQuant it keeps its loaded dtype; otherwise it is
// converted row by row to q8_0/q4_0 — except when K is not a multiple of 32 (stories260K's
// down_proj has K = 172), where block quantization is impossible and the matrix stays as loaded.
Tensor upload_matrix(Backend& be, const HostTensor& t, Quant quant);
// Uploads a vector (a norm weight) as f32 [n].
Tensor upload_f32(Backend& be, const HostTensor& t);
// Throws std::invalid_argument naming the tensor if its shape or byte size is not `want`.
void expect_shape(const HostTensor& t, const Shape& want);

}  // namespace kwaai::engine::llama
