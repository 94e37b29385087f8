#!/bin/sh
# Build afxdp.<platform>.node for $TARGET natively, inside a Debian (glibc)
# or Alpine (musl) Node.js image, from the repository in the current
# directory. Called by .github/workflows/release.yml:
#
#   docker run --rm -v "$PWD:/work" -w /work -e TARGET=<rust triple> <image> sh .github/scripts/build-prebuilt.sh
#
# Leaves afxdp.<platform>.node in the current directory. The vendored
# libbpf/libelf/zlib build needs the autotools on every image; musl also
# needs argp, fts and obstack, which glibc includes.
set -eu
: "${TARGET:?set TARGET to a Rust target triple}"

if command -v apk >/dev/null 2>&1; then
  apk add --no-cache build-base clang llvm pkgconf autoconf automake libtool m4 gettext-dev \
    flex bison gawk argp-standalone musl-fts-dev musl-obstack-dev linux-headers curl git
  # A cdylib (the .node) needs musl linked dynamically.
  export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=-crt-static"
else
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    clang llvm pkg-config make gcc libc6-dev \
    autoconf automake autopoint libtool m4 gettext flex bison gawk \
    curl ca-certificates git
fi

curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain stable
. "$HOME/.cargo/env"
rustup target add "$TARGET"

npm ci --ignore-scripts --no-audit --no-fund
# index.js / index.d.ts are committed; write the generated ones aside.
npx napi build --platform --release --target "$TARGET" \
  --manifest-path crates/afxdp-node/Cargo.toml --output-dir target/prebuilt --no-js
cp target/prebuilt/afxdp.*.node .
if command -v objdump >/dev/null 2>&1; then
  echo "highest glibc symbol version needed:"
  objdump -T afxdp.*.node | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1 || true
fi
