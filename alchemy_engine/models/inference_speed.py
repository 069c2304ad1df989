"""Making a loaded SDXL pipeline fast for insertion and scenes, by device, measured.

* SDPA attention everywhere (diffusers' default; undone here if something set another processor);
* fused self-attention q/k/v with LoRA kept correct (``fast_attention``) and channels-last
  convolutions: on CUDA; on the CPU both measured at 0.99–1.01× (``bench/inference_bench.py``,
  ``bench/RESULTS.md``), so they are left off there;
* ``torch.compile`` of the UNet by ``compile = auto | on | off`` (``models/torch_compile.py``); the first
  image at a new size compiles, which :meth:`SpeedState.compile_notice` announces as its own stage;
  a failing compile falls back to eager (:func:`call_with_fallback`), with a note;
* the VAE decodes (and encodes) in tiles above :data:`TILED_VAE_PIXELS`, so a 4000×3000 full-frame
  repaint does not need the memory of one 12-megapixel VAE pass.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from alchemy_engine.models import torch_compile

log = logging.getLogger(__name__)

TILED_VAE_PIXELS = 2_000_000


@dataclasses.dataclass
class SpeedState:
    """What was done to one loaded pipeline, and the notes the next job should show once."""

    compiled: bool = False
    fused: int = 0
    channels_last: bool = False
    sizes_seen: set = dataclasses.field(default_factory=set)
    notes: list[str] = dataclasses.field(default_factory=list)

    def take_notes(self) -> list[str]:
        notes, self.notes = self.notes, []
        return notes

    def compile_notice(self, unet: Any, size: tuple[int, int], batch: int = 2) -> str | None:
        """A message for ``Stage.COMPILE`` when a compiled UNet meets this image size the first time."""
        key = (size, batch)
        if not torch_compile.is_compiled(unet) or key in self.sizes_seen:
            return None
        self.sizes_seen.add(key)
        return f"compiling the UNet for {size[0]}×{size[1]} (the first image at this size takes longer)"


def prepare(pipe: Any, device: str, compile_mode: str = "auto") -> SpeedState:
    """Apply the device's speed-ups to ``pipe`` (already on its device, in its dtype)."""
    import torch

    from alchemy_engine.models import fast_attention

    state = SpeedState()
    fast_attention.use_sdpa(pipe.unet, pipe.vae)
    if device.startswith("cuda"):
        pipe.unet.to(memory_format=torch.channels_last)
        state.channels_last = True
        state.fused = fast_attention.fuse_self_attention(pipe.unet)
    on, why = torch_compile.decide(compile_mode, device)
    if on:
        torch_compile.compile_in_place(pipe.unet)
        state.compiled = True
    if compile_mode == "auto" or not on:
        state.notes.append(f"compile: {'on' if on else 'off'} ({why})")
    return state


def vae_tiling(pipe: Any, width: int, height: int) -> None:
    """Tiled VAE above :data:`TILED_VAE_PIXELS`; whole-image VAE (exact) below it."""
    vae = getattr(pipe, "vae", None)
    if vae is None or not hasattr(vae, "enable_tiling"):
        return
    if width * height > TILED_VAE_PIXELS:
        vae.enable_tiling()
    else:
        vae.disable_tiling()


def call_with_fallback(pipe: Any, call: Callable[[], Any]) -> Any:
    """``call()``; if the compiled UNet fails to compile, run it again uncompiled (same seed, same result
    as an eager run) and remember a note on ``pipe.unet`` for the job to report."""
    try:
        return call()
    except torch_compile.compile_errors() as exc:
        if not torch_compile.is_compiled(pipe.unet) or torch_compile.is_out_of_memory(exc):
            raise
        log.warning("the compiled UNet failed; running uncompiled", exc_info=True)
        torch_compile.uncompile(pipe.unet)
        pipe.unet._alchemy_compile_failure = torch_compile.describe_failure(exc)
        return call()


def compile_failure(pipe: Any) -> str | None:
    """The note of a compile that fell back to eager (once), or None."""
    unet: Any = getattr(pipe, "unet", None)
    failure = getattr(unet, "_alchemy_compile_failure", None)
    if unet is not None and failure is not None:
        unet._alchemy_compile_failure = None
        return f"compile: on → off (compiling failed: {failure}; running uncompiled)"
    return None
