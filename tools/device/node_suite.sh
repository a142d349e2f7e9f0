#!/usr/bin/env bash
# Runs the ava suite on the GPU machine (which has no Node): unpacks a carried Node binary and the JS build made on
# the developer machine, then runs ava with the GPU visible. Prepare .devcarry/ here first (it is git-ignored):
#   npm run build:native && npm run build:ts && npm run build:test && mkdir -p .devcarry
#   xz -c "$(command -v node)" > .devcarry/node.xz
#   tar -cJf .devcarry/node_modules.tar.xz node_modules
#   tar -cf .devcarry/jsbuild.tar dist build-test build/Release/showo2.node
# and name .devcarry in the device call's carry list.
set -uo pipefail
mkdir -p /tmp/nodebin && xz -dc .devcarry/node.xz > /tmp/nodebin/node && chmod +x /tmp/nodebin/node
export PATH=/tmp/nodebin:$PATH
tar -xJf .devcarry/node_modules.tar.xz && tar -xf .devcarry/jsbuild.tar
node dist/cli.js info
node node_modules/ava/entrypoints/cli.mjs 2>&1 | tail -15
