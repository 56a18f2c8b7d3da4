#!/usr/bin/env bash
# On the GPU machine (after pack.sh's .offline/ came along): the adapter, the GPU-path test files,
# kernels against tfjs-webgpu with the tuner on, model steps against PyTorch (CUDA when the
# machine's python3 has it). About 2 minutes on an H200. Results in $OUT.
source "$(dirname "$0")/unpack.sh"
log "node $(node -v); $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
log "tests"
node node_modules/vitest/vitest.mjs run --config scripts/offline-gpu/vitest.config.mjs > "$OUT/tests.log" 2>&1
log "tests exit $?"
export TRANSFUSE_TUNE=1 TRANSFUSE_TUNE_CACHE="$OUT/tune.json"
log "kernels vs tfjs-webgpu"
timeout 300 node packages/bench/dist/cli.js --time 500 --json "$OUT/kernels.json" > "$OUT/kernels.md" 2>&1; log "exit $?"
python=${TRANSFUSE_TORCH_PYTHON:-$(command -v python3)}
"$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null && export TRANSFUSE_TORCH_DEVICE=cuda
export TRANSFUSE_TORCH_PYTHON=$python
log "models vs PyTorch (${TRANSFUSE_TORCH_DEVICE:-cpu})"
timeout 300 node packages/bench/dist/cli.js --models --peer torch --time 1500 --json "$OUT/models.json" > "$OUT/models.md" 2>&1; log "exit $?"
log "done: $OUT"
