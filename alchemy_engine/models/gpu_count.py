"""How many NVIDIA GPUs this computer shows, without importing torch (the window opens without it).

Linux lists them under ``/proc/driver/nvidia/gpus``; Windows asks ``nvidia-smi -L`` (a second at
most); elsewhere, or when torch is loaded already, torch answers. ``CUDA_VISIBLE_DEVICES`` limits
the count as it limits torch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PROC_GPUS = Path("/proc/driver/nvidia/gpus")


def nvidia_gpu_count() -> int:
    if "torch" in sys.modules:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    found = _listed()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        found = min(found, len([d for d in visible.split(",") if d.strip()]))
    return found


def _listed() -> int:
    if PROC_GPUS.is_dir():
        return sum(1 for _ in PROC_GPUS.iterdir())
    tool = shutil.which("nvidia-smi") if sys.platform == "win32" else None
    if tool is None:
        return 0
    try:
        out = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):  # no driver answering: no GPU to offer
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))
