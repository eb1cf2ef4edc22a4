#!/usr/bin/env bash
# How fast a run's output reaches `logs.jsonl` next to Docker's own log of the same
# flood, and what `moat logs -n 5` costs on the big log that results.
#   1. `docker run -d IMAGE sh -c 'yes | head -c SIZE; echo END'`: from start to exit
#      (Docker's json-file log written), lines in `docker logs`.
#   2. `docker logs -f -t` of the same flood, from its start: Docker's own reader of the
#      API moat reads, the bound on any copy.
#   3. `moat run -d -- (the same)`: from start to the run recorded as over (its log copied
#      to the end), lines in `moat logs`, and whether `END` is the last one.
#   4. `moat logs -n 5` of that run: wall time and peak memory (GNU time).
# Usage: bash bench/logs-throughput.sh [MEGABYTES]   (default 50, the flood of issue 11)
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-50}
bytes=$((MB * 1000000))
# MOAT=/path/to/moat measures that binary instead of building this checkout's.
if [ -z "${MOAT:-}" ]; then
    cargo build --release --locked -p moat >/dev/null 2>&1
    MOAT=${CARGO_TARGET_DIR:-$PWD/target}/release/moat
fi
export MOAT_HOME
MOAT_HOME=$(mktemp -d /tmp/moat-bench.XXXXXX)
workspace=$(mktemp -d /tmp/moat-bench-ws.XXXXXX)
container=moat-bench-logs-$$
cleanup() {
    "$MOAT" destroy --all-stopped --force >/dev/null 2>&1 || true
    /usr/bin/docker rm -f "$container" >/dev/null 2>&1 || true
    rm -rf "$MOAT_HOME" "$workspace"
}
trap cleanup EXIT
cd "$workspace"
flood="yes | head -c $bytes; echo END"

"$MOAT" run -- true >/dev/null 2>&1   # build or find the image
image=$("$MOAT" list --json | sed -n 's/.*"image": "\(.*\)".*/\1/p' | head -1)
"$MOAT" destroy --all-stopped >/dev/null 2>&1 || true

now() { date +%s%N; }

# Docker alone: its log is written when the container has exited.
t0=$(now)
/usr/bin/docker run -d --name "$container" "$image" sh -c "$flood" >/dev/null
/usr/bin/docker wait "$container" >/dev/null
t1=$(now)
docker_ms=$(( (t1 - t0) / 1000000 ))
docker_lines=$(/usr/bin/docker logs "$container" 2>/dev/null | wc -l)
/usr/bin/docker rm -f "$container" >/dev/null

# Docker's own reader of its log API, following from the start as moat's supervisor
# does: `docker logs -f -t` until the log ends. No client of that API reads faster than
# the daemon serves it.
t0=$(now)
/usr/bin/docker run -d --name "$container" "$image" sh -c "$flood" >/dev/null
follow_lines=$(/usr/bin/docker logs -f -t "$container" 2>/dev/null | wc -l)
t1=$(now)
follow_ms=$(( (t1 - t0) / 1000000 ))
/usr/bin/docker rm -f "$container" >/dev/null

# moat: the run is over once its supervisor copied the log to the end and recorded it.
t0=$(now)
"$MOAT" run -d -- sh -c "$flood" >/dev/null
id=$("$MOAT" list --json | sed -n 's/.*"id": "\([^"]*\)".*/\1/p' | head -1)
until "$MOAT" list --json | grep -q '"state": "\(exited\|failed\|stopped\)"'; do sleep 0.05; done
t1=$(now)
moat_ms=$(( (t1 - t0) / 1000000 ))
moat_lines=$("$MOAT" logs "$id" | wc -l)
last=$("$MOAT" logs -n 1 "$id")
log_file="$MOAT_HOME/runs/$id/logs.jsonl"
log_mb=$(( $(stat -c %s "$log_file") / 1000000 ))

tail_stats=$(/usr/bin/time -f '%e %M' "$MOAT" logs -n 5 "$id" 2>&1 >/dev/null | tail -1)
read -r tail_s tail_kb <<<"$tail_stats"

echo "flood:                      $MB MB of 'y' lines and END, image $image"
awk -v l="$docker_lines" -v ms="$docker_ms" -v mb="$MB" 'BEGIN {
    printf "docker log:                 %d lines in %d ms: %.0f lines/s, %.2f MB/s\n", l, ms, l/(ms/1000), mb/(ms/1000) }'
awk -v l="$follow_lines" -v ms="$follow_ms" -v mb="$MB" 'BEGIN {
    printf "docker logs -f -t:          %d lines in %d ms: %.0f lines/s, %.2f MB/s\n", l, ms, l/(ms/1000), mb/(ms/1000) }'
awk -v l="$moat_lines" -v ms="$moat_ms" -v mb="$MB" 'BEGIN {
    printf "moat logs.jsonl:            %d lines in %d ms: %.0f lines/s, %.2f MB/s\n", l, ms, l/(ms/1000), mb/(ms/1000) }'
awk -v d="$docker_ms" -v m="$moat_ms" -v dl="$docker_lines" -v ml="$moat_lines" 'BEGIN {
    printf "ratio (moat/docker):        %.2fx the time, %.4f of the lines\n", m/d, ml/dl }'
awk -v f="$follow_ms" -v m="$moat_ms" 'BEGIN {
    printf "ratio (moat/docker logs -f): %.2fx the time\n", m/f }'
echo "last line:                  $last"
echo "record:                     $("$MOAT" list --json | grep -o '"logs_complete": [a-z]*' | head -1)"
echo "load after:                 $(uptime | sed 's/.*load/load/')"
echo "moat logs -n 5 on ${log_mb} MB:  ${tail_s} s, peak ${tail_kb} KB"
