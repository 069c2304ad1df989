#!/usr/bin/env bash
# The one prepared GPU check, for a session that is lent a CUDA machine (H100/H200).
#   here:   bash bench/fetch_gpu_wheels.sh
#           (optional) put diffusers' examples/dreambooth/train_dreambooth_lora_sdxl.py, the version with
#           check_min_version("0.37.0.dev0") (bench/vs_reference.py), at .ref/train_dreambooth_lora_sdxl.py
#           (git-ignored; never commit it)
#   device: run  command="bash bench/gpu.sh"  carry=[".whl", ".ref"]  timeout_s=600
# Full-size SDXL is built from resources/ configs with random weights (same compute and memory
# as the real model). Prints every table; copies them to $OUT when that is set. Sections can be
# skipped with SKIP="insert reference ..." when time is short (device time is 15 min a session).
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
skip="${SKIP:-}"
want() { [[ " $skip " != *" $1 "* ]]; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/card.txt"
python3 -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__)"
# 1. training, full size, 1024², bf16: eager with checkpointing (VRAM, MFU, estimate vs measured)
want train && timeout 150 python3 bench/train_bench.py --device cuda --sizes full --repeats 1 \
  2>&1 | tee "$out/train_gpu.txt"
# 2. compile: our trainer compiled (auto = on for CUDA) and eager, same settings (steps 30)
want compile && timeout 240 python3 bench/train_bench.py --device cuda --sizes full --repeats 1 --compile on \
  2>&1 | tee "$out/train_gpu_compiled.txt"
want compile && timeout 200 python3 bench/compile_bench.py --device cuda --size full --resolution 1024 --steps 12 \
  2>&1 | tee "$out/compile_gpu.txt"
# 3. inference variants (fused q/k/v with LoRA, channels-last) and insertion seconds per image
want infer && timeout 120 python3 bench/inference_bench.py --device cuda --size full --resolution 1024 \
  2>&1 | tee "$out/inference_gpu.txt"
want insert && timeout 200 python3 bench/insert_bench.py --device cuda --gpu 2>&1 | tee "$out/insert_gpu.txt"
# 3a. reference guidance (IP-Adapter) on vs off: step time and peak VRAM, full-size UNet and adapter, 1024²
want reference_guidance && timeout 150 python3 bench/reference_bench.py --model full --size 1024 --device cuda \
  --repeats 5 2>&1 | tee "$out/reference_guidance_gpu.txt"
# 3b. 4 insertion variations one call each vs one batched call (demo:mid at 1024²: call overhead and
#     batching, not full-size SDXL compute); also prints the largest pixel difference per seed
want batch && timeout 150 python3 bench/insert_bench.py --device cuda --skip-crop --variations 4 --work-size 1024 \
  --steps 8 --repeats 3 2>&1 | tee "$out/batch_gpu.txt"
# 4. ours vs diffusers' reference script, full size, 1024²: both in bf16 (equal settings), then each
#    tool's defaults (the script's own --mixed_precision is fp32)
if want reference && [ -f .ref/train_dreambooth_lora_sdxl.py ]; then
  timeout 400 python3 bench/train_bench.py --device cuda --sizes full --steps 40 --warmup 10 --repeats 1 \
    --vs-reference .ref/train_dreambooth_lora_sdxl.py 2>&1 | tee "$out/vs_reference_gpu.txt"
  want defaults && timeout 400 python3 bench/train_bench.py --device cuda --sizes full --steps 40 --warmup 10 \
    --repeats 1 --ref-precision no --vs-reference .ref/train_dreambooth_lora_sdxl.py \
    2>&1 | tee "$out/vs_reference_gpu_defaults.txt"
fi
# 5. data-parallel scaling (bench/scaling_bench.py): step time and samples/s at 1 and 2 GPUs, full size,
#    1024², batch 1 per GPU; only on a machine with 2 GPUs or more
if want scaling && [ "$(nvidia-smi -L | wc -l)" -ge 2 ]; then
  timeout 400 python3 bench/scaling_bench.py --device cuda --gpus 1,2 --size full --resolution 1024 --steps 30 \
    2>&1 | tee "$out/scaling_gpu.txt"
fi
