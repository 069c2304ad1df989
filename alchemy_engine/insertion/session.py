"""Models kept loaded across insertion jobs in one process (the GUI holds one InsertionSession).

One SDXL base pipeline is loaded per model; the text-to-image, inpaint and img2img pipelines are
views of the same modules (no copies, no casts). LoRAs are loaded once as named
adapters and switched per call with ``set_adapters``; scene generation turns them off so the
scene comes from unmodified SDXL. SAM models and detectors are cached by checkpoint and device.
Call :meth:`InsertionSession.release` before training to give the memory back.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alchemy_engine.errors import ModelError
from alchemy_engine.models import resident
from alchemy_engine.models.resident import free_device_memory

log = logging.getLogger(__name__)

MAX_ADAPTERS = 4


class _DropFp32CastNotice(logging.Filter):
    """diffusers 0.42's SDXL pipelines upcast the VAE with ``vae.to(dtype=float32)`` on every call,
    which logs "There are modules in AutoencoderKL that should be kept in float32: []" each time."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("There are modules in ")


logging.getLogger("diffusers.models.modeling_utils").addFilter(_DropFp32CastNotice())


@dataclass
class LoadedSdxl:
    source: Any  # models.SdxlSource
    policy: Any  # models.DevicePolicy
    base: Any  # StableDiffusionXLPipeline
    fingerprint: str
    _inpaint: Any = None
    _img2img: Any = None
    speed: Any = None  # models.inference_speed.SpeedState: compile, fused q/k/v, notes
    memory_note: str = ""  # why the UNet's weights are kept in half (every insertion says it)

    @property
    def inpaint(self) -> Any:
        if self._inpaint is None:
            from diffusers import StableDiffusionXLInpaintPipeline

            self._inpaint = self._view(StableDiffusionXLInpaintPipeline)
        return self._inpaint

    @property
    def img2img(self) -> Any:
        if self._img2img is None:
            from diffusers import StableDiffusionXLImg2ImgPipeline

            self._img2img = self._view(StableDiffusionXLImg2ImgPipeline)
        return self._img2img

    def _view(self, pipeline_class: Any) -> Any:
        """A pipeline of another task over the base pipeline's very modules. Not diffusers'
        ``from_pipe``: it casts every module to ``dtype``, float32 unless given (diffusers 0.42) —
        a GPU's bf16 SDXL became float32 at the first insertion, twice the memory — and a cast
        would also undo UNet weights kept in half (``memory/inference.choose_unet_storage``)."""
        accepted = inspect.signature(pipeline_class.__init__).parameters
        components = {name: module for name, module in self.base.components.items() if name in accepted}
        pipe = pipeline_class(**components,
                              force_zeros_for_empty_prompt=self.base.config.force_zeros_for_empty_prompt)
        pipe.set_progress_bar_config(disable=True)
        return pipe


def lora_adapter_name(path: Path) -> str:
    """A stable adapter name for a LoRA file (changes when the file is rewritten)."""
    stat = Path(path).stat()
    key = f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return "alchemy_" + hashlib.sha256(key.encode()).hexdigest()[:12]


class InsertionSession:
    """Loaded SDXL / LoRA / SAM / detector models, reused by every call that passes this session.

    Not for concurrent jobs: the engine runs one GPU job at a time; ``lock`` guards against misuse.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._sdxl: LoadedSdxl | None = None
        self._sdxl_key: tuple | None = None
        self._adapters: OrderedDict[str, Path] = OrderedDict()
        self._sam: dict[tuple, Any] = {}
        self._detectors: dict[tuple, Any] = {}
        self._inpaint_model: tuple[tuple, Any] | None = None  # (key, insertion.inpaint_model.InpaintModel)
        self.loads = 0  # how many times an SDXL model was loaded (tests)
        resident.register(self)  # training frees these models before it starts

    # --- SDXL -----------------------------------------------------------------------------------
    def sdxl(self, spec: str | None, device: str | None = None, compile_mode: str = "auto",
             prediction: str = "auto") -> LoadedSdxl:
        from alchemy_engine.memory.inference import choose_unet_storage
        from alchemy_engine.memory.peaks import rss_bytes
        from alchemy_engine.models import inference_speed
        from alchemy_engine.models.device import device_policy, free_device_bytes
        from alchemy_engine.models.inventory import resolve_sdxl
        from alchemy_engine.models.sdxl import load_sdxl_pipeline

        source = resolve_sdxl(spec)
        policy = device_policy(device)
        key = (source.kind, str(source.path), policy.device, str(policy.dtype), compile_mode, prediction)
        with self.lock:
            if self._sdxl is not None and self._sdxl_key == key:
                return self._sdxl
            self.release_sdxl()
            # decided when loading only: once loaded, the models themselves take the free memory
            storage, why = choose_unet_storage(source, policy, free_device_bytes(policy.device), rss_bytes() or 0)
            pipe = load_sdxl_pipeline(source, policy, unet_storage=storage, prediction=prediction)
            self.loads += 1
            speed = inference_speed.prepare(pipe, policy.device, compile_mode)
            speed.notes.extend([why] if why else [])
            self._sdxl = LoadedSdxl(source, policy, pipe, source.fingerprint(), speed=speed, memory_note=why)
            self._sdxl_key = key
            return self._sdxl

    def use_lora(self, loaded: LoadedSdxl, path: Path, scale: float) -> str:
        """Make ``path`` the only active adapter at ``scale``; loads and checks it the first time."""
        return self.use_loras(loaded, [(Path(path), scale)])[0]

    def use_loras(self, loaded: LoadedSdxl, loras: list[tuple[Path, float]]) -> list[str]:
        """Make exactly these LoRAs active, stacked, each at its own scale (subject, then style)."""
        if len(loras) > MAX_ADAPTERS:
            raise ModelError(f"at most {MAX_ADAPTERS} LoRAs can be active at once")
        with self.lock:
            pipe = loaded.base
            names = [lora_adapter_name(path) for path, _ in loras]
            if len(set(names)) != len(names):
                raise ModelError("the same LoRA file is given twice; choose a different style LoRA")
            for (path, _), name in zip(loras, names):
                if name not in self._adapters:
                    self._load_adapter(pipe, Path(path), name, keep=names)
                self._adapters.move_to_end(name)
            pipe.enable_lora()
            pipe.set_adapters(names, adapter_weights=[float(scale) for _, scale in loras])
            return names

    def _load_adapter(self, pipe: Any, path: Path, name: str, keep: list[str]) -> None:
        from alchemy_engine.models.lora_files import check_lora_file

        info = check_lora_file(path, pipe.unet)
        while len(self._adapters) >= MAX_ADAPTERS:  # the least recently used one that is not wanted now
            old = next(n for n in self._adapters if n not in keep)
            del self._adapters[old]
            pipe.delete_adapters(old)
        try:
            with _quiet_diffusers(), resident.building_models():  # "no LoRA keys for CLIPTextModel" is expected for UNet-only LoRAs
                pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=name,
                                       local_files_only=True)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise ModelError(f"cannot load the LoRA {path}: {exc}. Use a LoRA made for SDXL, or train "
                             "one for this model.") from exc
        found = (_adapter_layers(pipe.unet, name),
                 sum(_adapter_layers(m, name) for m in (pipe.text_encoder, pipe.text_encoder_2)))
        if found != (info.unet_layers, info.text_encoder_layers):
            pipe.delete_adapters(name)
            raise ModelError(
                f"{path.name} loaded only in part: {found[0]} of {info.unet_layers} UNet layers and "
                f"{found[1]} of {info.text_encoder_layers} text-encoder layers fit this SDXL model; "
                "refusing to use a LoRA with layers silently missing.")
        self._adapters[name] = path

    def inpaint_model(self, loaded: LoadedSdxl, spec: str) -> Any:
        """The inpainting UNet ``spec`` beside ``loaded``, loaded once (``inpaint_model.py``)."""
        from alchemy_engine.insertion.inpaint_model import open_inpaint_model

        key = (id(loaded), str(spec))
        with self.lock:
            if self._inpaint_model is None or self._inpaint_model[0] != key:
                self._inpaint_model = None
                self._inpaint_model = (key, open_inpaint_model(loaded, spec))
            return self._inpaint_model[1]

    def lora_off(self, loaded: LoadedSdxl) -> None:
        """Unmodified SDXL for the next call (scene generation)."""
        with self.lock:
            if self._adapters:
                loaded.base.disable_lora()

    # --- SAM and detector -------------------------------------------------------------------------
    def sam(self, checkpoint: str, device: str) -> Any:
        from alchemy_engine.insertion.locate import SamSegmenter

        key = (str(checkpoint), device)
        with self.lock:
            if key not in self._sam:
                self._sam[key] = SamSegmenter.load(checkpoint, device=device)
            return self._sam[key]

    def detector(self, folder: str, device: str) -> Any:
        from alchemy_engine.models.detector import load_detector
        from alchemy_engine.models.inventory import detector_folder

        key = (str(folder), device)
        with self.lock:
            if key not in self._detectors:
                self._detectors[key] = load_detector(detector_folder(folder), device=device)
            return self._detectors[key]

    # --- memory -----------------------------------------------------------------------------------
    def release_sdxl(self) -> None:
        with self.lock:
            self._sdxl = None
            self._sdxl_key = None
            self._inpaint_model = None
            self._adapters.clear()
            free_device_memory()

    def release(self) -> None:
        """Drop every model (call before training)."""
        with self.lock:
            self._sam.clear()
            self._detectors.clear()
            self.release_sdxl()


def _adapter_layers(module: Any, name: str) -> int:
    """How many layers of ``module`` carry the LoRA adapter ``name`` (peft's lora_A dicts)."""
    return sum(1 for m in module.modules() if name in (getattr(m, "lora_A", None) or {}))


@contextlib.contextmanager
def _quiet_diffusers():
    """Hide the notices that loading a second, UNet-only adapter always produces."""
    logger = logging.getLogger("diffusers")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
            yield
    finally:
        logger.setLevel(level)


_default: InsertionSession | None = None
_default_lock = threading.Lock()


def default_session() -> InsertionSession:
    """The process-wide session used when a caller passes none (the CLI, scripts)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = InsertionSession()
        return _default
