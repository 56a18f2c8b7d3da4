#!/usr/bin/env bash
# Runs as many `paper`-scale cells of the MNIST -> USPS experiments (protocol 2: n_t sweep,
# early-stopped budgets, compute-matched baseline, 3 seeds) as fit in a wall-clock budget on a
# GPU machine. Each finished cell is a JSON file written atomically under RESULTS/<experiment>/
# cells (source models under models/), so a run cut by the budget loses only the cell in flight.
# To merge: copy the returned cells/ and models/ into the same folder of a later run (or commit
# them under docs/results/paper); the runner skips finished cells, and config.json refuses a
# folder of other settings.
#
#   scripts/gpu-experiments.sh [RESULTS_DIR] [BUDGET_SECONDS]     (defaults: docs/results/paper, 450)
#
# Needs a set-up checkout (`npm run setup`) and the data in $TRANSFUSE_DATA or ../shared/data.
set -uo pipefail
cd "$(dirname "$0")/.."
RESULTS=${1:-docs/results/paper}
BUDGET=${2:-450}
deadline=$(( $(date +%s) + BUDGET ))
[ -f packages/models/dist/cli.js ] || npm run setup
for exp in mnist-usps-conditional mnist-usps-digit3; do
  left=$(( deadline - $(date +%s) ))
  if [ "$left" -lt 60 ]; then echo "gpu-experiments: budget spent before $exp"; break; fi
  echo "gpu-experiments: $exp, ${left} s left"
  timeout --signal=INT --kill-after=20 "$left" \
    node packages/models/dist/cli.js experiment "$exp" --preset paper --out "$RESULTS/$exp"
  rc=$?
  if [ "$rc" -eq 124 ]; then echo "gpu-experiments: $exp stopped at the budget; its finished cells are kept"; break; fi
  if [ "$rc" -ne 0 ]; then echo "gpu-experiments: $exp failed (exit $rc)"; exit "$rc"; fi
done
for exp in mnist-usps-conditional mnist-usps-digit3; do
  [ -d "$RESULTS/$exp/cells" ] && echo "$exp: $(ls "$RESULTS/$exp/cells" | wc -l) finished cells in $RESULTS/$exp/cells"
done
exit 0
