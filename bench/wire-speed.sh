#!/usr/bin/env bash
# Issue 12's table, from one interleaved run on loopback: what moat's way out costs next
# to the same work without it.
#
# - upstream: nginx (Debian) on 127.0.0.1 with a throwaway CA, serving 100 B and 1 MiB;
# - load: hey (Debian), from the host for the baselines and, for moat, from inside one
#   long-lived `moat run` (`docker exec`, so it has the run's HTTPS_PROXY and CA and no
#   network but the proxy), reaching nginx as `bench.test` through MOAT_CONNECT_TO;
# - peer: mitmproxy (PyPI, `mitmdump`, defaults) on the host, the same hey through it.
#
# Each round runs every scenario direct, through moat and through mitmproxy, in turn;
# the table gives the median over the rounds and the spread (min-max) of the ratio.
# The start-up rows interleave `moat run -- true` with `docker run --rm --init --network
# none IMAGE true`; the Claude row comes from bench/claude-overhead.sh (SKIP_CLAUDE=1
# leaves it out: it builds an image with Claude Code the first time).
#
# Usage: bash bench/wire-speed.sh [ROUNDS]   (default 5; START_RUNS=10, CLAUDE_RUNS=6)
# Needs: apt-get install -y nginx hey; pip install mitmproxy; Docker with
# debian:bookworm-slim. Every load is bounded (-n or -z) and goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
START_RUNS=${START_RUNS:-10}
for tool in nginx hey mitmdump openssl docker; do
    command -v "$tool" >/dev/null || { echo "wire-speed: $tool is missing (see the usage)" >&2; exit 1; }
done
# MOAT=/path/to/moat measures that binary instead of building this checkout's.
if [ -z "${MOAT:-}" ]; then
    cargo build --release --locked -p moat >/dev/null 2>&1
    MOAT=${CARGO_TARGET_DIR:-$PWD/target}/release/moat
fi
repo=$PWD

work=$(mktemp -d /tmp/moat-wire.XXXXXX)
chmod 755 "$work"   # nginx's workers (nobody) read the files
pids=()
run_id=
cleanup() {
    [ -n "$run_id" ] && "$MOAT" stop "$run_id" >/dev/null 2>&1 || true
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
echo "load before: $(uptime)"

# --- The upstream: nginx with a throwaway CA --------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=moat-bench-ca -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=bench.test \
    -keyout "$work/leaf.key" -out "$work/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:bench.test,IP:127.0.0.1\n' >"$work/leaf.ext"
openssl x509 -req -in "$work/leaf.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -CAcreateserial -days 2 -extfile "$work/leaf.ext" -out "$work/leaf.pem" 2>/dev/null
mkdir -p "$work/www"
head -c 100 /dev/zero | tr '\0' x >"$work/www/small"
head -c 1048576 /dev/urandom >"$work/www/large"
NGINX_PORT=$(free_port)
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$NGINX_PORT ssl backlog=4096;
        ssl_certificate $work/leaf.pem;
        ssl_certificate_key $work/leaf.key;
        root $work/www;
    }
}
EOF
nginx -c "$work/nginx.conf" -p "$work" -g 'daemon on;'
DIRECT=https://127.0.0.1:$NGINX_PORT

# --- The peer: mitmproxy ------------------------------------------------------------------
MITM_PORT=$(free_port)
mitmdump -q --listen-host 127.0.0.1 --listen-port "$MITM_PORT" \
    --set confdir="$work/mitm" --set ssl_verify_upstream_trusted_ca="$work/ca.pem" \
    >"$work/mitm.log" 2>&1 & pids+=($!)

# --- moat: one run that stays up; hey runs inside it --------------------------------------
# MOAT_HOME: a fresh one, unless MOAT_BENCH_HOME names one to keep (its CA, and so its
# image, then carry over to the next run of this script).
export MOAT_HOME="${MOAT_BENCH_HOME:-$work/moat}" MOAT_KEYRING=file
export MOAT_CONNECT_TO="bench.test:443:127.0.0.1:$NGINX_PORT"
export MOAT_EXTRA_CA_CERTS="$work/ca.pem"
mkdir -p "$MOAT_HOME" "$work/ws"
cp "$(command -v hey)" "$work/ws/hey"
cd "$work/ws"
"$MOAT" run -- true >/dev/null 2>&1   # build or find the image
image=$("$MOAT" list --json | sed -n 's/.*"image": "\(.*\)".*/\1/p' | head -1)
run_id=$("$MOAT" run -d -- sleep 3600 2>&1 | grep -o 'run_[0-9a-f]\{12\}' | head -1)
container=$(sed -n 's/.*"container_id": "\(.*\)".*/\1/p' "$MOAT_HOME/runs/$run_id/metadata.json")
supervisor=$(sed -n 's/.*"supervisor_pid": \([0-9]*\).*/\1/p' "$MOAT_HOME/runs/$run_id/metadata.json")
ready() {
    for _ in $(seq 100); do
        [ "$("$@")" = 200 ] && return 0
        sleep 0.2
    done
    echo "wire-speed: not ready: $*" >&2
    exit 1
}
ready curl -s -o /dev/null -w '%{http_code}' --cacert "$work/ca.pem" "$DIRECT/small"
ready curl -s -o /dev/null -w '%{http_code}' -x "http://127.0.0.1:$MITM_PORT" -k "$DIRECT/small"
ready docker exec "$container" curl -s -o /dev/null -w '%{http_code}' https://bench.test/small

# hey's figures: requests/s, p50 and p99 in ms, and how many requests were answered.
hey_figures() {
    awk '/Total:/ {total=$2} /^ *50% in/ {p50=$3*1000} /^ *99% in/ {p99=$3*1000}
         /^Status code distribution/ {codes=1; next} /^[A-Z]/ {codes=0}
         codes && /^ *\[2[0-9][0-9]\]/ {n+=$2}
         END {printf "%.1f %.2f %.2f %d\n", (total > 0 ? n / total : 0), p50, p99, n}'
}
moat_requests=0
direct() { hey "$@" 2>/dev/null | hey_figures; }
# The URL for moat names bench.test (the run reaches nginx through its connect_to rule).
through_moat() {
    local out
    # hey takes its proxy from -x only (not HTTPS_PROXY): the run's, token included.
    docker exec "$container" sh -c 'exec /workspace/hey -x "$HTTPS_PROXY" "$@"' hey "$@" \
        >"$work/hey.out" 2>&1 || true
    out=$(hey_figures <"$work/hey.out")
    # A load that got no answer at all is a broken set-up, not a figure.
    if [ "${out##* }" = 0 ]; then
        echo "wire-speed: no request through moat was answered; hey said:" >&2
        tail -5 "$work/hey.out" >&2
    fi
    moat_requests=$((moat_requests + ${out##* }))
    echo "$out"
}
through_mitm() { hey -x "http://127.0.0.1:$MITM_PORT" "$@" 2>/dev/null | hey_figures; }

kib() { awk -v k="$1" 'BEGIN {printf "%.1f", k/1024}'; }
idle_kib=$(awk '/VmRSS/ {print $2}' "/proc/$supervisor/status")
# Of that, what is the supervisor's own (RssAnon: heap, stacks) and what is clean pages of
# the mapped moat binary and libc (RssFile: shared with every moat process, reclaimable;
# how many of them a process maps depends on the kernel's fault-around and folio sizes).
idle_anon_kib=$(awk '/RssAnon/ {print $2}' "/proc/$supervisor/status")
idle_file_kib=$(awk '/RssFile/ {print $2}' "/proc/$supervisor/status")

declare -A R
record() { R[$1]+="$2 "; }
for round in $(seq "$ROUNDS"); do
    # 100 B and 1 MiB, one client, keep-alive.
    for size in small large; do
        read -r d_rps d_p50 _ _ <<<"$(direct -c 1 -z 3s "$DIRECT/$size")"
        # Not in a $(...): its count of requests must reach this shell.
        through_moat -c 1 -z 3s "https://bench.test/$size" >"$work/m"
        read -r m_rps m_p50 _ _ <"$work/m"
        read -r x_rps _ _ _ <<<"$(through_mitm -c 1 -z 3s "$DIRECT/$size")"
        record "$size.direct" "$d_rps"; record "$size.moat" "$m_rps"; record "$size.mitm" "$x_rps"
        record "$size.moat_p50" "$m_p50"; record "$size.direct_p50" "$d_p50"
    done
    # 32 clients, a new connection per request.
    read -r _ _ d_p99 _ <<<"$(direct -c 32 -n 1600 -disable-keepalive "$DIRECT/small")"
    through_moat -c 32 -n 1600 -disable-keepalive "https://bench.test/small" >"$work/m"
    read -r _ _ m_p99 _ <"$work/m"
    record new.direct_p99 "$d_p99"; record new.moat_p99 "$m_p99"
    # Memory: the peak under 32 concurrent 1 MiB responses (peak reset first).
    echo 5 >"/proc/$supervisor/clear_refs" 2>/dev/null || true
    through_moat -c 32 -n 320 "https://bench.test/large" >/dev/null
    record peak_kib "$(awk '/VmHWM/ {print $2}' "/proc/$supervisor/status")"
    echo "round $round of $ROUNDS done ($(uptime | sed 's/.*load/load/'))" >&2
done
# Every proxied request has its line in network.jsonl (written off the request path: let
# the writer catch up).
sleep 1
records=$(grep -c '"url":"https://bench.test/' "$MOAT_HOME/runs/$run_id/network.jsonl" || true)

# --- Start-up: moat run -- true against docker run with the same isolation ---------------
# moat's default run also takes the pre-run snapshot of the workspace (docs/snapshots.md),
# which docker does not do: the row with --no-snapshots is the same isolation, the other
# what a default run costs.
moat_ms=(); bare_ms=(); docker_ms=()
now() { date +%s%N; }
for _ in $(seq "$START_RUNS"); do
    t0=$(now); "$MOAT" run --no-snapshots -- true; t1=$(now)
    docker run --rm --init --network none "$image" true; t2=$(now)
    "$MOAT" run -- true; t3=$(now)
    bare_ms+=($(( (t1 - t0) / 1000000 ))); docker_ms+=($(( (t2 - t1) / 1000000 )))
    moat_ms+=($(( (t3 - t2) / 1000000 )))
done
record start.moat "${moat_ms[*]}"; record start.bare "${bare_ms[*]}"; record start.docker "${docker_ms[*]}"
cd "$repo"

claude_line=""
if [ "${SKIP_CLAUDE:-0}" != 1 ]; then
    claude_line=$(bash bench/claude-overhead.sh "${CLAUDE_RUNS:-6}" | grep '^ratio (median)' || true)
fi

# --- The table -------------------------------------------------------------------------------
median() { printf '%s\n' $1 | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Per-round ratios a/b: "median [min-max]".
ratios() {
    paste -d' ' <(printf '%s\n' $1) <(printf '%s\n' $2) |
        awk '{print ($2 > 0 ? $1/$2 : 0)}' | sort -g |
        awk '{r[NR]=$1} END {printf "%.2f [%.2f-%.2f]", r[int((NR+1)/2)], r[1], r[NR]}'
}
line() { printf '| %-62s | %-30s | %-17s | %-10s |\n' "$1" "$2" "$3" "$4"; }
echo
echo "moat egress, $ROUNDS rounds interleaved (median [min-max] of the per-round ratios); load after: $(uptime | sed 's/.*load/load/')"
line "figure" "moat / baseline (medians)" "ratio" "goal"
line "---" "---" "---" "---"
line "moat run --no-snapshots -- true ÷ docker run --rm --init --network none" \
    "$(median "${R[start.bare]}") ms / $(median "${R[start.docker]}") ms" \
    "$(ratios "${R[start.bare]}" "${R[start.docker]}")" "≤ 1.03"
line "  the same with the pre-run snapshot (moat run -- true)" \
    "$(median "${R[start.moat]}") ms / $(median "${R[start.docker]}") ms" \
    "$(ratios "${R[start.moat]}" "${R[start.docker]}")" ""
[ -n "$claude_line" ] && line "moat claude -p hello ÷ docker run claude, TLS to the same fake" \
    "(bench/claude-overhead.sh)" "$(printf '%s' "${claude_line##*: }" | tr -d ' x')" "≤ 1.10"
line "HTTPS via moat in a run ÷ direct, 100 B, 1 client, keep-alive" \
    "$(median "${R[small.moat]}") / $(median "${R[small.direct]}") req/s" \
    "$(ratios "${R[small.moat]}" "${R[small.direct]}")" "≥ 0.5"
line "same, 1 MiB responses" \
    "$(median "${R[large.moat]}") / $(median "${R[large.direct]}") req/s" \
    "$(ratios "${R[large.moat]}" "${R[large.direct]}")" "≥ 0.5"
line "  1 MiB: p50 latency, moat / direct" \
    "$(median "${R[large.moat_p50]}") ms / $(median "${R[large.direct_p50]}") ms" "" ""
line "  1 MiB: moat ÷ mitmproxy (req/s)" \
    "$(median "${R[large.moat]}") / $(median "${R[large.mitm]}") req/s" \
    "$(ratios "${R[large.moat]}" "${R[large.mitm]}")" "≥ 3"
line "  100 B: moat ÷ mitmproxy (req/s)" \
    "$(median "${R[small.moat]}") / $(median "${R[small.mitm]}") req/s" \
    "$(ratios "${R[small.moat]}" "${R[small.mitm]}")" ""
line "p99 latency, 32 clients, new connection per request" \
    "$(median "${R[new.moat_p99]}") ms / $(median "${R[new.direct_p99]}") ms" \
    "$(ratios "${R[new.moat_p99]}" "${R[new.direct_p99]}")" "≤ 2"
line "supervisor memory: idle" "$(kib "$idle_kib") MiB (VmRSS)" "" "≤ 10 MiB"
line "  of which its own (RssAnon) / the binary's and libc's clean pages (RssFile)" \
    "$(kib "$idle_anon_kib") / $(kib "$idle_file_kib") MiB" "" ""
line "supervisor memory: peak, 32 concurrent 1 MiB responses" \
    "$(kib "$(median "${R[peak_kib]}")") MiB (VmHWM)" "" "≤ 32 MiB"
echo
echo "requests answered through moat: $moat_requests; their network.jsonl records: $records"
