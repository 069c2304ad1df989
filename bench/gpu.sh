#!/usr/bin/env bash
# The one prepared GPU check, for a session that is lent a CUDA machine (H100/H200).
#   here:   bash bench/fetch_gpu_wheels.sh
#   device: run  command="bash bench/gpu.sh"  carry=[".whl"]  timeout_s=540
# Full-size SDXL is built from resources/ configs with random weights (same compute and memory
# as the real model). Prints both benchmark tables; copies them to $OUT when that is set.
set -uo pipefail
cd "$(dirname "$0")/.."
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
export IMAGE_ALCHEMY_HOME=/tmp/alchemy_home
out="${OUT:-/tmp/alchemy_bench}"; mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/card.txt"
python3 -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__)"
timeout 300 python3 bench/train_bench.py --device cuda --sizes full --repeats 1 2>&1 | tee "$out/train_gpu.txt"
timeout 200 python3 bench/insert_bench.py --device cuda --gpu 2>&1 | tee "$out/insert_gpu.txt"
