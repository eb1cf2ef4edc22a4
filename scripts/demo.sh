#!/usr/bin/env bash
# The first command of the README: set up the machine, build moat, and run a command in a
# container on built-in defaults (the current directory as the workspace).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p moat
./target/release/moat run -- sh -c 'echo "hello from $(hostname), running as $(id -un) in $(pwd)"'
./target/release/moat list
