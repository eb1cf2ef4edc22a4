#!/usr/bin/env bash
# Builds the base images moat's tests (and a machine without registry access) need,
# locally, because nothing can be pulled here:
#   debian:bookworm-slim  debootstrap --variant=minbase + docker import
# Each image is skipped when it already exists. Needs root, debootstrap and a Docker daemon.
set -euo pipefail

DOCKER=${DOCKER:-/usr/bin/docker}
MIRROR=${MOAT_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if "$DOCKER" image inspect debian:bookworm-slim >/dev/null 2>&1; then
    echo "base-images: debian:bookworm-slim already present"
    exit 0
fi

command -v debootstrap >/dev/null || {
    echo "base-images: debootstrap is missing (apt-get install -y debootstrap)" >&2
    exit 1
}

work=$(mktemp -d /tmp/moat-debootstrap.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "base-images: debootstrap bookworm (minbase) from $MIRROR ..."
debootstrap --variant=minbase bookworm "$work/rootfs" "$MIRROR" >"$work/log" 2>&1 || {
    tail -30 "$work/log" >&2
    exit 1
}
# What the official slim image also drops: caches and package lists.
rm -rf "$work/rootfs"/var/cache/apt/archives/*.deb "$work/rootfs"/var/lib/apt/lists/*
echo "base-images: importing as debian:bookworm-slim ..."
tar -C "$work/rootfs" -c . | "$DOCKER" import \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - debian:bookworm-slim >/dev/null
echo "base-images: debian:bookworm-slim ready"
