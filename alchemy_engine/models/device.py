"""Where and in which precision models run: CUDA bf16 (fp16 + a float32 VAE without bf16), Apple
MPS fp16 + float32 VAE, CPU float32. Torch is imported inside functions."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alchemy_engine.errors import ModelError


@dataclass(frozen=True)
class DevicePolicy:
    """Where and in which precision models run.

    ``vae_dtype`` is the precision VAE encode/decode must run in. The VAE's weights are kept in
    ``dtype``; when the two differ (float16 devices: SDXL's VAE overflows in float16 and gives
    black or NaN images) the loader sets the VAE's ``force_upcast`` so diffusers' SDXL pipelines
    run it in float32. Code that calls the VAE itself should do the same: ``vae.to(vae_dtype)``
    around the call, inputs in ``vae_dtype``.
    """

    device: str
    dtype: Any  # torch.dtype; typed loosely so this module imports without torch
    vae_dtype: Any

    @property
    def vae_upcast(self) -> bool:
        return self.vae_dtype != self.dtype

    def to_dict(self) -> dict[str, str]:
        return {"device": self.device, "dtype": str(self.dtype).replace("torch.", ""),
                "vae_dtype": str(self.vae_dtype).replace("torch.", "")}


def choose_device_policy(prefer: str | None, cuda_available: bool, cuda_bf16: bool,
                         mps_available: bool) -> DevicePolicy:
    """The pure decision: CUDA → bf16 if supported, else fp16 with a float32 VAE; MPS → fp16 with
    a float32 VAE; CPU → float32. ``prefer`` ("cpu", "cuda", "cuda:1", "mps") forces a device."""
    import torch

    wanted = (prefer or "").strip().lower()
    if wanted.startswith("cuda") and not cuda_available:
        raise ModelError(f"device {prefer!r} was asked for, but no CUDA GPU is available")
    if wanted == "mps" and not mps_available:
        raise ModelError("device 'mps' was asked for, but Apple Metal (MPS) is not available")
    if wanted and not (wanted == "cpu" or wanted == "mps" or wanted.startswith("cuda")):
        raise ModelError(f"unknown device {prefer!r}; use cpu, cuda, cuda:N or mps")
    if wanted.startswith("cuda") or (not wanted and cuda_available):
        if cuda_bf16:
            return DevicePolicy(wanted or "cuda", torch.bfloat16, torch.bfloat16)
        return DevicePolicy(wanted or "cuda", torch.float16, torch.float32)
    if wanted == "mps" or (not wanted and mps_available):
        return DevicePolicy("mps", torch.float16, torch.float32)
    return DevicePolicy("cpu", torch.float32, torch.float32)


def device_policy(prefer: str | None = None) -> DevicePolicy:
    """The policy for this computer (asks torch what is available)."""
    import torch

    cuda = torch.cuda.is_available()
    bf16 = bool(cuda and torch.cuda.is_bf16_supported())
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return choose_device_policy(prefer, cuda, bf16, mps)


def bitsandbytes_usable(device: Any) -> bool:
    """Whether 8-bit AdamW (bitsandbytes) runs on ``device`` (a ``torch.device``): CUDA with the package."""
    return device.type == "cuda" and importlib.util.find_spec("bitsandbytes") is not None


def effective_optimizer(name: str, device: Any) -> str:
    """What will actually run: 8-bit AdamW falls back to AdamW without bitsandbytes + CUDA.
    Here, not in ``training/optimizers.py``, because the memory estimate sizes the same choice."""
    if name == "adamw8bit" and not bitsandbytes_usable(device):
        return "adamw"
    return name


def free_device_bytes(device: Any) -> int | None:
    """Memory a new allocation on ``device`` can still get, in bytes, or None when it cannot be known.

    CUDA: the driver's free memory plus what PyTorch's cache holds unused (it hands that out first);
    MPS: the recommended working set minus what the driver has allocated; CPU: ``MemAvailable``."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        free = int(torch.cuda.mem_get_info(device)[0])
        return free + int(torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if device.type == "mps":
        mps = getattr(torch, "mps", None)
        if mps is None or not hasattr(mps, "recommended_max_memory"):
            return None
        return max(0, int(mps.recommended_max_memory()) - int(mps.driver_allocated_memory()))
    if device.type == "cpu":
        with contextlib.suppress(OSError, ValueError):
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        with contextlib.suppress(ValueError, OSError, AttributeError):
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None
