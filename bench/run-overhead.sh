#!/usr/bin/env bash
# How much `moat run -- true` costs next to `docker run --rm IMAGE true` on the same,
# cached image: N runs of each, interleaved, then the mean, the median and their ratio.
# Usage: bash bench/run-overhead.sh [N]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
cargo build --release --locked -p moat >/dev/null 2>&1
MOAT=$PWD/target/release/moat
export MOAT_HOME
MOAT_HOME=$(mktemp -d /tmp/moat-bench.XXXXXX)
workspace=$(mktemp -d /tmp/moat-bench-ws.XXXXXX)
trap 'rm -rf "$MOAT_HOME" "$workspace"' EXIT
cd "$workspace"

"$MOAT" run -- true >/dev/null 2>&1   # build or find the image
image=$("$MOAT" list --json | sed -n 's/.*"image": "\(.*\)".*/\1/p' | head -1)

now() { date +%s%N; }
moat_ms=(); docker_ms=()
for _ in $(seq "$N"); do
    t0=$(now); "$MOAT" run -- true; t1=$(now)
    /usr/bin/docker run --rm --init "$image" true; t2=$(now)
    moat_ms+=($(( (t1 - t0) / 1000000 ))); docker_ms+=($(( (t2 - t1) / 1000000 )))
done

stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1; s+=$1} END {printf "%.0f %.0f", s/NR, a[int((NR+1)/2)]}'; }
read -r moat_mean moat_median <<<"$(stats "${moat_ms[@]}")"
read -r docker_mean docker_median <<<"$(stats "${docker_ms[@]}")"
echo "runs:                       $N each, image $image"
echo "moat run -- true:           mean ${moat_mean} ms, median ${moat_median} ms"
echo "docker run --rm IMAGE true: mean ${docker_mean} ms, median ${docker_median} ms"
awk -v m="$moat_median" -v d="$docker_median" 'BEGIN {printf "ratio (median):             %.2fx\n", m/d}'
