#!/usr/bin/env bash
# Remove the images that finished test runs built: each is labelled `moat.home` with its
# test's MOAT_HOME (`/tmp/moat-it-*`), which is gone once the test ended. Run after the
# suite (scripts/test.sh does), never during it: another test's build may be using an
# intermediate image of theirs as its cache. Images of a home that still exists, and
# every image not built by a test, are left alone.
set -euo pipefail
removed=0
for id in $(/usr/bin/docker images -q --filter label=moat.home | sort -u); do
    home=$(/usr/bin/docker inspect "$id" --format '{{index .Config.Labels "moat.home"}}' 2>/dev/null || true)
    case "$home" in
        */moat-it-*) ;;
        *) continue ;;
    esac
    if [ ! -d "$home" ] && /usr/bin/docker rmi -f "$id" >/dev/null 2>&1; then
        removed=$((removed + 1))
    fi
done
echo "clean-test-images: removed $removed image(s) of finished tests"
