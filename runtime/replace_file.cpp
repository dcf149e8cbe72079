#include "runtime/replace_file.hpp"

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

namespace kwaai::runtime {

void replace_file(const std::filesystem::path& path, std::string_view data) {
  std::error_code ec;
  if (path.has_parent_path()) {
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec)
      throw std::runtime_error("cannot create " + path.parent_path().string() + ": " +
                               ec.message());
  }
  static std::atomic<unsigned> saves{0};
  auto tmp = path;
  tmp += ".";  // appended piecewise: GCC 12 warns (-Wrestrict) on "." + std::string temporaries
  tmp += std::to_string(::getpid());
  tmp += ".";
  tmp += std::to_string(saves.fetch_add(1));
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.flush();
    if (!out) {
      out.close();
      std::filesystem::remove(tmp, ec);
      throw std::runtime_error("cannot write " + tmp.string());
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();
    std::filesystem::remove(tmp, ec);
    throw std::runtime_error("cannot rename into " + path.string() + ": " + why);
  }
}

}  // namespace kwaai::runtime
