#!/usr/bin/env bash
# Double-click launcher (Linux, macOS): makes a private virtual environment on first run,
# installs Image Alchemy into it, then opens the app. Later runs start straight away.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${IMAGE_ALCHEMY_VENV:-$here/.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "First start: installing Image Alchemy into $venv (this downloads PyTorch; a few minutes)…"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --upgrade pip
  "$venv/bin/python" -m pip install -e "$here"
fi
exec "$venv/bin/python" "$here/main.py" "$@"
