"""Find SDXL, SAM and Grounding DINO weights on this computer; never download anything.

Where models come from, in the order ``resolve_sdxl(None)`` tries them:

1. ``models_dir()/sdxl/``: single ``.safetensors`` checkpoints and diffusers folders;
2. an existing Hugging Face cache holding a whole SDXL pipeline (``stabilityai/
   stable-diffusion-xl-base-1.0`` first), looked up with huggingface_hub's local-only calls;
3. nothing found: a :class:`ModelError` that says where to put the weights.

``"demo"`` (``"demo:mid"``) is the built-in random-weight SDXL, loaded like any diffusers folder.
Torch and diffusers are imported inside functions: importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alchemy_engine import paths
from alchemy_engine.checkpoint_probe import EXPECTED_SDXL, PICKLE_SUFFIXES, HeaderError, file_fingerprint
from alchemy_engine.errors import ModelError
from alchemy_engine.sdxl_loading import DevicePolicy, choose_device_policy, device_policy, load_sdxl_pipeline

log = logging.getLogger(__name__)

__all__ = [
    "DevicePolicy", "ModelEntry", "ModelInventory", "SdxlSource", "choose_device_policy",
    "device_policy", "find_models", "find_sdxl_sources", "load_sdxl_pipeline", "resolve_sdxl",
    "SDXL_REPO_ID", "sdxl_components_status",
]

SDXL_REPO_ID = "stabilityai/stable-diffusion-xl-base-1.0"
SDXL_KINDS = ("demo", "diffusers", "single_file", "hf_cache")
_COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")
_WEIGHT_STEMS = ("diffusion_pytorch_model", "model")
WHERE_TO_PUT_SDXL = (
    "put an SDXL checkpoint (e.g. sd_xl_base_1.0.safetensors, RealVisXL, Juggernaut XL) or an SDXL "
    "diffusers folder into {folder}, or pass its path with --model; 'demo' runs the built-in "
    "random-weight model"
)


@dataclass(frozen=True)
class SdxlSource:
    """Where one SDXL model lives. ``variant`` is diffusers' weight variant (e.g. ``"fp16"``)."""

    kind: str  # one of SDXL_KINDS
    path: Path
    name: str
    variant: str | None = None

    def fingerprint(self) -> str:
        """A cheap, stable id of the base model (for LoRA metadata and caches); reads no weights."""
        if self.kind == "single_file":
            try:
                return file_fingerprint(self.path)
            except HeaderError as exc:
                raise ModelError(f"{self.path.name} is not a readable .safetensors file: {exc}") from exc
        return folder_fingerprint(self.path)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "kind": self.kind, "variant": self.variant}


@dataclass(frozen=True)
class ModelEntry:
    """One line of the inventory: ``kind`` is the source kind (SDXL) or the variant (SAM)."""

    name: str
    path: str
    kind: str
    note: str = ""


@dataclass(frozen=True)
class ModelInventory:
    sdxl: tuple[ModelEntry, ...] = ()
    sam: tuple[ModelEntry, ...] = ()
    detector: tuple[ModelEntry, ...] = ()
    folders: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"sdxl": [asdict(e) for e in self.sdxl], "sam": [asdict(e) for e in self.sam],
                "detector": [asdict(e) for e in self.detector], "folders": dict(self.folders)}


# --- diffusers folders -------------------------------------------------------------------------

def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path} is not a JSON object")
    return data


def _component_weights(folder: Path, component: str) -> tuple[list[Path], str | None] | None:
    """Safetensors weight files of one component and their variant; None if there are none."""
    sub = folder / component
    for stem in _WEIGHT_STEMS:
        for variant in (None, "fp16"):
            infix = f".{variant}" if variant else ""
            single = sub / f"{stem}{infix}.safetensors"
            if single.is_file():
                return [single], variant
            index = sub / f"{stem}.safetensors.index{infix}.json"
            if index.is_file():
                return sorted(sub.glob(f"{stem}-*{infix}.safetensors")) + [index], variant
    return None


def sdxl_components_status(folder: Path) -> tuple[str | None, list[str]]:
    """(weight variant, problems) of a diffusers folder; no problems means it is a loadable SDXL."""
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        return None, ["no model_index.json"]
    index = _read_json(index_file)
    problems: list[str] = []
    if index.get("_class_name") != "StableDiffusionXLPipeline":
        problems.append(f"it is a {index.get('_class_name')}, not a StableDiffusionXLPipeline")
    for component in _COMPONENTS:
        if not index.get(component) or index[component][0] is None:
            problems.append(f"it has no {component} (an SDXL refiner?)")
    if problems:
        return None, problems
    unet = _read_json(folder / "unet" / "config.json")
    te1 = _read_json(folder / "text_encoder" / "config.json")
    te2 = _read_json(folder / "text_encoder_2" / "config.json")
    if unet.get("addition_embed_type") != "text_time" or unet.get("in_channels") != 4:
        problems.append("its UNet is not an SDXL base text-to-image UNet")
    elif unet.get("cross_attention_dim") != te1.get("hidden_size", 0) + te2.get("hidden_size", 0):
        problems.append("its UNet and text encoders do not fit together")
    variants = set()
    for component in _COMPONENTS:
        found = _component_weights(folder, component)
        if found is None:
            has_bin = any((folder / component).glob("*.bin"))
            problems.append(f"{component}/ has no .safetensors weights"
                            + (" (only pickle .bin files, which the app never opens)" if has_bin else ""))
        else:
            variants.add(found[1])
    variant = "fp16" if variants == {"fp16"} else None
    if len(variants) > 1:
        problems.append("its components mix full and fp16 weight files")
    return variant, problems


def folder_fingerprint(folder: Path) -> str:
    """sha256 of the UNet config and the names and sizes of the weight files."""
    digest = hashlib.sha256((folder / "unet" / "config.json").read_bytes())
    for component in _COMPONENTS:
        found = _component_weights(folder, component)
        for file in (found[0] if found else []):
            digest.update(f"{component}/{file.name}:{file.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def _folder_source(folder: Path, kind: str, name: str) -> SdxlSource:
    variant, problems = sdxl_components_status(folder)
    if problems:
        raise ModelError(f"{folder} is not a usable SDXL diffusers folder: {'; '.join(problems)}. "
                         f"Expected a folder saved from {SDXL_REPO_ID} or an SDXL fine-tune.")
    return SdxlSource(kind, folder, name, variant)


# --- Hugging Face cache ------------------------------------------------------------------------

def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment on every call (like the hub does)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hf_cached_snapshot(repo_id: str) -> Path | None:
    """The local snapshot folder of ``repo_id`` if its model_index.json is cached; no network."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "model_index.json", cache_dir=hf_cache_dir())
    return Path(found).parent if isinstance(found, str) else None


def _cached_repo_ids() -> list[str]:
    cache = hf_cache_dir()
    if not cache.is_dir():
        return []
    repos = [d.name[len("models--"):].replace("--", "/") for d in sorted(cache.glob("models--*--*"))]
    return sorted(repos, key=lambda r: r != SDXL_REPO_ID)


def _hf_sources() -> list[SdxlSource]:
    """Cached repos holding a complete SDXL pipeline; partial or other repos are skipped quietly."""
    sources = []
    for repo_id in _cached_repo_ids():
        snapshot = hf_cached_snapshot(repo_id)
        if snapshot is None:
            continue
        try:
            sources.append(_folder_source(snapshot, "hf_cache", repo_id))
        except ModelError as exc:
            log.debug("Hugging Face cache: %s is not a usable SDXL: %s", repo_id, exc)
    return sources


# --- resolving a spec --------------------------------------------------------------------------

def sdxl_dir() -> Path:
    return paths.models_dir() / "sdxl"


def _scan_sdxl_dir() -> tuple[list[SdxlSource], list[ModelEntry]]:
    """Usable models in ``models/sdxl`` and entries saying why the other model files are not."""
    sources: list[SdxlSource] = []
    rejected: list[ModelEntry] = []
    folder = sdxl_dir()
    for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
        is_file = entry.is_file() and entry.suffix.lower() in (".safetensors",) + tuple(PICKLE_SUFFIXES)
        if not is_file and not (entry.is_dir() and (entry / "model_index.json").is_file()):
            continue
        try:
            sources.append(_path_source(entry))
        except ModelError as exc:
            rejected.append(ModelEntry(entry.name, str(entry), "unusable", str(exc)))
    return sources, rejected


def find_sdxl_sources() -> list[SdxlSource]:
    """Every usable SDXL model on disk (not the demo), in the order ``resolve_sdxl(None)`` prefers."""
    return _scan_sdxl_dir()[0] + _hf_sources()


def _demo_source(spec: str) -> SdxlSource:
    from alchemy_engine.demo_models import demo_sdxl_dir

    size = spec.partition(":")[2] or "tiny"
    if size not in ("tiny", "mid"):
        raise ModelError(f"unknown demo model {spec!r}; use 'demo' or 'demo:mid'")
    return SdxlSource("demo", demo_sdxl_dir(size), spec if size != "tiny" else "demo")


def _path_source(path: Path) -> SdxlSource:
    from alchemy_engine.checkpoint_probe import require_sdxl_checkpoint

    if path.is_dir():
        return _folder_source(path, "diffusers", path.name)
    require_sdxl_checkpoint(path)
    return SdxlSource("single_file", path, path.stem)


def resolve_sdxl(spec: str | Path | SdxlSource | None = None) -> SdxlSource:
    """Turn a user's choice into an :class:`SdxlSource`, or raise a ModelError that says why not.

    ``spec``: None (first model found), ``"demo"`` / ``"demo:mid"``, a path to a ``.safetensors``
    file or a diffusers folder, a file or folder name inside ``models/sdxl``, or a Hugging Face
    repo id that is already in the local cache.
    """
    if isinstance(spec, SdxlSource):
        return spec
    if spec is None or str(spec).strip() == "":
        found = find_sdxl_sources()
        if not found:
            raise ModelError("no SDXL model found; " + WHERE_TO_PUT_SDXL.format(folder=sdxl_dir()))
        return found[0]
    text = str(spec).strip()
    if text == "demo" or text.startswith("demo:"):
        return _demo_source(text)
    path = Path(text).expanduser()
    for candidate in (path, sdxl_dir() / text):
        if candidate.exists():
            return _path_source(candidate)
    if text.count("/") == 1 and not text.startswith(("/", ".", "~")):
        snapshot = hf_cached_snapshot(text)
        if snapshot is None:
            raise ModelError(f"{text} is not in the local Hugging Face cache ({hf_cache_dir()}); the "
                             "app never downloads. Download it yourself, or "
                             + WHERE_TO_PUT_SDXL.format(folder=sdxl_dir()))
        return _folder_source(snapshot, "hf_cache", text)
    raise ModelError(f"SDXL model not found: {text}; expected {EXPECTED_SDXL}. "
                     + WHERE_TO_PUT_SDXL.format(folder=sdxl_dir()))


# --- inventory ---------------------------------------------------------------------------------

def _sam_entries(detect_variants: bool) -> list[ModelEntry]:
    entries = [ModelEntry("demo", "demo", "demo", "built-in random weights")]
    folder = paths.models_dir() / "sam"
    for file in sorted(folder.glob("*.pth")) if folder.is_dir() else []:
        kind, note = "sam", ""
        if detect_variants:
            from alchemy_engine.sam_models import read_sam_variant

            try:
                kind = read_sam_variant(file).name
            except ModelError as exc:
                kind, note = "unusable", str(exc)
        entries.append(ModelEntry(file.stem, str(file), kind, note))
    return entries


def _detector_entries() -> list[ModelEntry]:
    from alchemy_engine.detector_models import is_detector_folder

    entries = [ModelEntry("demo", "demo", "demo", "built-in random weights")]
    folder = paths.models_dir() / "detector"
    for sub in sorted(folder.iterdir()) if folder.is_dir() else []:
        if sub.is_dir() and is_detector_folder(sub):
            entries.append(ModelEntry(sub.name, str(sub), "grounding-dino"))
    return entries


def find_models(detect_sam_variants: bool = False) -> ModelInventory:
    """Everything on this computer; the demo models first, unusable model files last (kind
    ``"unusable"``, the note says why).

    SAM variants are read from the tensors only when ``detect_sam_variants`` (it loads each file).
    """
    sdxl = [ModelEntry("demo", "demo", "demo", "built-in random weights"),
            ModelEntry("demo:mid", "demo:mid", "demo", "built-in random weights, benchmark size")]
    local, rejected = _scan_sdxl_dir()
    sdxl += [ModelEntry(s.name, str(s.path), s.kind, s.variant or "") for s in local + _hf_sources()]
    sdxl += rejected
    root = paths.models_dir()
    folders = {"sdxl": str(root / "sdxl"), "sam": str(root / "sam"), "detector": str(root / "detector"),
               "hf_cache": str(hf_cache_dir())}
    return ModelInventory(tuple(sdxl), tuple(_sam_entries(detect_sam_variants)),
                          tuple(_detector_entries()), folders)
