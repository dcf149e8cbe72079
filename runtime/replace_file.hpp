// Saving a cache file so that readers see either the old file or the whole new one.
#pragma once

#include <filesystem>
#include <string_view>

namespace kwaai::runtime {

// Writes `data` to a temporary of this call's own (`path`.<pid>.<n>.tmp: several processes,
// or threads, may save the same file at once, and a shared temporary would interleave their
// writes), then renames it over `path`. Creates the parent directories. Throws std::runtime_error
// naming the file on failure, after removing the temporary.
void replace_file(const std::filesystem::path& path, std::string_view data);

}  // namespace kwaai::runtime
