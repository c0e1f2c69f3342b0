#!/usr/bin/env bash
# Everything a short GPU lease should run, in one go (docs/RESULTS.md, "On a GPU"):
#   1. bench/gpu_check.py: every CUDA path of the training loop once;
#   2. bench/diffusion.py fitted to FIT_MIN minutes of training per objective (eps, then x0 at
#      the same epochs), U-Net base 64, batch 512, lr 1e-3 (a step costs the same 39 ms at batch
#      128 and 512 on an H100: launch-bound): 5000 DDIM-50 samples scored with the floor and the
#      baseline, DDPM-1000 vs DDIM-50, eps vs x0.
# Needs NNLAB_DATA with mnist/ (and NNLAB_CACHE holding judges/mnist-cnn-v1 to score with the same
# judge as the CPU figures; without it the judge is trained first). Writes its logs and the two
# diffusion runs (without their last checkpoints) as tar files to OUT.
#
#     OUT=runs/gpu bash bench/gpu_run.sh [FIT_MIN]        # FIT_MIN default 2
# About 2 min for the check and 2 x (FIT_MIN + 1) for the diffusion bench on an H100.
set -uo pipefail
OUT=${OUT:-runs/gpu}
FIT=${1:-2}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    $py -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"
    nproc
} 2>&1 | tee "$OUT/device.txt"
SECONDS=0
timeout 180 $py bench/gpu_check.py 2>&1 | tee "$OUT/gpu_check.log"
echo "gpu_check: ${SECONDS} s" | tee -a "$OUT/device.txt"
SECONDS=0
timeout 400 $py bench/diffusion.py --fit-min "$FIT" --batch-size 512 --lr 1e-3 -m base=64 \
    --out "$WORK/diffusion" 2>&1 | tee "$OUT/diffusion.log"
echo "diffusion bench: ${SECONDS} s" | tee -a "$OUT/device.txt"
for r in eps x0; do
    [ -d "$WORK/diffusion/$r" ] || continue
    tar -C "$WORK/diffusion" --exclude=last.safetensors --exclude=report.html \
        -czf "$OUT/diffusion-$r.tar.gz" "$r"
done
ls -la "$OUT"
