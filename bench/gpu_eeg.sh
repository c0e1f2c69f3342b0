#!/usr/bin/env bash
# The EEG family on a GPU lease, in one go (docs/RESULTS.md, "The CUDA paths"):
#   1. bench/gpu_check.py: every CUDA path of the training loop once, the EEG checks included
#      (CHECK=0 skips it; ONLY="seizure" runs the checks whose names hold that word);
#   2. `nnlab seizure bonn --pair D-E --folds 10` on the GPU with the task's defaults, once with
#      --precision auto (bf16 autocast) and once in fp32, to set beside the CPU's run of the same
#      folds and seeds (PAIRS="D-E AD-E" for more splits).
# Needs NNLAB_DATA with bonn-eeg/. Writes to OUT four files (a lease returns at most eight):
# device.txt, gpu_check.log, bonn.log (every run's output) and bonn.jsonl (their summaries, one
# line each, with the pair and the precision).
#
#     OUT=runs/gpu-eeg bash bench/gpu_eeg.sh
#     CHECK=0 PAIRS="D-E A-E AD-E" OUT=runs/gpu-eeg bash bench/gpu_eeg.sh
#     CHECK=0 DEVICE=cpu BONN_ARGS="--fold-limit 1" OUT=/tmp/t bash bench/gpu_eeg.sh   # a test
# About 2.5 min for the check and under a minute per split and precision on an H100.
set -uo pipefail
OUT=${OUT:-runs/gpu-eeg}
WORK=${WORK:-$(mktemp -d)}
CHECK=${CHECK:-1}
ONLY=${ONLY:-}
PAIRS=${PAIRS:-D-E}
DEVICE=${DEVICE:-cuda}  # cpu: the same runs here (to test the script, or the CPU's figures)
BONN_ARGS=${BONN_ARGS:-}  # more options for every Bonn run, e.g. "--fold-limit 1"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
bash bench/gpu_info.sh "$py" 2>&1 | tee "$OUT/device.txt"
if [ "$CHECK" != 0 ]; then
    SECONDS=0
    timeout 300 $py bench/gpu_check.py ${ONLY:+--only $ONLY} 2>&1 | tee "$OUT/gpu_check.log"
    echo "gpu_check: ${SECONDS} s" | tee -a "$OUT/device.txt"
fi
for pair in $PAIRS; do
    for precision in auto fp32; do
        SECONDS=0
        run="$WORK/bonn-$pair-$precision"
        echo "== bonn $pair $precision" >> "$OUT/bonn.log"
        timeout 240 $py -m nnlab seizure bonn --pair "$pair" --folds 10 --device "$DEVICE" \
            --precision "$precision" --out "$run" $BONN_ARGS > "$run.log" 2>&1
        echo "bonn $pair $precision: exit $?, ${SECONDS} s" | tee -a "$OUT/device.txt"
        cat "$run.log" >> "$OUT/bonn.log"
        tail -n 12 "$run.log"
        [ -s "$run/summary.json" ] && $py -c "import json, sys; s = json.load(open(sys.argv[1])); \
print(json.dumps({'pair': sys.argv[2], 'precision': sys.argv[3], **s}))" \
            "$run/summary.json" "$pair" "$precision" >> "$OUT/bonn.jsonl"
    done
done
