#!/usr/bin/env bash
# Installs everything twill's lab and tests need on a fresh Debian machine, then builds twill.
# Needs root (apt-get). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  etcd-server etcd-client          # the real etcd the lab and tests start
  containernetworking-plugins      # bridge, host-local, loopback: pods are wired the kubelet way
  iproute2 iputils-ping procps     # ip netns/link/route, ping for lab check, sysctl
  iperf3 curl                      # twill bench; curl for the README's Prometheus query example
  openssl                          # the etcd TLS tests make their own CA and certificates
  systemd                          # systemd-analyze verify checks deploy/systemd/twill.service
  nftables iptables                # twill's traffic rules (nft table, iptables FORWARD); the CNI bridge's ipMasq
  prometheus                       # lab up --prometheus scrapes the agents; promtool checks /metrics in the tests
  python3 make g++                 # node-gyp builds the addons at npm ci
  gcc libc6-dev                    # the sanitizer test builds native/packet/ with -fsanitize (gcc brings libasan8, libubsan1)
  containerd runc busybox-static   # the runtime test: ctr run --cni in a lab host, from an image made of busybox
  tcpdump                          # twill lab trace: one capture per hop
  chromium fonts-dejavu-core       # the lab page's test loads it in headless Chromium
)

source scripts/apt-ensure.sh
apt_ensure setup "${DEBIAN_PACKAGES[@]}"

echo "setup: npm ci"
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
echo "setup: done ($(node dist/cli/main.js --version 2>/dev/null || echo twill))"
