#!/usr/bin/env bash
# Kernel and model benchmarks on a real GPU (an NVIDIA machine, Dawn's Vulkan backend), in under
# 8 minutes: prints the GPU and driver, the kernel table against tfjs-webgpu, the tuner's choices,
# and the model table against PyTorch on CUDA when the machine's python3 has it (else PyTorch on
# the CPU, else Transfuse alone). Results land in the folder given as $1 (default gpu-bench-<time>).
# Record what it prints in BENCHMARKS.md ("On a real GPU") with the GPU, driver and date.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${1:-gpu-bench-$(date -u +%Y%m%d-%H%M)}
mkdir -p "$out"
log() { echo "[gpu-bench] $*" >&2; }

TRANSFUSE_SKIP_LAVAPIPE=1 bash scripts/setup.sh
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
else
  log "nvidia-smi not found: is the NVIDIA driver installed?"
fi

export TRANSFUSE_BACKEND=vulkan TRANSFUSE_TUNE=1 TRANSFUSE_TUNE_CACHE="$out/tune.json"
bench() { node packages/bench/dist/cli.js "$@"; }

# The header names the adapter; lavapipe there means the loader found no NVIDIA ICD.
log "kernels (about 3 min)"
timeout 240 bench --time 400 --json "$out/kernels.json" | tee "$out/kernels.md"
if grep -qi 'llvmpipe\|lavapipe' "$out/kernels.md"; then
  log "the adapter is a software one: install the NVIDIA Vulkan ICD (nvidia_icd.json) and libvulkan1"
  exit 1
fi

python=${TRANSFUSE_TORCH_PYTHON:-python3}
if "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  export TRANSFUSE_TORCH_PYTHON=$(command -v "$python") TRANSFUSE_TORCH_DEVICE=cuda
  log "models against PyTorch on CUDA"
else
  log "no PyTorch with CUDA for $python: models against PyTorch on the CPU where installed"
fi
log "models (about 3 min)"
timeout 120 bench --models --only "train step" --time 2000 --json "$out/models-train.json" | tee "$out/models-train.md"
timeout 60 bench --models --only "sample 1000" --time 1000 --json "$out/models-sample.json" | tee "$out/models-sample.md"
timeout 60 bench --models --only "DDIM" --time 1 --json "$out/models-ddim.json" | tee "$out/models-ddim.md"

log "tuner's choices (adapter | family | shape bucket -> variant):"
cat "$out/tune.json"
log "done: $out"
