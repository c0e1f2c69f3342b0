#!/usr/bin/env bash
# Everything a short GPU lease should run, in one go (docs/RESULTS.md, "On a GPU"):
#   1. bench/gpu_check.py: every CUDA path of the training loop once (CHECK=0 skips it, for a
#      lease after one where it passed and no CUDA path changed);
#   2. bench/diffusion_step.py (STEP=0 skips it): a training step of the U-Net, loop setting by
#      loop setting (losses read every step or every 25, cuDNN benchmark, channels_last); the
#      fastest is used by
#   3. bench/diffusion.py fitted to FIT_MIN minutes of training per objective, U-Net base 64,
#      batch 512, lr 1e-3: 5000 DDIM-50 samples scored with the floor and the baseline, then
#      what SKIP does not name of DDPM-1000 vs DDIM-50 and eps vs x0 (the x0 run takes the
#      eps run's epochs).
# Also logs the GPU's clocks, temperature, power and load every 10 s (gpu_clocks.csv).
# Needs NNLAB_DATA with mnist/ (and NNLAB_CACHE holding judges/mnist-cnn-v1 to score with the same
# judge as the CPU figures; without it the judge is trained first). Writes its logs, the step
# table and the diffusion runs (without their last checkpoints) as tar files to OUT.
#
#     OUT=runs/gpu bash bench/gpu_run.sh [FIT_MIN]        # FIT_MIN default 2
#     CHECK=0 STEP=0 SKIP="x0 ddpm" BENCH_S=540 OUT=runs/gpu bash bench/gpu_run.sh 6
#     BENCH_ARGS="--conditional --guidance 0.25" ...     # more options for bench/diffusion.py
# About 2 min for the check, 80 s for the step table (3 interleaved rounds) and (FIT_MIN + 1.5)
# minutes per objective on an H100.
set -uo pipefail
OUT=${OUT:-runs/gpu}
FIT=${1:-2}
WORK=${WORK:-$(mktemp -d)}
CHECK=${CHECK:-1}
STEP=${STEP:-1}  # 0: no step table (the diffusion bench then takes the loop's defaults)
SKIP=${SKIP:-}
BENCH_S=${BENCH_S:-400}  # the diffusion bench's hard limit, seconds
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
bash bench/gpu_info.sh "$py" 2>&1 | tee "$OUT/device.txt"
# the card's clocks, temperature, power and load every 10 s (read only): on one lease
# the step slowed from about 33 to 50 ms within minutes, on every setting alike
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,temperature.gpu,power.draw,utilization.gpu \
    --format=csv -l 10 > "$OUT/gpu_clocks.csv" 2>/dev/null &
clocks=$!
trap 'kill $clocks 2>/dev/null' EXIT
if [ "$CHECK" != 0 ]; then
    SECONDS=0
    timeout 180 $py bench/gpu_check.py 2>&1 | tee "$OUT/gpu_check.log"
    echo "gpu_check: ${SECONDS} s" | tee -a "$OUT/device.txt"
fi
if [ "$STEP" != 0 ]; then
    SECONDS=0
    timeout 150 $py bench/diffusion_step.py --batch-size 512 -m base=64 --short 15 --long 55 \
        --json "$OUT/step.json" 2>&1 | tee "$OUT/step.log"
    echo "step table: ${SECONDS} s" | tee -a "$OUT/device.txt"
fi
settings=()
[ -s "$OUT/step.json" ] && settings=(--loop-settings "$OUT/step.json")
SECONDS=0
timeout "$BENCH_S" $py bench/diffusion.py --fit-min "$FIT" --budget-min "$(
    $py -c "print(round(1.2 * $FIT, 2))")" --batch-size 512 --lr 1e-3 -m base=64 \
    ${SKIP:+--skip $SKIP} "${settings[@]}" ${BENCH_ARGS:-} --out "$WORK/diffusion" 2>&1 |
    tee "$OUT/diffusion.log"
echo "diffusion bench: ${SECONDS} s" | tee -a "$OUT/device.txt"
for r in eps x0; do
    [ -d "$WORK/diffusion/$r" ] || continue
    tar -C "$WORK/diffusion" --exclude=last.safetensors --exclude=report.html \
        -czf "$OUT/diffusion-$r.tar.gz" "$r"
done
ls -la "$OUT"
