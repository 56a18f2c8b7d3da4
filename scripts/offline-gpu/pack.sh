#!/usr/bin/env bash
# Packs what a GPU machine WITHOUT network access needs to run Transfuse's checks and experiment
# cells from a copy of this checkout: this machine's node binary, the runtime node_modules (Dawn's
# linux-x64 build only; vitest for the tests; tfjs's Node bundles for the kernel peer), the built
# packages, and optionally the digit data. Everything lands in .offline/ (ignored by git), about
# 40 MB compressed, 55 MB with the data. Run `npm run setup` first.
#   scripts/offline-gpu/pack.sh [--data DIR]
# Then copy the checkout with .offline/ to the GPU machine and run, in its root:
#   bash scripts/offline-gpu/checks.sh      (tests on the GPU, kernels vs tfjs-webgpu, models vs PyTorch)
#   bash scripts/offline-gpu/cells.sh       (experiment cells; needs --data here)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f packages/models/dist/cli.js ] || { echo "pack.sh: run \`npm run setup\` first" >&2; exit 1; }
out=.offline
mkdir -p "$out"
grep -qx '/.offline/' .git/info/exclude 2>/dev/null || echo '/.offline/' >> .git/info/exclude
xz -T0 -6 -c "$(readlink -f "$(command -v node)")" > "$out/node.xz"
skip=(--exclude='node_modules/webgpu/dist/darwin*' --exclude='node_modules/webgpu/dist/win32*' --exclude='node_modules/webgpu/dist/linux-arm64'
  --exclude=node_modules/typescript --exclude=node_modules/playwright --exclude=node_modules/playwright-core --exclude=node_modules/@types
  --exclude=node_modules/@esbuild --exclude=node_modules/esbuild --exclude=node_modules/@vitest/browser --exclude=node_modules/@vitest/browser-playwright
  --exclude='node_modules/@tensorflow/*/dist' --exclude='node_modules/@tensorflow/*/src')
tar -cf "$out/modules.tar" "${skip[@]}" node_modules packages/*/dist packages/*/node_modules
tar -rf "$out/modules.tar" node_modules/@tensorflow/tfjs-core/dist/tf-core.node.js \
  node_modules/@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.node.js node_modules/@tensorflow/tfjs-backend-cpu/dist/tf-backend-cpu.node.js
xz -T0 -6 -f "$out/modules.tar"
if [ "${1:-}" = --data ]; then mkdir -p "$out/data" && cp -r "$2"/mnist "$2"/usps "$out/data/"; fi
du -sh "$out"
