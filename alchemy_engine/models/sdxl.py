"""Loading an SDXL pipeline from a resolved source, offline.

Single ``.safetensors`` checkpoints are loaded with diffusers' ``from_single_file`` and the
bundled SDXL configs and tokenizers (``paths.sdxl_config_dir()``), with ``local_files_only=True``:
diffusers never asks the Hub for a config. Folders (diffusers, Hugging Face cache, demo) go
through ``from_pretrained`` with ``use_safetensors=True`` so no pickle file is ever opened.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alchemy_engine import paths
from alchemy_engine.errors import ModelError
from alchemy_engine.models.device import DevicePolicy, device_policy
from alchemy_engine.models.prediction import configure as configure_scheduler
from alchemy_engine.models.prediction import resolve as prediction_schedule

if TYPE_CHECKING:
    import torch

    from alchemy_engine.models.sources import SdxlSource


def _load_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "this model cannot be loaded" (not out-of-memory or a bug of ours)."""
    from diffusers.loaders.single_file_utils import SingleFileComponentError

    return (OSError, ValueError, KeyError, SingleFileComponentError)


ENCODERS = ("text_encoder", "text_encoder_2", "vae")
COMPONENTS = ("unet", *ENCODERS)


def _from_folder(source: SdxlSource, dtype: torch.dtype, without: dict[str, None]) -> Any:
    from diffusers import StableDiffusionXLPipeline

    from alchemy_engine.models.loading import lazy_folder

    with lazy_folder(dtype):  # one tensor at a time, not the whole memory-mapped file (loading.py)
        return StableDiffusionXLPipeline.from_pretrained(
            source.path, dtype=dtype, local_files_only=True, use_safetensors=True,
            variant=source.variant, **shared_tokenizers(Path(source.path)), **without,
        )


def _from_single_file(source: SdxlSource, dtype: torch.dtype, config_dir: Path | None,
                      without: dict[str, None]) -> Any:
    from diffusers import StableDiffusionXLPipeline

    from alchemy_engine.models.probe import require_sdxl_checkpoint

    require_sdxl_checkpoint(source.path)  # refuse wrong files before reading gigabytes
    config = Path(config_dir or source.config_dir or paths.sdxl_config_dir())
    if not (config / "model_index.json").is_file():
        raise ModelError(f"the SDXL config folder {config} is missing; reinstall the app")
    from alchemy_engine.models.loading import lazy_single_file

    with lazy_single_file(dtype):  # streamed tensor by tensor into the built models (loading.py)
        pipe = StableDiffusionXLPipeline.from_single_file(
            str(source.path), config=str(config), local_files_only=True, dtype=dtype,
            **shared_tokenizers(config), **without,
        )
    return pipe


_TOKENIZERS: dict[str, Any] = {}
_TOKENIZERS_LOCK = threading.Lock()  # two jobs loading SDXL at once build each tokenizer once


def shared_tokenizers(folder: Path) -> dict[str, Any]:
    """The pipeline's two CLIP tokenizers, built once per process for each distinct content.

    Building one parses a 2 MB vocabulary and its BPE merges while holding the GIL (50-140 ms each
    on a loaded 2-core machine, a stall of the GUI's thread); nothing changes a tokenizer once
    built. They are keyed by their files' bytes, not their folder: the bundled ones, built ahead by
    ``api.warm_up``, serve every single-file checkpoint and any folder that ships the same files.
    """
    from transformers import CLIPTokenizer

    found = {}
    for name in ("tokenizer", "tokenizer_2"):
        sub = folder / name
        key = _content_key(sub)
        with _TOKENIZERS_LOCK:
            if key not in _TOKENIZERS:
                _TOKENIZERS[key] = CLIPTokenizer.from_pretrained(sub, local_files_only=True)
            found[name] = _TOKENIZERS[key]
    return found


def _content_key(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())  # a few MB; hashlib releases the GIL over large buffers
    return digest.hexdigest()


def _quiet_loading_bars() -> None:
    """Our jobs report their own progress; the libraries' per-file loading bars are noise."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def load_sdxl_pipeline(spec: str | Path | SdxlSource | None = None, policy: DevicePolicy | None = None,
                       config_dir: Path | None = None, without: tuple[str, ...] = (),
                       unet_storage: torch.dtype | None = None, prediction: str = "auto") -> Any:
    """A ready ``StableDiffusionXLPipeline`` on ``policy.device``; never touches the network.

    ``config_dir`` replaces the bundled SDXL configs for single-file checkpoints (a reduced-size
    test model needs its own configs; real SDXL files use the bundled ones). The components named
    in ``without`` (of :data:`COMPONENTS`) are not read at all and are ``None`` on the pipeline:
    training loads the encoders and the UNet one after the other, never both. ``unet_storage``
    (float16 / bfloat16): the UNet is read straight in that precision and its frozen weights stay
    in it, computed in ``policy.dtype`` (``half_weights.py``); the other components as ``policy``.
    ``prediction`` (auto / epsilon / v): the scheduler is set to what the model predicts, read from
    its markers when auto (``prediction.py``).
    """
    unknown = set(without) - set(COMPONENTS)
    if unknown:
        raise ValueError(f"unknown SDXL components {sorted(unknown)}; known: {', '.join(COMPONENTS)}")
    from alchemy_engine.models.inventory import resolve_sdxl
    from alchemy_engine.models.resident import SDXL_LIBRARIES, building_models, import_long_lived

    import_long_lived(*SDXL_LIBRARIES)
    source = resolve_sdxl(spec)
    schedule = prediction_schedule(source, prediction)  # a bad marker or config is refused before loading
    with building_models():
        pipe = _load(source, policy or device_policy(), config_dir, dict.fromkeys(without), unet_storage)
    pipe.scheduler = configure_scheduler(pipe.scheduler, schedule)
    return pipe


def _read(source: SdxlSource, dtype: torch.dtype, config_dir: Path | None, without: dict[str, None]) -> Any:
    if source.kind == "single_file":
        return _from_single_file(source, dtype, config_dir, without)
    return _from_folder(source, dtype, without)


def _load(source: SdxlSource, policy: DevicePolicy, config_dir: Path | None, without: dict[str, None],
          unet_storage: torch.dtype | None = None) -> Any:
    _quiet_loading_bars()
    try:
        if unet_storage is None or "unet" in without:
            pipe = _read(source, policy.dtype, config_dir, without)
        else:  # the rest first, then the UNet alone in half: its full-precision copy never exists
            from diffusers import StableDiffusionXLPipeline

            from alchemy_engine.models import half_weights

            rest = _read(source, policy.dtype, config_dir, {**without, "unet": None})
            unet = _read(source, unet_storage, config_dir, dict.fromkeys(ENCODERS)).unet
            half_weights.finish_half_loaded(unet, unet_storage, policy.dtype)
            pipe = StableDiffusionXLPipeline(**{**rest.components, "unet": unet})
    except _load_errors() as exc:
        raise ModelError(f"cannot load SDXL from {source.path}: {exc}") from exc
    if policy.vae_upcast and pipe.vae is not None:
        pipe.vae.register_to_config(force_upcast=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(policy.device)
