#!/bin/sh
# moat-init: the entrypoint of every image moat builds.
# It runs as moatuser (never root), under docker-init, prepares the session and then
# replaces itself with the run's command so that signals and the exit code are the command's.
set -eu

if [ "$#" -eq 0 ]; then
    if [ -x /bin/bash ]; then set -- /bin/bash; else set -- /bin/sh; fi
fi

# The workspace is the working directory; a missing one means a broken mount, say so.
if [ ! -d /workspace ]; then
    echo "moat-init: /workspace is not mounted" >&2
    exit 125
fi

# Egress: the container has no network of its own. The run's proxy is a unix socket
# mounted from the host; socat makes it reachable as a TCP proxy on loopback, which is what
# HTTP(S)_PROXY clients speak. Nothing else leaves the container.
if [ -n "${MOAT_PROXY_SOCKET:-}" ]; then
    port=${MOAT_PROXY_PORT:-3128}
    if ! command -v socat >/dev/null 2>&1; then
        echo "moat-init: socat is missing from the image: run again with --rebuild" >&2
        exit 125
    fi
    # Its complaints about clients that hang up early go to a file, not the run's output.
    # nodelay: without it, large keep-alive responses stall on 40 ms delayed ACKs (issue
    # 12 measured 3.6-5.3x the throughput with it); backlog: socat's default of 5 overflows
    # when 32 clients connect at once, and each overflowed connection retries after 1 s.
    socat -lf /tmp/moat-proxy-forwarder.log "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork,backlog=1024,nodelay" "UNIX-CONNECT:$MOAT_PROXY_SOCKET" &
    # Wait (up to 2 s) until the forwarder listens, so the command's first request works.
    hex=$(printf '%04X' "$port")
    tries=0
    until grep -q ":$hex 00000000:0000 0A" /proc/net/tcp 2>/dev/null; do
        tries=$((tries + 1))
        if [ "$tries" -gt 200 ]; then
            echo "moat-init: the proxy forwarder did not start" >&2
            exit 125
        fi
        sleep 0.01
    done
fi

# Files the run puts in the home directory (an agent's settings): copied, not mounted,
# so the agent can rewrite them (atomic renames) without touching the host's copies.
if [ -n "${MOAT_HOME_INIT:-}" ] && [ -d "$MOAT_HOME_INIT" ]; then
    cp -R "$MOAT_HOME_INIT/." "$HOME/"
fi

# The pre_run hook: a command for `sh -c`, run in the workspace before every run's command.
# Its failure stops the run with its exit status.
if [ -n "${MOAT_PRE_RUN:-}" ]; then
    status=0
    (cd /workspace && sh -c "$MOAT_PRE_RUN") || status=$?
    if [ "$status" -ne 0 ]; then
        echo "moat-init: the pre_run hook failed with exit status $status" >&2
        exit "$status"
    fi
fi

# A command that is not there is said in moat's words, with what to do (the shell's own
# words would name this script: `moat-init: 58: exec: X: not found`); 127 as shells exit.
case "$1" in
    */*) found=$([ -e "$1" ] && echo yes || true) ;;
    *) found=$(command -v "$1" >/dev/null 2>&1 && echo yes || true) ;;
esac
if [ -z "$found" ]; then
    echo "error: \`$1\` is not a command in the container (not found on PATH: $PATH)" >&2
    echo "hint: check the spelling, or add what provides it to \`dependencies:\` in moat.yaml (\`moat deps list\` shows them)" >&2
    exit 127
fi

exec "$@"
