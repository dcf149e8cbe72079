// ModelSource over a HF checkpoint folder: config.json + safetensors (single or sharded).
#include <filesystem>
#include <mutex>
#include <stdexcept>

#include "engine/model/model_source_impl.hpp"
#include "engine/model/safetensors.hpp"

namespace kwaai::engine::detail {
namespace {

class HfSource final : public ModelSource {
 public:
  explicit HfSource(const std::string& dir)
      : path_(dir),
        config_(load_hf_config((std::filesystem::path(dir) / "config.json").string())),
        ckpt_(dir) {
    // Without lm_head.weight the output head can only be the embeddings.
    if (!ckpt_.has(kLmHeadName)) config_.tied_embeddings = true;
  }

  const ModelConfig& config() const override { return config_; }
  std::string format() const override { return "safetensors"; }
  const std::string& path() const override { return path_; }
  std::vector<std::string> names() const override { return ckpt_.names(); }
  bool has(const std::string& name) const override { return ckpt_.has(name); }

  TensorInfo info(const std::string& name) const override {
    std::lock_guard lock(mu_);
    const SafetensorsEntry& e = ckpt_.entry(name);
    return {e.dtype, e.shape};
  }

  HostTensor load(const std::string& name) const override {
    const TensorView v = float_view(name);
    HostTensor t;
    t.name = name;
    t.dtype = v.dtype;
    t.shape = v.shape;
    t.data.assign(v.data.begin(), v.data.end());
    return t;
  }

  // Converted straight from the mapping (rows through f32, threads for large tensors), then the
  // mapped pages are dropped: loading a span of a bf16 checkpoint holds the converted tensors
  // and only the tensor in flight of the file.
  HostTensor load(const std::string& name, DType target) const override {
    const TensorView v = float_view(name);
    prefetch_mapped_pages(v.data);
    // A plain copy when the dtype already matches; the mapping outlives the call, so no lock.
    HostTensor t = convert_tensor(v, target);
    t.name = name;
    drop_mapped_pages(v.data);
    return t;
  }

  // The stored tensor's view (opening its shard under the lock); refuses non-float dtypes.
  TensorView float_view(const std::string& name) const {
    std::lock_guard lock(mu_);
    TensorView v = ckpt_.view(name);
    if (v.dtype != DType::F32 && v.dtype != DType::F16 && v.dtype != DType::BF16) {
      throw std::runtime_error("model '" + path_ + "': tensor '" + name + "' has dtype " +
                               std::string(dtype_name(v.dtype)) + ", not a float weight type");
    }
    bytes_read_ += v.data.size();
    return v;
  }

  std::uint64_t bytes_read() const override {
    std::lock_guard lock(mu_);
    return bytes_read_;
  }

 private:
  std::string path_;
  ModelConfig config_;
  // Shards open lazily inside the checkpoint; the mutex makes concurrent loads safe.
  mutable std::mutex mu_;
  SafetensorsCheckpoint ckpt_;
  mutable std::uint64_t bytes_read_ = 0;
};

}  // namespace

std::unique_ptr<ModelSource> open_hf_source(const std::string& dir) {
  return std::make_unique<HfSource>(dir);
}

}  // namespace kwaai::engine::detail
