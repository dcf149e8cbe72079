#!/usr/bin/env bash
# Prepares, here (Debian 12, after ./setup.sh), what bench/gpu_check.sh needs on a machine that
# has a GPU for a few minutes but none of Debian's packages and no network: the kwaainet binary
# and the Vulkan op-test binary with every shared library they load from this system — the
# dynamic loader and glibc included, so they run whatever the other machine's distribution is —
# and the Vulkan loader (Debian's libvulkan1). The GPU driver (the NVIDIA ICD) is the other
# machine's own.
#
#   bench/gpu_pack.sh            # -> build/gpu_pack.tar.xz (carried with the checkout)
#
# The tarball must stay under the 64 MiB that may travel with a checkout; the script checks.
set -euo pipefail
cd "$(dirname "$0")/.."

bins=(build/cli/kwaainet build/tests/kernels/kernel_ops_tests)
for b in "${bins[@]}"; do
  [ -x "$b" ] || { echo "gpu_pack.sh: $b is missing: run ./setup.sh first" >&2; exit 2; }
done
# kwaainet opens the Vulkan loader at run time (runtime/vk.cpp), so it is not in ldd's list:
# take Debian's libvulkan1, installed here or downloaded as the .deb and unpacked.
vulkan_loader() {
  local f
  f=$(dpkg -L libvulkan1 2>/dev/null | grep -m1 '/libvulkan\.so\.1\.[0-9.]*$' || true)
  if [ -n "$f" ] && [ -f "$f" ]; then echo "$f"; return; fi
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download libvulkan1 >/dev/null && dpkg -x libvulkan1_*.deb x) >&2
  find "$tmp/x" -name 'libvulkan.so.1.*' | head -1
}

stage=build/gpu_pack
rm -rf "$stage" build/gpu_pack.tar.xz
mkdir -p "$stage/bin" "$stage/lib"
for b in "${bins[@]}"; do
  cp "$b" "$stage/bin/"
  strip --strip-unneeded "$stage/bin/$(basename "$b")" 2>/dev/null || true
done
# Every library the binaries resolve here (ldd's "=> /path"), plus the loader itself.
for b in "${bins[@]}"; do
  ldd "$b" | awk '/=> \// {print $3} /^[[:space:]]*\/.*ld-linux/ {print $1}'
done | sort -u | while read -r lib; do
  cp -L "$lib" "$stage/lib/"
done
loader_lib=$(vulkan_loader)
[ -n "$loader_lib" ] || { echo "gpu_pack.sh: no libvulkan.so.1 (Debian: libvulkan1)" >&2; exit 2; }
cp -L "$loader_lib" "$stage/lib/libvulkan.so.1"
# The dynamic loader under a fixed name, so gpu_check.sh can call it.
loader=$(ldd build/cli/kwaainet | awk '/ld-linux/ {print $1}' | head -1)
cp -L "$loader" "$stage/lib/ld-linux-x86-64.so.2"
strip --strip-unneeded "$stage"/lib/*.so* 2>/dev/null || true
cat >"$stage/MANIFEST" <<EOF
built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(lsb_release -ds 2>/dev/null || echo Debian) from $(git rev-parse --short HEAD 2>/dev/null || echo unknown)
$(cd "$stage" && find . -type f | sort)
EOF

tar -C build -cJf build/gpu_pack.tar.xz gpu_pack
size=$(stat -c %s build/gpu_pack.tar.xz)
echo "build/gpu_pack.tar.xz: $((size / 1024 / 1024)) MiB ($(ls "$stage/lib" | wc -l) libraries)"
if [ "$size" -ge $((60 * 1024 * 1024)) ]; then
  echo "gpu_pack.sh: the pack is over 60 MiB; it may not travel with the checkout" >&2
  exit 1
fi
