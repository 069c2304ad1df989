#!/usr/bin/env bash
# Run HERE (not on the GPU machine): downloads into .whl/ the Python 3.12 wheels the lent GPU
# machine lacks (its image has torch, transformers, peft, accelerate, safetensors, but not these).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir -p .whl
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform any -d .whl \
  "diffusers==$(python3 -c 'import diffusers; print(diffusers.__version__)')" \
  segment-anything platformdirs importlib-metadata
ls -la .whl
