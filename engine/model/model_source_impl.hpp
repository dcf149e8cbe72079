// Internal: the two ModelSource implementations behind open_model().
#pragma once

#include <memory>
#include <string>

#include "engine/model/model_source.hpp"

namespace kwaai::engine::detail {

std::unique_ptr<ModelSource> open_hf_source(const std::string& dir);
std::unique_ptr<ModelSource> open_gguf_source(const std::string& file);

}  // namespace kwaai::engine::detail
