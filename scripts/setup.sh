#!/usr/bin/env bash
# Installs and starts what moat and its tests need on a Debian machine, skipping whatever
# is already there: Docker Engine (Debian's docker.io), debootstrap, busybox-static, tmux, git
# (workspace snapshots),
# then the locally built base images. Idempotent; needs root (uses sudo when not root).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
[ -x /usr/bin/docker ] && [ -x /usr/sbin/dockerd ] || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
[ -x /bin/busybox ] || missing+=(busybox-static)
command -v tmux >/dev/null || missing+=(tmux)
command -v git >/dev/null || missing+=(git)
command -v ip >/dev/null || missing+=(iproute2)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-agent >/dev/null || missing+=(openssh-client)
# moat-init, the entrypoint baked into every image, is linked statically (crates/moat-image/build.rs).
dpkg -s libc6-dev >/dev/null 2>&1 || missing+=(libc6-dev)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" >/dev/null
fi

# The SSH tests' sshd lets in a `git` user, as a git host does; a fresh Debian has none.
# `*`, not a locked `!`, in its password field: sshd refuses a locked account.
if ! getent passwd git >/dev/null; then
    echo "setup: adding the system user git (for the SSH tests' sshd)"
    $SUDO useradd --system --no-create-home --home-dir /nonexistent --shell /bin/sh git
    $SUDO usermod -p '*' git
fi

if ! /usr/bin/docker info >/dev/null 2>&1; then
    echo "setup: starting dockerd (log: /var/log/moat-dockerd.log)"
    $SUDO setsid /usr/sbin/dockerd >/var/log/moat-dockerd.log 2>&1 </dev/null &
    for _ in $(seq 1 60); do
        /usr/bin/docker info >/dev/null 2>&1 && break
        sleep 0.5
    done
    /usr/bin/docker info >/dev/null 2>&1 || {
        echo "setup: dockerd did not start; its log:" >&2
        tail -20 /var/log/moat-dockerd.log >&2
        exit 1
    }
fi

DOCKER=/usr/bin/docker bash scripts/base-images.sh
