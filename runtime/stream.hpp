// Command recording. A Stream records a whole sequence of uploads, dispatches, copies, fills
// and downloads into one command buffer and submits it once.
//
// Barriers are derived, never placed by callers: every command declares the buffer ranges it
// reads and writes (dispatch: per binding Access; copy: src read / dst write; upload: dst
// write; download: src read). The Stream keeps the ranges read and written since the last
// barrier; a new command that reads a range written there (RAW), or writes a range read (WAR)
// or written (WAW) there, first gets one pipeline barrier whose source stages/accesses are
// everything recorded since the last barrier (compute and/or transfer) and whose destination
// is the new command's stage. Non-overlapping commands run without barriers between them.
// Each command buffer also starts with one barrier that orders it after the writes of earlier
// submissions (submission order alone is not a memory dependency).
//
// Host data: upload() copies the bytes into a staging buffer at call time (the host span may
// be freed on return); download() records a copy into a readback buffer and copies to the
// host span during submit_and_wait(), so that span must stay alive until then.
//
// Profiling: with set_profiling(true), each dispatch is bracketed by timestamps; after
// submit_and_wait(), take_timings() returns {label, seconds} per dispatch in record order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "runtime/memory.hpp"
#include "runtime/pipeline.hpp"
#include "runtime/vk.hpp"

namespace kwaai::runtime {

class Context;

enum class Access : std::uint8_t { Read = 1, Write = 2, ReadWrite = 3 };

struct Binding {
  BufferRef ref;
  Access access = Access::Read;
};

struct Timing {
  std::string label;
  double seconds = 0;
};

// The bytes of a trivially copyable push-constant struct.
template <class T>
std::span<const std::byte> push_bytes(const T& v) {
  static_assert(std::is_trivially_copyable_v<T>);
  return std::as_bytes(std::span<const T, 1>(&v, 1));
}

class Stream {
 public:
  explicit Stream(Context& ctx);
  ~Stream();  // waits for a submitted command buffer before freeing anything
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  Stream(Stream&&) noexcept;
  Stream& operator=(Stream&&) = delete;

  // Host bytes -> dst[offset, offset + bytes.size()). Throws std::out_of_range if it does not fit.
  void upload(BufferRef dst, VkDeviceSize offset, std::span<const std::byte> bytes);
  void upload(BufferRef dst, std::span<const std::byte> bytes) { upload(dst, 0, bytes); }

  // One dispatch. bindings.size() must equal p.binding_count() and push.size() must equal
  // p.push_constant_bytes() (std::invalid_argument naming the kernel otherwise); each
  // binding's size must be <= maxStorageBufferRange and its offset aligned (std::length_error);
  // group counts must be 1..maxComputeWorkGroupCount (std::length_error).
  void dispatch(const Pipeline& p, std::span<const Binding> bindings,
                std::span<const std::byte> push, std::uint32_t groups_x, std::uint32_t groups_y,
                std::uint32_t groups_z, std::string_view label = {});
  void dispatch(const Pipeline& p, std::initializer_list<Binding> bindings,
                std::span<const std::byte> push, std::uint32_t groups_x, std::uint32_t groups_y,
                std::uint32_t groups_z, std::string_view label = {}) {
    dispatch(p, std::span<const Binding>(bindings.begin(), bindings.size()), push, groups_x,
             groups_y, groups_z, label);
  }

  // Buffer-to-buffer copy of `bytes` (src and dst ranges must hold them).
  void copy(BufferRef src, BufferRef dst, VkDeviceSize bytes);
  // Fill dst with a repeated 32-bit word (dst offset and size must be multiples of 4).
  void fill(BufferRef dst, std::uint32_t word);
  // src[0, host_dst.size()) -> host_dst at submit_and_wait().
  void download(BufferRef src, std::span<std::byte> host_dst);

  // Ends the command buffer and submits it (no-op when nothing was recorded).
  void submit();
  // Waits for the submitted work, then finishes downloads and collects timings. Afterwards the
  // Stream is empty and ready to record again (command buffer, descriptor pools and staging
  // memory are reused).
  void wait();
  void submit_and_wait() {
    submit();
    wait();
  }

  void set_profiling(bool on);
  bool profiling() const;
  std::vector<Timing> take_timings();

  // Counters for tests and debugging: commands and barriers recorded in the current or last
  // submitted command buffer.
  std::size_t recorded_commands() const;
  std::size_t recorded_barriers() const;
  bool empty() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kwaai::runtime
