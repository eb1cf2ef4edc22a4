#!/bin/sh
# verify-image.sh [DEPENDENCY...]
#
# Builds a real image from a rendered moat context and asks each tool for its version, then
# removes the image. Node.js comes from a local mirror made by `node-mirror.sh` and served
# on 127.0.0.1 (the build runs with `--network host` to reach it); everything else comes
# from the real Debian, npm and PyPI registries. The host's extra CAs (in
# /usr/local/share/ca-certificates, or EXTRA_CA=file) are installed as MOAT_EXTRA_CA_CERTS.
#
# Environment: DOCKER (default /usr/bin/docker), MIRROR_DIR (reuse a mirror), MIRROR_PORT
# (the mirror's URL is part of the Dockerfile: a fixed port lets a second run use the layer
# cache), NODE_MAJOR (default 22), CARGO_TARGET_DIR, KEEP_IMAGE=1 (keep the image).
set -eu

crate=$(cd "$(dirname "$0")/.." && pwd)
docker=${DOCKER:-/usr/bin/docker}
major=${NODE_MAJOR:-22}
work=$(mktemp -d)
server=''
tag=''
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
    if [ -n "$tag" ] && [ "${KEEP_IMAGE:-0}" != 1 ]; then "$docker" rmi "$tag" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

if [ "$#" -eq 0 ]; then
    set -- git curl jq python@3.11 "node@$major" npm:left-pad pip:six claude-code
fi

mirror=${MIRROR_DIR:-$work/mirror}
if [ ! -f "$mirror/latest-v$major.x/SHASUMS256.txt" ]; then
    "$crate/scripts/node-mirror.sh" "$mirror" "$major"
fi
port=${MIRROR_PORT:-}
[ -n "$port" ] || port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$mirror" "$port" >"$work/server.log" 2>&1 &
server=$!

ca_args=''
if [ -n "${EXTRA_CA:-}" ]; then
    ca_args="--ca $EXTRA_CA"
else
    for crt in /usr/local/share/ca-certificates/*.crt; do
        if [ -f "$crt" ]; then ca_args="$ca_args --ca $crt"; fi
    done
fi

# shellcheck disable=SC2086 # ca_args is a list of words
tag=$(cd "$crate" && cargo run --quiet -p moat-image --example render_context -- \
    "$work/context" --uid "$(id -u)" --gid "$(id -g)" $ca_args \
    --node-mirror "http://127.0.0.1:$port" "$@")
echo "verify-image: building $tag"
started=$(date +%s)
"$docker" build --network host -t "$tag" "$work/context"
echo "verify-image: built in $(($(date +%s) - started)) s"

"$docker" run --rm --entrypoint sh "$tag" -c '
    for tool in node npm python3 pip git jq curl claude codex gemini yarn pnpm bun uv aws \
        gh rg fd sqlite3 psql make gcc docker go rustc cargo; do
        if command -v "$tool" >/dev/null; then
            printf "%s: " "$tool"; timeout 30 "$tool" --version 2>&1 | head -n 1
        fi
    done
    if command -v python3 >/dev/null; then python3 -c "import six; print(\"six\", six.__version__)" 2>&1; fi
    ls /usr/local/lib/node_modules
'
echo "verify-image: image size $("$docker" image inspect -f '{{.Size}}' "$tag") bytes"
