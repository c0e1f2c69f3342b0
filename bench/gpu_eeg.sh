#!/usr/bin/env bash
# The EEG family on a GPU lease, in one go (docs/RESULTS.md, "The CUDA paths"):
#   1. bench/gpu_check.py: every CUDA path of the training loop once, the EEG checks included
#      (CHECK=0 skips it; ONLY="seizure" runs the checks whose names hold that word);
#   2. `nnlab seizure bonn --pair D-E --folds 10` on the GPU with the task's defaults, once with
#      --precision auto (bf16 autocast) and once in fp32, to set beside the CPU's run of the same
#      folds and seeds (PAIRS="D-E AD-E" for more splits).
# Needs NNLAB_DATA with bonn-eeg/. Writes the logs and the runs' summaries to OUT.
#
#     OUT=runs/gpu-eeg bash bench/gpu_eeg.sh
#     CHECK=0 PAIRS="D-E A-E AD-E" OUT=runs/gpu-eeg bash bench/gpu_eeg.sh
# About 2.5 min for the check and under a minute per split and precision on an H100.
set -uo pipefail
OUT=${OUT:-runs/gpu-eeg}
WORK=${WORK:-$(mktemp -d)}
CHECK=${CHECK:-1}
ONLY=${ONLY:-}
PAIRS=${PAIRS:-D-E}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    $py -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"
    nproc
} 2>&1 | tee "$OUT/device.txt"
if [ "$CHECK" != 0 ]; then
    SECONDS=0
    timeout 300 $py bench/gpu_check.py ${ONLY:+--only $ONLY} 2>&1 | tee "$OUT/gpu_check.log"
    echo "gpu_check: ${SECONDS} s" | tee -a "$OUT/device.txt"
fi
for pair in $PAIRS; do
    for precision in auto fp32; do
        SECONDS=0
        timeout 240 $py -m nnlab seizure bonn --pair "$pair" --folds 10 --device cuda \
            --precision "$precision" --out "$WORK/bonn-$pair-$precision" \
            > "$OUT/bonn-$pair-$precision.log" 2>&1
        echo "bonn $pair $precision: exit $?, ${SECONDS} s" | tee -a "$OUT/device.txt"
        tail -n 12 "$OUT/bonn-$pair-$precision.log"
        cp "$WORK/bonn-$pair-$precision/summary.json" "$OUT/bonn-$pair-$precision.json" || true
    done
done
