"""What is in a checkpoint file, from its safetensors header only — before any big load.

A ``.safetensors`` file starts with an 8-byte little-endian length and a JSON header that lists
every tensor's name, dtype and shape (and optional ``__metadata__``). Reading that (a few hundred
KB for SDXL) tells an SDXL base checkpoint from an SD 1.5 / SD 2 / refiner / inpainting checkpoint,
a LoRA, a lone VAE, SD3 or Flux, without reading a single weight. Pickle files (``.ckpt``, ``.pt``,
``.bin``) can run code when loaded, so they are never opened: the user is asked for a
``.safetensors`` file instead.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alchemy_engine.errors import ModelError

EXPECTED_SDXL = ("an SDXL base checkpoint as one .safetensors file, such as sd_xl_base_1.0.safetensors "
                 "or an SDXL fine-tune (RealVisXL, Juggernaut XL, ...)")
PICKLE_SUFFIXES = {".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle"}
SDXL_CONTEXT_DIM = 2048
_MAX_HEADER = 100 * 1024 * 1024
MAX_METADATA_VALUE = 1000  # characters kept of one metadata value
_UNET = "model.diffusion_model."
_ATTN2_K = re.compile(r"attn2\.to_k\.weight$")
_LORA_MARKERS = ("lora_down", "lora_up", "lora_A.", "lora_B.", ".lora.", "lora.down", "lora.up",
                 "hada_w1", "lokr_w1", "lora_unet_", "lora_te")


@dataclass(frozen=True)
class CheckpointInfo:
    """The verdict on one file. ``family`` is a short id, ``description`` says it for people."""

    path: Path
    family: str  # sdxl_base, sdxl_refiner, sdxl_inpaint, sdxl_unet_only, playground, sd1, sd2, sd3,
    # flux, lora, ip_adapter, vae, diffusers_unet, text_encoder, sam, pickle, damaged, unknown
    description: str
    size_bytes: int = 0
    tensor_count: int = 0
    context_dim: int | None = None
    has_vae: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    header_sha256: str = ""
    prediction: str = ""  # SDXL checkpoints: what the model predicts and where that was read (prediction.py)

    @property
    def is_sdxl_base(self) -> bool:
        return self.family == "sdxl_base"

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "family": self.family, "description": self.description,
                "size_bytes": self.size_bytes, "tensor_count": self.tensor_count,
                "context_dim": self.context_dim, "has_vae": self.has_vae,
                "is_sdxl_base": self.is_sdxl_base, "prediction": self.prediction}


@dataclass(frozen=True)
class SafetensorsHeader:
    tensors: dict[str, dict[str, Any]]  # name -> {"dtype", "shape", "data_offsets"}
    metadata: dict[str, str]
    raw: bytes
    file_size: int

    def shape(self, key: str) -> list[int] | None:
        entry = self.tensors.get(key)
        return list(entry["shape"]) if entry else None


class HeaderError(ValueError):
    """The file is not a readable safetensors file; the message says why."""


def read_safetensors_header(path: Path) -> SafetensorsHeader:
    """Parse the JSON header of a safetensors file and check the file is long enough for it."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise HeaderError(f"the file is only {size} bytes long")
        (length,) = struct.unpack("<Q", head)
        if length <= 1 or length > min(_MAX_HEADER, size - 8):
            raise HeaderError("it does not start with a safetensors header")
        raw = fh.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HeaderError("its safetensors header is not valid JSON") from exc
    if not isinstance(header, dict):
        raise HeaderError("its safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    tensors = {k: v for k, v in header.items()
               if isinstance(v, dict) and "shape" in v and "data_offsets" in v}
    if len(tensors) != len(header):
        raise HeaderError("its safetensors header has malformed tensor entries")
    data_end = max((int(v["data_offsets"][1]) for v in tensors.values()), default=0)
    if 8 + length + data_end > size:
        raise HeaderError(f"it is truncated: the header needs {8 + length + data_end:,} bytes but "
                          f"the file has {size:,} (an incomplete download?)")
    return SafetensorsHeader(tensors, {str(k): str(v) for k, v in metadata.items()}, raw, size)


def clean_text(value: object, limit: int = MAX_METADATA_VALUE) -> str:
    """Untrusted header metadata as plain text: no control or format characters, at most ``limit`` long."""
    text = "".join(" " if unicodedata.category(c).startswith("C") else c for c in str(value))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _looks_like_pickle(path: Path) -> bool:
    with path.open("rb") as fh:
        magic = fh.read(4)
    return magic.startswith(b"PK\x03\x04") or magic[:1] == b"\x80"


def probe_checkpoint(path: str | Path) -> CheckpointInfo:
    """Classify ``path`` by its header. Never raises for a wrong kind of file, only when missing."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"checkpoint not found: {path}")
    size = path.stat().st_size
    pickle_info = CheckpointInfo(path, "pickle", "a PyTorch pickle checkpoint (.ckpt/.pt/.bin), which "
                                 "can run code when opened", size_bytes=size)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return pickle_info
    try:
        header = read_safetensors_header(path)
    except HeaderError as exc:
        if _looks_like_pickle(path):  # only after the header failed: a length byte can be 0x80
            return pickle_info
        return CheckpointInfo(path, "damaged", f"not a readable .safetensors file: {exc}", size_bytes=size)
    family, description = classify(header)
    said = ""
    if family.startswith("sdxl"):
        from alchemy_engine.models.noise_schedule import NoiseSchedule, from_header

        said = (from_header(header.tensors, header.metadata) or NoiseSchedule()).describe()
    return CheckpointInfo(
        path, family, description, size_bytes=size, tensor_count=len(header.tensors),
        context_dim=_context_dim(header), has_vae=_has_vae(header), metadata=header.metadata,
        header_sha256=hashlib.sha256(header.raw).hexdigest(), prediction=said,
    )


def _context_dim(header: SafetensorsHeader) -> int | None:
    for key, entry in header.tensors.items():
        if key.startswith(_UNET) and _ATTN2_K.search(key):
            return int(entry["shape"][1])
    return None


def _has_vae(header: SafetensorsHeader) -> bool:
    return any(k.startswith(("first_stage_model.decoder.", "vae.decoder.")) for k in header.tensors)


def _any_prefix(keys: list[str], *prefixes: str) -> bool:
    return any(k.startswith(prefixes) for k in keys)


def classify(header: SafetensorsHeader) -> tuple[str, str]:
    """``(family, description)`` from tensor names and shapes; order matters (most specific first)."""
    keys = list(header.tensors)
    if not keys:
        return "unknown", "an empty safetensors file (no tensors)"
    if any(k.startswith(("image_proj.", "ip_adapter.")) for k in keys):  # before LoRA: FaceID has *_lora* keys
        return "ip_adapter", ("an IP-Adapter (reference guidance for insertion, not a base model); use it "
                              "with insert --ip-adapter FILE")
    if any(marker in k for k in keys for marker in _LORA_MARKERS):
        return "lora", _describe_lora(keys, header.metadata)
    if any(".double_blocks." in f".{k}" for k in keys):
        return "flux", "a FLUX model, a different architecture from SDXL"
    if any(".joint_blocks." in f".{k}" for k in keys):
        return "sd3", "a Stable Diffusion 3 model, a different architecture from SDXL"
    if _any_prefix(keys, _UNET):
        return _classify_ldm(header, keys)
    if _any_prefix(keys, "image_encoder.patch_embed."):
        return "sam", "a Segment Anything model (it belongs in models/sam)"
    if _any_prefix(keys, "encoder.down.", "decoder.up.", "encoder.down_blocks.", "decoder.up_blocks."):
        return "vae", "a VAE on its own (only the image encoder/decoder, no UNet or text encoders)"
    if _any_prefix(keys, "down_blocks.", "conv_in.") and any("time_embedding" in k for k in keys):
        kind = "an SDXL" if "add_embedding.linear_1.weight" in header.tensors else "a"
        return "diffusers_unet", (f"{kind} UNet weight file from a diffusers folder; point the app at "
                                  "the whole folder (the one with model_index.json) instead")
    if _any_prefix(keys, "text_model.", "encoder.layers.", "transformer.resblocks.", "model.transformer."):
        return "text_encoder", "a text encoder on its own"
    return "unknown", (f"not a Stable Diffusion model ({len(keys)} tensors, e.g. '{sorted(keys)[0]}')")


def _describe_lora(keys: list[str], metadata: dict[str, str]) -> str:
    style = "kohya" if any(k.startswith(("lora_unet_", "lora_te")) for k in keys) else "PEFT/diffusers"
    base = clean_text(metadata.get("ss_base_model_version") or metadata.get("modelspec.architecture") or "", 80)
    on = f", trained for {base}" if base else ""
    return (f"a LoRA ({style} format{on}): an add-on for a base model, not a base model itself; "
            "choose an SDXL base checkpoint here, and use LoRAs with insert --lora FILE or --style-lora FILE")


def _classify_ldm(header: SafetensorsHeader, keys: list[str]) -> tuple[str, str]:
    context = _context_dim(header)
    conv_in = header.shape(_UNET + "input_blocks.0.0.weight") or [0, 4]
    has_clip_l = _any_prefix(keys, "conditioner.embedders.0.transformer.")
    has_bigg = _any_prefix(keys, "conditioner.embedders.1.model.")
    if "edm_mean" in header.tensors or "edm_vae.latents_mean" in header.tensors:
        return "playground", "a Playground v2.5 checkpoint (SDXL-shaped but a different noise schedule)"
    if _any_prefix(keys, "conditioner.embedders.0.model.") and not has_clip_l:
        return "sdxl_refiner", ("the SDXL refiner, which only polishes finished images; "
                                "it cannot generate from text on its own")
    if has_clip_l and has_bigg:
        if conv_in[1] == 9:
            return "sdxl_inpaint", ("an SDXL inpainting checkpoint (a 9-channel UNet): use it for insertion "
                                    "(insert --inpaint-model FILE, or Insertion model in the Insert tab); "
                                    "training and scenes need an SDXL base model")
        if conv_in[1] != 4:
            return "unknown", f"an SDXL-like checkpoint with a {conv_in[1]}-channel UNet (an edit or depth model?)"
        if _UNET + "label_emb.0.0.weight" not in header.tensors:
            return "unknown", "an SDXL-like checkpoint without the SDXL size/crop conditioning"
        return "sdxl_base", _describe_sdxl(context)
    if _any_prefix(keys, "cond_stage_model.transformer.") or context == 768:
        return "sd1", "a Stable Diffusion 1.x checkpoint (SD 1.5 family, 512 px)"
    if _any_prefix(keys, "cond_stage_model.model.") or context == 1024:
        return "sd2", "a Stable Diffusion 2.x checkpoint (768 px)"
    if context == 1280:
        return "sdxl_refiner", "an SDXL refiner UNet"
    if context == SDXL_CONTEXT_DIM and conv_in[1] == 9:
        return "sdxl_inpaint", ("an SDXL inpainting UNet (9 input channels) without text encoders: use it for "
                                "insertion (insert --inpaint-model FILE); training needs an SDXL base model")
    if context == SDXL_CONTEXT_DIM:
        return "sdxl_unet_only", ("an SDXL UNet without its text encoders; "
                                  "use the full checkpoint that also contains them")
    return "unknown", f"a latent diffusion checkpoint of an unknown kind (cross-attention width {context})"


def _describe_sdxl(context: int | None) -> str:
    if context == SDXL_CONTEXT_DIM:
        return "an SDXL base checkpoint"
    return f"an SDXL-layout checkpoint of reduced size (cross-attention width {context}, e.g. a test model)"


def require_sdxl_checkpoint(path: str | Path) -> CheckpointInfo:
    """The probe's verdict, or a ModelError saying what the file is and what is expected."""
    info = probe_checkpoint(path)
    name = info.path.name
    if info.family == "pickle":
        raise ModelError(
            f"{name} is {info.description}; the app never opens pickle files. Use the .safetensors "
            "version of this model (most model pages offer one), or convert it to .safetensors "
            "with a tool you trust.")
    if info.family == "damaged":
        raise ModelError(f"{name} is {info.description}. Download it again; expected {EXPECTED_SDXL}.")
    if not info.is_sdxl_base:
        raise ModelError(f"{name} is {info.description}, not an SDXL base model; expected {EXPECTED_SDXL}.")
    if not info.has_vae:
        raise ModelError(f"{name} is an SDXL checkpoint without VAE weights (first_stage_model.*); "
                         f"expected {EXPECTED_SDXL} with its VAE baked in.")
    return info


def file_fingerprint(path: Path) -> str:
    """A cheap stable id: sha256 of the safetensors header and the file size (no weights read)."""
    header = read_safetensors_header(path)
    digest = hashlib.sha256(header.raw)
    digest.update(str(header.file_size).encode())
    return digest.hexdigest()[:16]
