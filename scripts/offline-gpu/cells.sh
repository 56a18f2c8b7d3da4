#!/usr/bin/env bash
# On the GPU machine: protocol-2 cells of mnist-usps-conditional (cpu preset settings; seed, n_t and
# n_s lists as given, and optionally caps and target settings), stopped cleanly at a wall-clock budget. Finished cells are JSON files under
# RESULTS/cells; copy the folder back and rerun to go on (finished cells are skipped).
#   scripts/offline-gpu/cells.sh RESULTS BUDGET_SECONDS SEEDS NT_LIST NS_LIST [SOURCE_CAP|-] [TARGET_CHECK_EPOCHS|-] [TARGET_EMA|-] [TARGET_CAP]    e.g. out 480 0 100 100,60000 10000 4 0.999 6000
source "$(dirname "$0")/unpack.sh"
timeout --signal=INT --kill-after=15 "$2" node scripts/offline-gpu/cells.mjs "$1" .offline/data "$3" "$4" "$5" ${6:+"$6"} ${7:+"$7"} ${8:+"$8"} ${9:+"$9"} 2>&1 | tee "$OUT/cells.log"
log "exit ${PIPESTATUS[0]}"
