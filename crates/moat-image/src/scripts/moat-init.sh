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

exec "$@"
