#include "p2p/hivemind/tensor.hpp"

namespace kwaai::p2p::hivemind {

std::vector<pb::Tensor> split_for_streaming(const pb::Tensor& t, std::size_t chunk_size_bytes) {
  if (chunk_size_bytes == 0) chunk_size_bytes = 1;
  const std::string& buf = t.buffer();
  const std::size_t parts = (buf.size() + chunk_size_bytes - 1) / chunk_size_bytes;
  std::vector<pb::Tensor> out;
  pb::Tensor first = t;
  first.set_buffer(buf.substr(0, chunk_size_bytes));
  first.set_chunks(static_cast<std::int32_t>(parts));
  out.push_back(std::move(first));
  for (std::size_t i = 1; i < parts; ++i) {
    pb::Tensor part;
    part.set_buffer(buf.substr(i * chunk_size_bytes, chunk_size_bytes));
    out.push_back(std::move(part));
  }
  return out;
}

Result<pb::Tensor> combine_from_streaming(const std::vector<pb::Tensor>& parts,
                                          std::size_t max_buffer_bytes) {
  if (parts.empty()) return make_error(Errc::malformed, "no tensor parts to combine");
  std::size_t total = 0;
  for (const auto& p : parts) {
    total += p.buffer().size();
    if (total > max_buffer_bytes)
      return make_error(Errc::too_large,
                        "streamed tensor exceeds " + std::to_string(max_buffer_bytes) + " bytes");
  }
  pb::Tensor out = parts.front();
  out.clear_chunks();
  std::string buf;
  buf.reserve(total);
  for (const auto& p : parts) buf += p.buffer();
  out.set_buffer(std::move(buf));
  return out;
}

Result<std::vector<pb::Tensor>> group_streamed_parts(const std::vector<pb::Tensor>& parts,
                                                     std::size_t max_buffer_bytes) {
  std::vector<pb::Tensor> tensors;
  std::vector<pb::Tensor> current;
  auto flush = [&]() -> Status {
    if (current.empty()) return Ok{};
    auto t = combine_from_streaming(current, max_buffer_bytes);
    if (!t) return t.error();
    tensors.push_back(std::move(*t));
    current.clear();
    return Ok{};
  };
  for (const auto& p : parts) {
    if (!p.dtype().empty()) {
      if (auto s = flush(); !s) return s.error();
    } else if (current.empty()) {
      return make_error(Errc::malformed, "tensor continuation part without a first part");
    }
    current.push_back(p);
  }
  if (auto s = flush(); !s) return s.error();
  return tensors;
}

}  // namespace kwaai::p2p::hivemind
