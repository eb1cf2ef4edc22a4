#!/usr/bin/env bash
# What `moat claude -p` costs next to the same Claude Code binary run directly with
# `docker run`, both talking TLS to the same local fake `api.anthropic.com`
# (`fake-anthropic` on 127.0.0.1:443), on the same cached image: N runs of each,
# interleaved, then the mean, the median and their ratio.
#
# The fair baseline: the docker run reaches `https://api.anthropic.com/` itself (through
# `--add-host` and the fake's CA), not a base URL, so it makes the same start-up calls as
# moat's run; it has no proxy and no record. It runs on Docker's default bridge network,
# as `docker run` does unless told otherwise: a container of its own network namespace,
# as moat's is. (`--network host` shares the host's namespace, which is no isolation at
# all, and skips making one: about 130 ms of Docker's start on this machine. That figure
# is printed too, as a second line.) Both reach the fake through one relay on the bridge's
# gateway address (socat), so the relay's cost is on both sides. moat's run does everything a real one does:
# the supervisor, the proxy with TLS interception and key injection (its connect_to rule
# sends api.anthropic.com:443 to the fake), the recorded trace. Both sides get
# CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 so that they send the same requests.
# The first `moat claude` builds the image (node, git, Claude Code from the npm registry;
# Node.js from a local mirror made from the npm registry, as in the tests).
# Usage: bash bench/claude-overhead.sh [N]   (default 10; needs socat on this machine)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10}
for tool in socat docker python3; do
    command -v "$tool" >/dev/null || { echo "claude-overhead: $tool is missing (apt-get install -y $tool)" >&2; exit 1; }
done
cargo build --release --locked -p moat -p moat-test-support --bin moat --bin fake-anthropic >/dev/null 2>&1
MOAT=${CARGO_TARGET_DIR:-$PWD/target}/release/moat
FAKE_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/fake-anthropic
work=$(mktemp -d /tmp/moat-claude-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# The fake API, on port 443 (binding it needs root): the docker run reaches it there.
"$FAKE_BIN" --port 443 --reply "Benchmark reply." >"$work/fake.out" & pids+=($!)
until [ -s "$work/fake.out" ]; do
    kill -0 "${pids[0]}" 2>/dev/null || { echo "claude-overhead: the fake API did not start" >&2; exit 1; }
    sleep 0.05
done
read -r PORT FAKE_CA <"$work/fake.out"

# Node.js for the image, from the npm registry, served on loopback.
sh crates/moat-image/scripts/node-mirror.sh "$work/node-mirror" 24 >/dev/null
python3 -m http.server --bind 127.0.0.1 --directory "$work/node-mirror" 8799 >/dev/null 2>&1 & pids+=($!)

export MOAT_HOME="$work/moat" HOME="$work/home" MOAT_KEYRING=file MOAT_BUILD_NETWORK=host
# The relay on the bridge's gateway, which containers on the bridge reach.
GATEWAY=$(/usr/bin/docker network inspect bridge --format '{{(index .IPAM.Config 0).Gateway}}')
# Some daemons record no gateway for the default bridge: then it is the bridge's own address.
if [ -z "$GATEWAY" ]; then
    bridge=$(/usr/bin/docker network inspect bridge --format '{{index .Options "com.docker.network.bridge.name"}}')
    GATEWAY=$(ip -4 -o addr show "${bridge:-docker0}" | awk '{print $4}' | cut -d/ -f1 | head -1)
fi
socat "TCP-LISTEN:443,bind=$GATEWAY,fork,reuseaddr,nodelay" "TCP:127.0.0.1:$PORT,nodelay" & pids+=($!)
export MOAT_CONNECT_TO="api.anthropic.com:443:$GATEWAY:443"
mkdir -p "$MOAT_HOME" "$HOME" "$work/ws"
printf 'mirrors:\n  node: http://127.0.0.1:8799\n' >"$MOAT_HOME/config.yaml"
cat /usr/local/share/ca-certificates/*.crt "$FAKE_CA" >"$work/extra-ca.pem" 2>/dev/null || cp "$FAKE_CA" "$work/extra-ca.pem"
export MOAT_EXTRA_CA_CERTS="$work/extra-ca.pem"
KEY=sk-ant-api03-benchmarkKey0123456789abcdefghijklmnopqrstuvwxyz
ANTHROPIC_API_KEY=$KEY "$MOAT" grant anthropic --no-validate >/dev/null
cd "$work/ws"
"$MOAT" claude -p warmup </dev/null >/dev/null   # build or find the image
image=$("$MOAT" list --json | sed -n 's/.*"image": "\(.*\)".*/\1/p' | head -1)
uid=$(id -u); gid=$(id -g)

now() { date +%s%N; }
moat_ms=(); docker_ms=(); host_ms=()
baseline() {
    /usr/bin/docker run --rm --init "$@" \
        -v "$work/ws:/workspace" -v "$FAKE_CA:/fake-ca.pem:ro" \
        -e NODE_EXTRA_CA_CERTS=/fake-ca.pem -e ANTHROPIC_API_KEY="$KEY" \
        -e CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 -e DISABLE_AUTOUPDATER=1 \
        "$image" claude --dangerously-skip-permissions -p hello </dev/null >/dev/null
}
for _ in $(seq "$N"); do
    t0=$(now)
    "$MOAT" claude -e CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 -p hello </dev/null >/dev/null
    t1=$(now)
    baseline --add-host "api.anthropic.com:$GATEWAY"
    t2=$(now)
    baseline --network host --add-host api.anthropic.com:127.0.0.1
    t3=$(now)
    moat_ms+=($(( (t1 - t0) / 1000000 ))); docker_ms+=($(( (t2 - t1) / 1000000 )))
    host_ms+=($(( (t3 - t2) / 1000000 )))
done

stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1; s+=$1} END {printf "%.0f %.0f", s/NR, a[int((NR+1)/2)]}'; }
read -r moat_mean moat_median <<<"$(stats "${moat_ms[@]}")"
read -r docker_mean docker_median <<<"$(stats "${docker_ms[@]}")"
read -r host_mean host_median <<<"$(stats "${host_ms[@]}")"
echo "runs:                        $N each, image $image (uid $uid:$gid)"
echo "moat claude -p hello:        mean ${moat_mean} ms, median ${moat_median} ms"
echo "docker run ... claude -p:    mean ${docker_mean} ms, median ${docker_median} ms (default bridge network)"
echo "  the same, --network host:  mean ${host_mean} ms, median ${host_median} ms (no network isolation)"
awk -v m="$moat_median" -v d="$docker_median" 'BEGIN {printf "ratio (median):              %.2fx\n", m/d}'
awk -v m="$moat_median" -v d="$host_median" 'BEGIN {printf "ratio against --network host: %.2fx\n", m/d}'
