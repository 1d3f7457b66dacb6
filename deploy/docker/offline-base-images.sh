#!/usr/bin/env bash
# Builds, without any image registry, the two base images twill's Dockerfiles name:
#   debian:bookworm-slim    a debootstrap --variant=minbase rootfs from Debian's archive
#   node:20-bookworm-slim   that rootfs + this machine's Node.js 20 (binary, npm, headers) and
#                           its CA bundle (see below)
# Users who can pull from a registry don't need this: `docker build` pulls the real images.
# Here (no registry reachable) it stands in for them. Skips an image whose tag already exists;
# FORCE=1 rebuilds. Needs root, docker and debootstrap.
set -euo pipefail

# The machine's own Debian mirror (the first archive URL ending in /debian), else deb.debian.org.
DEBIAN_MIRROR=${DEBIAN_MIRROR:-$( (cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null || true) \
  | grep -oE '^(URIs:|deb) +https?://[^ ]+' | awk '{print $2}' | grep -E '/debian/?$' | head -1 || true)}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
have() { [[ -z "${FORCE:-}" ]] && docker image inspect "$1" >/dev/null 2>&1; }

work=$(mktemp -d /var/tmp/twill-base.XXXXXX)
trap 'rm -rf "$work"' EXIT

if ! have debian:bookworm-slim; then
  echo "base: debootstrap bookworm from $DEBIAN_MIRROR (a few minutes)"
  debootstrap --variant=minbase bookworm "$work/rootfs" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  # Like the official slim image: no apt caches, no docs.
  rm -rf "$work/rootfs"/var/cache/apt/archives/*.deb "$work/rootfs"/var/lib/apt/lists/* "$work/rootfs"/usr/share/doc/* "$work/rootfs"/usr/share/man/*
  tar -C "$work/rootfs" -c . | docker import -c 'CMD ["bash"]' - debian:bookworm-slim >/dev/null
  echo "base: debian:bookworm-slim imported"
fi

if ! have node:20-bookworm-slim; then
  node_bin=$(command -v node)
  [[ "$(node -p 'process.versions.node.split(".")[0]')" == 20 ]] || { echo "base: this machine's node is not 20" >&2; exit 1; }
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  node_prefix=$(dirname "$(dirname "$node_bin")")
  ctx="$work/node"
  mkdir -p "$ctx/usr/local/bin" "$ctx/usr/local/lib/node_modules" "$ctx/usr/local/include"
  cp "$node_bin" "$ctx/usr/local/bin/node"
  cp -a "$npm_dir" "$ctx/usr/local/lib/node_modules/npm"
  cp -a "$node_prefix/include/node" "$ctx/usr/local/include/node"
  # This machine's trust store too: where TLS to the npm registry goes through an intercepting
  # proxy, its CA is there, and `npm ci` in the build stage needs it (Node reads it through
  # NODE_EXTRA_CA_CERTS). Elsewhere it is just the usual CA bundle.
  if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    mkdir -p "$ctx/etc/ssl/certs" && cp /etc/ssl/certs/ca-certificates.crt "$ctx/etc/ssl/certs/"
  fi
  tar -C "$ctx" -c usr $( [[ -d "$ctx/etc" ]] && echo etc ) > "$work/node.tar"
  cat > "$work/Dockerfile" <<'DOCKERFILE'
FROM debian:bookworm-slim
ADD node.tar /
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && node --version && npm --version
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CMD ["node"]
DOCKERFILE
  docker build -q -t node:20-bookworm-slim "$work" >/dev/null
  echo "base: node:20-bookworm-slim built ($(docker run --rm node:20-bookworm-slim node --version))"
fi
