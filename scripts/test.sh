#!/usr/bin/env bash
# The second command of the README: set up the machine, then the whole test suite
# (formatting, lints, unit tests, and the end-to-end tests against the real Docker daemon).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

log=$(mktemp /tmp/moat-test.XXXXXX)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast --lib --bins --tests 2>&1 | tee "$log" || status=$?
# The images the tests' runs built (tens of GB over a suite).
bash scripts/clean-test-images.sh || true
# What each failing test printed, again at the end, where a CI log that keeps only its
# start and its end still shows it (the first 40 lines of each).
awk '/^failures:$/ { n = 0 } /^---- .* stdout ----$/ { n = 40; print "" } n > 0 && !/^stack backtrace:|^ +[0-9]+: |^ +at / { print; n-- }' "$log" \
    | cut -c 1-4000 | head -n 400 || true
# One closing line for the whole suite, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
