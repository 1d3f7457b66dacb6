#!/usr/bin/env bash
# For the docker test stage (and anyone trying the compose lab on Debian 12): installs Debian's
# Docker engine and docker-compose, starts dockerd if none answers, and makes the base images
# the Dockerfiles name when they are missing (offline: deploy/docker/offline-base-images.sh).
# Prints the dockerd pid it started, if any, to $1 so the caller can stop it. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/apt-ensure.sh
apt_ensure docker-setup docker.io docker-compose debootstrap

if ! docker info >/dev/null 2>&1; then
  echo "docker-setup: starting dockerd (log: /tmp/twill-dockerd.log)"
  nohup dockerd >/tmp/twill-dockerd.log 2>&1 &
  echo $! > "${1:-/dev/null}"
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -20 /tmp/twill-dockerd.log >&2; exit 1; }
fi

bash deploy/docker/offline-base-images.sh
