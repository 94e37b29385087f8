# syntax=docker/dockerfile:1
#
# An application image with afxdp, for pods served by the AF_XDP Device
# Plugin. The addon links libbpf, libelf and zlib statically, so the image
# needs Node.js and glibc only: no libbpf, libxdp, compilers or headers
# (the DPDK image of DPDK's "Using the AF_XDP driver in Kubernetes" guide
# needs libbpf and libxdp installed).
#
# Build from the packed tarballs (root package + this architecture's
# prebuilt package):
#
#   npm install && npm run pack:local          # writes pack/afxdp-*.tgz
#   docker build -t afxdp-app .
#
# (From the registry instead, replace the install below with
# `npm install afxdp`: npm picks the platform package itself.)
#
# The default command is `afxdp --help`; pods run `afxdp fwd ...` or your
# own script (copy it in a stage of your own: FROM afxdp-app, COPY app.js).

ARG NODE_VERSION=20

# ---- build: install the package from its tarballs; npm and the cache stay here
FROM node:${NODE_VERSION}-bookworm-slim AS build
ARG TARGETARCH
WORKDIR /app
COPY pack/ /tmp/pack/
# The platform package comes in as afxdp's optional dependency, pinned to
# its tarball with an override; the root's own dependencies come from the
# registry. Then check the addon loads and links nothing the final image
# lacks.
RUN set -eu; \
    case "${TARGETARCH:-amd64}" in \
      amd64) target=linux-x64-gnu ;; \
      arm64) target=linux-arm64-gnu ;; \
      *) echo "afxdp has no prebuilt package for ${TARGETARCH}" >&2; exit 1 ;; \
    esac; \
    root=$(ls /tmp/pack/afxdp-[0-9]*.tgz); \
    platform=$(ls /tmp/pack/afxdp-${target}-[0-9]*.tgz); \
    npm init -y >/dev/null; \
    npm pkg set "overrides.afxdp-${target}=file:${platform}"; \
    npm install --omit=dev --no-audit --no-fund "$root"; \
    addon="node_modules/afxdp-${target}/afxdp.${target}.node"; \
    test -f "$addon"; \
    if ldd "$addon" | grep -E 'not found|libbpf|libelf|libz|libxdp'; then exit 1; fi; \
    node -e "require('afxdp-${target}').coreVersion()"; \
    npm cache clean --force; \
    rm -rf /tmp/pack

# ---- final: the slim Node.js image plus /app. No compilers, headers or
# libbpf; npm stays, so `npx afxdp ...` works as well as plain `afxdp ...`.
FROM node:${NODE_VERSION}-bookworm-slim
COPY --from=build /app /app
WORKDIR /app
ENV NODE_ENV=production \
    PATH=/app/node_modules/.bin:$PATH \
    NODE_PATH=/app/node_modules
# Pods add CAP_NET_RAW and CAP_IPC_LOCK; those take effect for root only
# (Kubernetes grants no ambient capabilities), so the image runs as root.
ENTRYPOINT []
CMD ["afxdp", "--help"]
