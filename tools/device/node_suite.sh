#!/usr/bin/env bash
# Runs the ava suite on the GPU machine (which has no Node): unpacks a carried Node binary and the JS build made on
# the developer machine (see bench/RESULTS.md for how .devcarry/ is prepared), then runs ava with the GPU visible.
set -uo pipefail
mkdir -p /tmp/nodebin && xz -dc .devcarry/node.xz > /tmp/nodebin/node && chmod +x /tmp/nodebin/node
export PATH=/tmp/nodebin:$PATH
tar -xJf .devcarry/node_modules.tar.xz && tar -xf .devcarry/jsbuild.tar
node dist/cli.js info
node node_modules/ava/entrypoints/cli.mjs 2>&1 | tail -15
