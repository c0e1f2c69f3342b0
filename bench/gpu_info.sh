#!/usr/bin/env bash
# The card, the driver, torch and its CUDA, and the CPU count: the first lines of every GPU
# lease's log (bench/gpu_run.sh, bench/gpu_eeg.sh).   bash bench/gpu_info.sh [PYTHON]
py=${1:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$py -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"
nproc
