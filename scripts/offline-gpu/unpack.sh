# Sourced by checks.sh and cells.sh: puts the packed node first on PATH and unpacks the modules.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
[ -f .offline/node.xz ] || { echo "no .offline/: run scripts/offline-gpu/pack.sh on a machine with npm first" >&2; exit 1; }
mkdir -p /tmp/transfuse-node && xz -dc .offline/node.xz > /tmp/transfuse-node/node && chmod +x /tmp/transfuse-node/node
export PATH=/tmp/transfuse-node:$PATH
[ -d node_modules/webgpu ] || tar -xJf .offline/modules.tar.xz
OUT=${OUT:-offline-gpu-$(date -u +%Y%m%d-%H%M)}
mkdir -p "$OUT"
log() { echo "[offline-gpu $(date +%T)] $*" | tee -a "$OUT/steps.log"; }
# The NVIDIA driver's Vulkan ICD, where the loader does not find it by itself (containers).
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=${VK_DRIVER_FILES:-$icd}
export TRANSFUSE_BACKEND=${TRANSFUSE_BACKEND:-vulkan}
