"""Device/dtype policy and loading an SDXL pipeline from a resolved source, offline.

Single ``.safetensors`` checkpoints are loaded with diffusers' ``from_single_file`` and the
bundled SDXL configs and tokenizers (``paths.sdxl_config_dir()``), with ``local_files_only=True``:
diffusers never asks the Hub for a config. Folders (diffusers, Hugging Face cache, demo) go
through ``from_pretrained`` with ``use_safetensors=True`` so no pickle file is ever opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alchemy_engine import paths
from alchemy_engine.errors import ModelError

if TYPE_CHECKING:
    import torch

    from alchemy_engine.models import SdxlSource


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


def _load_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "this model cannot be loaded" (not out-of-memory or a bug of ours)."""
    from diffusers.loaders.single_file_utils import SingleFileComponentError

    return (OSError, ValueError, KeyError, SingleFileComponentError)


def _from_folder(source: SdxlSource, dtype: torch.dtype) -> Any:
    from diffusers import StableDiffusionXLPipeline

    return StableDiffusionXLPipeline.from_pretrained(
        source.path, dtype=dtype, local_files_only=True, use_safetensors=True,
        variant=source.variant,
    )


def _from_single_file(source: SdxlSource, dtype: torch.dtype, config_dir: Path | None) -> Any:
    from diffusers import StableDiffusionXLPipeline

    from alchemy_engine.checkpoint_probe import require_sdxl_checkpoint

    require_sdxl_checkpoint(source.path)  # refuse wrong files before reading gigabytes
    config = Path(config_dir) if config_dir is not None else paths.sdxl_config_dir()
    if not (config / "model_index.json").is_file():
        raise ModelError(f"the SDXL config folder {config} is missing; reinstall the app")
    return StableDiffusionXLPipeline.from_single_file(
        str(source.path), config=str(config), local_files_only=True, dtype=dtype,
    )


def _quiet_loading_bars() -> None:
    """Our jobs report their own progress; the libraries' per-file loading bars are noise."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def load_sdxl_pipeline(spec: str | Path | SdxlSource | None = None, policy: DevicePolicy | None = None,
                       config_dir: Path | None = None) -> Any:
    """A ready ``StableDiffusionXLPipeline`` on ``policy.device``; never touches the network.

    ``config_dir`` replaces the bundled SDXL configs for single-file checkpoints (a reduced-size
    test model needs its own configs; real SDXL files use the bundled ones).
    """
    from alchemy_engine.models import resolve_sdxl

    source = resolve_sdxl(spec)
    policy = policy or device_policy()
    _quiet_loading_bars()
    try:
        if source.kind == "single_file":
            pipe = _from_single_file(source, policy.dtype, config_dir)
        else:
            pipe = _from_folder(source, policy.dtype)
    except _load_errors() as exc:
        raise ModelError(f"cannot load SDXL from {source.path}: {exc}") from exc
    if policy.vae_upcast:
        pipe.vae.register_to_config(force_upcast=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(policy.device)
