#!/usr/bin/env bash
# Build a local stand-in for python:3.11-slim when no registry is reachable:
# Debian bookworm (minbase) + Debian's Python 3.11 (python3, python3-venv, ca-certificates),
# imported into podman/buildah storage as $1 (default: localhost/wanwu-base:bookworm-py311).
# Usage: bash deploy/base-image.sh [IMAGE]       (needs root, debootstrap, podman)
set -euo pipefail
IMAGE=${1:-localhost/wanwu-base:bookworm-py311}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=${DEBIAN_SUITE:-bookworm}

if podman image exists "$IMAGE"; then
  echo "base image $IMAGE already present"
  exit 0
fi
for tool in debootstrap podman; do
  command -v "$tool" >/dev/null || { echo "base-image: $tool is required (apt-get install $tool)" >&2; exit 1; }
done

rootfs=$(mktemp -d /var/tmp/wanwu-rootfs.XXXXXX)
trap 'rm -rf --one-file-system "$rootfs"' EXIT
echo "debootstrap $SUITE (minbase + python3) into $rootfs ..."
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  "$SUITE" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 || { tail -n 30 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"
# Trim like the official slim images: no package caches, docs, man pages or locales.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
       "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
       "$rootfs"/var/log/*.log "$rootfs"/tmp/* 2>/dev/null || true
find "$rootfs"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true
# Same entry point conventions as python:3.11-slim: `python3` on PATH, LANG set.
tar -C "$rootfs" --numeric-owner -c . | podman import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' \
  - "$IMAGE" >/dev/null
echo "base image $IMAGE: $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1/1e6}')"
