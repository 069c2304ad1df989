"""What a model is: an SDXL source (where one SDXL lives), an inventory entry, the inventory; and
what makes a diffusers folder a loadable SDXL. Reads configs and file names only, never weights."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alchemy_engine.errors import ModelError
from alchemy_engine.models.probe import HeaderError, file_fingerprint, read_safetensors_header

SDXL_REPO_ID = "stabilityai/stable-diffusion-xl-base-1.0"
SDXL_KINDS = ("demo", "diffusers", "single_file", "hf_cache")
SDXL_COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")
_WEIGHT_STEMS = ("diffusion_pytorch_model", "model")
_SAFETENSORS_DTYPES = {"F16": "fp16", "BF16": "bf16", "F32": "fp32"}
_LDM_UNET = "model.diffusion_model."

@dataclass(frozen=True)
class SdxlSource:
    """Where one SDXL model lives. ``variant`` is diffusers' weight variant (e.g. ``"fp16"``);
    ``config_dir``: the configs a single file is read with (None: the bundled SDXL ones; a reduced-size
    demo file names its own)."""

    kind: str  # one of SDXL_KINDS
    path: Path
    name: str
    variant: str | None = None
    config_dir: Path | None = None

    def fingerprint(self) -> str:
        """A cheap, stable id of the base model (for LoRA metadata and caches); reads no weights."""
        if self.kind == "single_file":
            try:
                return file_fingerprint(self.path)
            except HeaderError as exc:
                raise ModelError(f"{self.path.name} is not a readable .safetensors file: {exc}") from exc
        return sdxl_folder_fingerprint(self.path)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "kind": self.kind, "variant": self.variant}


@dataclass(frozen=True)
class ModelEntry:
    """One line of the inventory: ``kind`` is the source kind (SDXL) or the variant (SAM)."""

    name: str
    path: str
    kind: str
    note: str = ""
    location: str = ""  # the model folder it was found in (pickers group by it); "" for the app's own


@dataclass(frozen=True)
class ModelInventory:
    sdxl: tuple[ModelEntry, ...] = ()
    sam: tuple[ModelEntry, ...] = ()
    detector: tuple[ModelEntry, ...] = ()
    folders: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"sdxl": [_entry_dict(e) for e in self.sdxl], "sam": [_entry_dict(e) for e in self.sam],
                "detector": [_entry_dict(e) for e in self.detector], "folders": dict(self.folders)}


def _entry_dict(entry: ModelEntry) -> dict[str, str]:
    """``location`` only where a model folder holds the entry, so other entries read as before."""
    return {k: v for k, v in asdict(entry).items() if k != "location" or v}


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
    for component in SDXL_COMPONENTS:
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
    for component in SDXL_COMPONENTS:
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


def sdxl_folder_fingerprint(folder: Path) -> str:
    """sha256 of the UNet config and the names and sizes of the weight files."""
    digest = hashlib.sha256((folder / "unet" / "config.json").read_bytes())
    for component in SDXL_COMPONENTS:
        found = _component_weights(folder, component)
        for file in (found[0] if found else []):
            digest.update(f"{component}/{file.name}:{file.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def weight_files(source: SdxlSource) -> list[Path]:
    """The ``.safetensors`` files that hold the source's weights, every component's."""
    if source.kind == "single_file":
        return [Path(source.path)]
    return [f for component in SDXL_COMPONENTS
            for f in (_component_weights(Path(source.path), component) or ([], None))[0]
            if f.suffix == ".safetensors"]


def weight_values(source: SdxlSource) -> int | None:
    """How many values the source's weights hold (all its components), from the safetensors headers
    only; None when a header cannot be read."""
    total = 0
    for file in weight_files(source):
        try:
            header = read_safetensors_header(file)
        except (HeaderError, OSError):  # the loader reports an unreadable file; here it means "unknown"
            return None
        total += sum(math.prod(entry["shape"]) for entry in header.tensors.values())
    return total


def stored_unet_dtype(source: SdxlSource) -> tuple[str | None, str]:
    """("fp16" | "bf16" | "fp32" | None, why): the precision the source's UNet layer weights (its
    tensors of two or more dimensions) are stored in, from the safetensors headers only; None when
    they mix precisions or the headers cannot be read (``why`` says which)."""
    if source.kind == "single_file":
        files, prefix = [Path(source.path)], _LDM_UNET
    else:
        found = _component_weights(Path(source.path), "unet")
        files, prefix = ([f for f in found[0] if f.suffix == ".safetensors"] if found else []), ""
    dtypes: set[str] = set()
    for file in files:
        try:
            header = read_safetensors_header(file)
        except (HeaderError, OSError) as exc:  # the loader reports an unreadable file; here it means "unknown"
            return None, f"its UNet weights' precision cannot be read ({exc})"
        dtypes |= {entry["dtype"] for key, entry in header.tensors.items()
                   if key.startswith(prefix) and len(entry["shape"]) >= 2}
    if len(dtypes) != 1 or next(iter(dtypes)) not in _SAFETENSORS_DTYPES:
        return None, f"its UNet weights are stored as {', '.join(sorted(dtypes)) or 'nothing readable'}"
    name = _SAFETENSORS_DTYPES[dtypes.pop()]
    return name, f"its UNet weights are stored in {name}"
