"""The CLIP vision encoder an IP-Adapter reads: found, matched to the adapter, loaded from safetensors only.

Two shapes on disk: a folder (``config.json`` + ``model.safetensors``, as h94 ships ``image_encoder/``)
or a single file (Krita's ``clip-vision_vit-h.safetensors`` is h94's ``model.safetensors`` renamed),
whose header is matched against the ViT-H and ViT-bigG configs bundled in
``resources/configs/clip-vision/``. h94's folders carry no preprocessor config, so the image
processor is built here (CLIP's mean/std, shortest side and centre crop at the encoder's size).
A ``pytorch_model.bin`` is never opened.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alchemy_engine import paths
from alchemy_engine.errors import ModelError
from alchemy_engine.models.probe import HeaderError, file_fingerprint, read_safetensors_header

BUNDLED = ("vit-h", "vit-bigg")
_EMBED = "vision_model.embeddings.class_embedding"
_PROJECTION = "visual_projection.weight"
_LAYER = "vision_model.encoder.layers."
ENCODER_NAMES = ("image_encoder", "clip_vision")


@dataclass(frozen=True)
class EncoderSource:
    """Where an encoder is and its shape; ``config`` is a ``CLIPVisionConfig`` as a dict."""

    path: Path  # the folder, or the single file
    weights: Path
    config: dict[str, Any]
    name: str

    @property
    def hidden_width(self) -> int:
        return int(self.config["hidden_size"])

    @property
    def projection_width(self) -> int:
        return int(self.config["projection_dim"])

    def fingerprint(self) -> str:
        return file_fingerprint(self.weights)


def bundled_config(name: str) -> dict[str, Any]:
    return json.loads((paths.resources_dir() / "configs" / "clip-vision" / f"{name}.json").read_text())


def encoder_source(path: str | Path) -> EncoderSource:
    """An encoder folder or single file, checked by its config or header (no weights read)."""
    path = Path(path).expanduser()
    if path.is_dir():
        return _folder(path)
    if path.suffix.lower() != ".safetensors":
        raise ModelError(f"{path.name} is not a CLIP vision encoder the app opens: use a folder with config.json "
                         "and model.safetensors, or a single .safetensors file (pickle files are never opened)")
    if not path.is_file():
        raise ModelError(f"CLIP vision encoder not found: {path}")
    return _single_file(path)


def _folder(folder: Path) -> EncoderSource:
    weights, config = folder / "model.safetensors", folder / "config.json"
    if not weights.is_file() or not config.is_file():
        has_bin = (folder / "pytorch_model.bin").is_file()
        raise ModelError(f"{folder} is not a CLIP vision encoder folder: it needs config.json and model.safetensors"
                         + (" (its pytorch_model.bin is a pickle file the app never opens)" if has_bin else ""))
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{config} is not readable JSON ({exc}); download the encoder again") from exc
    vision = data.get("vision_config", data) if isinstance(data, dict) else None
    if not isinstance(vision, dict) or "hidden_size" not in vision or "projection_dim" not in data | vision:
        raise ModelError(f"{config} does not describe a CLIP vision model with a projection")
    vision = {**vision, "projection_dim": vision.get("projection_dim", data.get("projection_dim"))}
    return EncoderSource(folder, weights, vision, folder.name)


def _single_file(path: Path) -> EncoderSource:
    try:
        header = read_safetensors_header(path)
    except HeaderError as exc:
        raise ModelError(f"{path.name} is not a readable .safetensors file: {exc}") from exc
    embed, projection = header.shape(_EMBED), header.shape(_PROJECTION)
    if embed is None or projection is None:
        raise ModelError(f"{path.name} is not a CLIP vision encoder in the transformers layout (no {_EMBED} / "
                         f"{_PROJECTION}); use h94's image_encoder/model.safetensors")
    layers = len({k[len(_LAYER):].split(".")[0] for k in header.tensors if k.startswith(_LAYER)})
    shape = (embed[0], layers, projection[0])
    for name in BUNDLED:
        config = bundled_config(name)
        if (config["hidden_size"], config["num_hidden_layers"], config["projection_dim"]) == shape:
            return EncoderSource(path, path, config, name)
    raise ModelError(f"{path.name} is a CLIP vision encoder of width {shape[0]} with {shape[1]} layers and a "
                     f"{shape[2]}-wide projection: neither ViT-H nor ViT-bigG. Put it in a folder with its "
                     "config.json instead")


def candidates(adapter: Path) -> list[Path]:
    """Where an adapter's encoder may be: h94's layout beside it, then ``models/clip_vision``."""
    adapter = Path(adapter)
    near = [adapter.parent / n for n in ENCODER_NAMES]
    near += [adapter.parent.parent / sub / "image_encoder" for sub in ("models", "sdxl_models")]
    shared = paths.models_dir() / "clip_vision"
    found = sorted(shared.iterdir()) if shared.is_dir() else []
    return [p for p in near if p.is_dir()] + [p for p in found if p.is_dir() or p.suffix == ".safetensors"]


def matching_encoder(explicit: str | Path | None, adapter: Path, reads: str, width: int) -> EncoderSource:
    """The encoder for an adapter reading ``width`` from its ``reads`` output (projection / hidden)."""
    def fits(source: EncoderSource) -> bool:
        return (source.projection_width if reads == "projection" else source.hidden_width) == width

    if explicit is not None:
        source = encoder_source(explicit)
        if not fits(source):
            raise ModelError(f"the CLIP vision encoder {source.path.name} gives {reads} width "
                             f"{source.projection_width if reads == 'projection' else source.hidden_width}, "
                             f"but {Path(adapter).name} reads {width}; choose the encoder it was trained with")
        return source
    tried = []
    for path in candidates(adapter):
        try:
            source = encoder_source(path)
        except ModelError as exc:
            tried.append(str(exc))
            continue
        if fits(source):
            return source
        tried.append(f"{path}: {reads} width does not match")
    folder = paths.models_dir() / "clip_vision"
    raise ModelError(f"no CLIP vision encoder found for {Path(adapter).name} (it reads {reads} width {width}); put "
                     f"h94's image_encoder folder or a clip-vision .safetensors file into {folder}, or name it "
                     f"with --ip-encoder" + (f" (looked at: {'; '.join(tried)})" if tried else ""))


def load_encoder(source: EncoderSource, device: Any, dtype: Any) -> Any:
    """``CLIPVisionModelWithProjection`` in eval mode on ``device``; safetensors only."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    if source.path.is_dir():
        model = CLIPVisionModelWithProjection.from_pretrained(
            source.path, local_files_only=True, use_safetensors=True, torch_dtype=dtype)
    else:
        from safetensors.torch import load_file

        config = CLIPVisionConfig(**{k: v for k, v in source.config.items() if k != "model_type"})
        with torch.device("meta"):
            model = CLIPVisionModelWithProjection(config)
        state = load_file(str(source.weights), device="cpu")
        state.pop("vision_model.embeddings.position_ids", None)
        model.load_state_dict(state, strict=True, assign=True)
        embeddings = model.vision_model.embeddings  # its position ids are a buffer no file holds
        embeddings.register_buffer("position_ids", torch.arange(embeddings.num_positions).expand((1, -1)),
                                   persistent=False)
        model = model.to(dtype=dtype)
    return model.to(device).eval()


def image_processor(source: EncoderSource) -> Any:
    """CLIP's preprocessing at the encoder's input size (h94 ships no preprocessor config)."""
    from transformers import CLIPImageProcessor

    size = int(source.config.get("image_size", 224))
    return CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
