#!/usr/bin/env bash
# A fresh Debian or Ubuntu machine, ready to build afxdp from source and run
# its privileged tests: installs the Debian packages the build needs, then
# says how to get Rust and Node.js if they are missing (it installs no
# toolchain itself). Used by .ci/run and the CI workflow. Exit status 1 when
# apt-get fails.
set -euo pipefail

# clang/llvm: the XDP program; pkg-config..gawk: libbpf-sys's vendored libelf
# and zlib (autotools); iproute2..procps: the privileged tests and the lab;
# tcpdump: the test that reads back `afxdp fwd --pcap` files.
PACKAGES=(
  clang llvm pkg-config make gcc libc6-dev
  autoconf automake autopoint libtool m4 gettext flex bison gawk
  iproute2 ethtool util-linux libcap2-bin acl procps tcpdump
)

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup-debian.sh: run as root (or install sudo)" >&2; exit 1; }
  sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >/dev/null
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
echo "setup-debian.sh: installed ${PACKAGES[*]}"

# Toolchains: hints only (versions from package.json "engines" and Cargo.toml).
if ! command -v cargo >/dev/null; then
  echo "setup-debian.sh: no Rust on PATH; afxdp needs Rust >= 1.88:" >&2
  echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh" >&2
fi
if ! command -v node >/dev/null || ! node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=17)?0:1)'; then
  echo "setup-debian.sh: afxdp needs Node.js >= 20.17 (with npm), e.g. from https://nodejs.org or nvm" >&2
fi
