#!/usr/bin/env bash
# The second command of the README: set up the machine, then the whole test suite
# (formatting, lints, unit tests, and the end-to-end tests against the real Docker daemon).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
