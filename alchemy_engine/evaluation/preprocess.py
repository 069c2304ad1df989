"""Image preprocessing for the evaluation encoders, defined by a ``preprocessor_config.json``.

The steps and the arithmetic are those of transformers' torchvision image processors
(``CLIPImageProcessor``, ``BitImageProcessor``, ``ViTImageProcessor``): uint8 RGB → resize
(antialiased, the config's resample filter; ``shortest_edge`` keeps the aspect ratio) → centre
crop → float32, rescale and normalise fused as ``(x - mean·255) / (std·255)``. The tests build the
real processors from the real config files and check the outputs are equal, so a score computed
here is the score the model's own processor would give.

Legacy keys are read the way transformers reads them: an integer ``size`` means the shortest edge
for CLIP and BiT processors and a square for ViT; an integer ``crop_size`` a square.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from alchemy_engine import paths
from alchemy_engine.errors import ModelError

# Class defaults of the processors we accept (transformers 5: image_processing_{clip,bit,vit}.py).
_CLIP_MEAN, _CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
_DEFAULTS: dict[str, dict[str, Any]] = {
    "CLIPImageProcessor": dict(square=False, resample=3, size=224, crop=224, do_center_crop=True,
                               mean=_CLIP_MEAN, std=_CLIP_STD),
    "BitImageProcessor": dict(square=False, resample=3, size=224, crop=224, do_center_crop=True,
                              mean=_CLIP_MEAN, std=_CLIP_STD),
    "ViTImageProcessor": dict(square=True, resample=2, size=224, crop=None, do_center_crop=False,
                              mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
}
PIL_TO_NAME = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}


def resource_config(name: str) -> dict[str, Any]:
    """A bundled config from ``resources/eval/<name>.preprocessor_config.json``."""
    path = paths.resources_dir() / "eval" / f"{name}.preprocessor_config.json"
    return json.loads(path.read_text(encoding="utf-8"))


def processor_type(config: dict[str, Any]) -> str:
    kind = config.get("image_processor_type") or config.get("feature_extractor_type") or ""
    kind = kind.replace("FeatureExtractor", "ImageProcessor").removesuffix("Fast")
    if kind not in _DEFAULTS:
        raise ModelError(f"unsupported image processor {kind or '(none)'} in preprocessor_config.json; "
                         f"expected one of {', '.join(sorted(_DEFAULTS))}")
    return kind


@dataclass(frozen=True)
class ProcessorSpec:
    """What one preprocessor config asks for. ``size`` is ``("shortest_edge", n)`` or
    ``("exact", (h, w))``; ``crop`` is ``(h, w)`` or None."""

    kind: str
    size: tuple[str, Any]
    resample: int
    crop: tuple[int, int] | None
    do_resize: bool
    do_rescale: bool
    rescale_factor: float
    do_normalize: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ProcessorSpec:
        kind = processor_type(config)
        d = _DEFAULTS[kind]
        size = config.get("size", d["size"])
        if isinstance(size, int):
            size = {"height": size, "width": size} if d["square"] else {"shortest_edge": size}
        if "shortest_edge" in size:
            size_spec: tuple[str, Any] = ("shortest_edge", int(size["shortest_edge"]))
        elif "height" in size and "width" in size:
            size_spec = ("exact", (int(size["height"]), int(size["width"])))
        else:
            raise ModelError(f"unsupported 'size' {size!r} in preprocessor_config.json")
        do_crop = bool(config.get("do_center_crop", d["do_center_crop"]))
        crop = config.get("crop_size", d["crop"])
        if isinstance(crop, int):
            crop = {"height": crop, "width": crop}
        return cls(kind=kind, size=size_spec, resample=int(config.get("resample", d["resample"])),
                   crop=(int(crop["height"]), int(crop["width"])) if do_crop and crop else None,
                   do_resize=bool(config.get("do_resize", True)),
                   do_rescale=bool(config.get("do_rescale", True)),
                   rescale_factor=float(config.get("rescale_factor", 1 / 255)),
                   do_normalize=bool(config.get("do_normalize", True)),
                   mean=tuple(config.get("image_mean", d["mean"])), std=tuple(config.get("image_std", d["std"])))

    def describe(self) -> str:
        size = (f"shortest edge {self.size[1]}" if self.size[0] == "shortest_edge"
                else f"{self.size[1][1]}x{self.size[1][0]}")
        crop = f", centre crop {self.crop[1]}x{self.crop[0]}" if self.crop else ""
        return f"resize {size} ({PIL_TO_NAME.get(self.resample, self.resample)}){crop}"


def _output_size(height: int, width: int, spec: ProcessorSpec) -> tuple[int, int]:
    """transformers' ``get_resize_output_image_size`` (shortest edge) or the exact size."""
    if spec.size[0] == "exact":
        return spec.size[1]
    target = spec.size[1]
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = target, int(target * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def _interpolation(resample: int):
    from torchvision.transforms import InterpolationMode

    modes = {0: InterpolationMode.NEAREST_EXACT, 1: InterpolationMode.LANCZOS,
             2: InterpolationMode.BILINEAR, 3: InterpolationMode.BICUBIC}
    if resample not in modes:
        raise ModelError(f"unsupported resample filter {resample} in preprocessor_config.json")
    return modes[resample]


def _centre_crop(tensor, crop: tuple[int, int]):
    import torchvision.transforms.v2.functional as tvF

    height, width = tensor.shape[-2:]
    ch, cw = crop
    if ch > height or cw > width:  # pad like transformers, then crop
        pad = [(cw - width) // 2 if cw > width else 0, (ch - height) // 2 if ch > height else 0,
               (cw - width + 1) // 2 if cw > width else 0, (ch - height + 1) // 2 if ch > height else 0]
        tensor = tvF.pad(tensor, pad, fill=0)
        height, width = tensor.shape[-2:]
    top, left = int((height - ch) / 2.0), int((width - cw) / 2.0)
    return tensor[..., top:top + ch, left:left + cw]


def preprocess(images: Sequence[Image.Image], spec: ProcessorSpec):
    """``pixel_values`` as the processor makes them: float32 ``[N, 3, H, W]`` on the CPU."""
    import torch
    import torchvision.transforms.v2.functional as tvF

    if not images:
        raise ValueError("preprocess needs at least one image")
    out = []
    for image in images:
        array = np.asarray(image.convert("RGB"))
        tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()  # uint8 [3, H, W]
        if spec.do_resize:
            size = _output_size(tensor.shape[1], tensor.shape[2], spec)
            tensor = tvF.resize(tensor, list(size), interpolation=_interpolation(spec.resample), antialias=True)
        if spec.crop is not None:
            tensor = _centre_crop(tensor, spec.crop)
        out.append(tensor)
    if len({t.shape for t in out}) != 1:
        raise ValueError("images of different sizes after preprocessing; the config has no centre crop")
    batch = torch.stack(out)
    if spec.do_normalize:
        scale = spec.rescale_factor if spec.do_rescale else 1.0
        mean = torch.tensor(spec.mean) * (1.0 / scale)
        std = torch.tensor(spec.std) * (1.0 / scale)
        return tvF.normalize(batch.to(torch.float32), mean.tolist(), std.tolist())
    batch = batch.to(torch.float32)
    return batch * spec.rescale_factor if spec.do_rescale else batch
