#!/usr/bin/env bash
# Installs every system dependency of kwaainet from Debian 12 packages.
# Runs as root on a fresh machine; re-running is cheap (apt skips what is there).
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  clang libclang-rt-14-dev          # libFuzzer + sanitizers for the fuzz targets
  # Vulkan: loader, headers, Mesa's lavapipe CPU device, validation layers, shader tools
  libvulkan-dev mesa-vulkan-drivers vulkan-validationlayers vulkan-tools
  glslc glslang-tools spirv-tools
  # networking and codecs
  libboost-dev libprotobuf-dev protobuf-compiler libmsgpack-cxx-dev libsodium-dev libssl-dev
  # compute and machine description
  libopenblas-dev libhwloc-dev
  # front end, logging, JSON
  libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  # js-libp2p interop peer (npm packages are installed by the tests themselves)
  nodejs
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian's nodejs ships npm separately; NodeSource's bundles it.
command -v npm >/dev/null || apt-get install -y -qq --no-install-recommends npm
