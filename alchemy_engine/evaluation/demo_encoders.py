"""Random-weight versions of the evaluation models, built offline and cached like the demo SDXL.

Same transformers classes as the real ones (``ViTModel``, ``CLIPModel``, ``Dinov2Model``), saved with
``save_pretrained`` together with the real models' ``preprocessor_config.json`` (and, for CLIP, the
CLIP BPE tokenizer bundled in ``resources/``), so every code path — resolving, loading,
preprocessing, embedding, caching — runs as with the real weights. The scores mean nothing.

* ``tiny``: tests (a few hundred thousand parameters each, milliseconds per image);
* ``mid``: CPU benchmarks; the DINO model has the real ViT-S/16 shape of dino-vits16.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from alchemy_engine import paths
from alchemy_engine.evaluation.encoder_registry import EVAL_MODELS
from alchemy_engine.models.demo.demo_cache import build_once, demo_cache_dir

DEMO_EVAL_VERSION = 1
SIZES = ("tiny", "mid")

_VIT = {"tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
        "mid": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536)}
_CLIP_VISION = {"tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
                "mid": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=6, intermediate_size=1536)}
_CLIP_TEXT = {"tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
              "mid": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024)}
_PROJECTION = {"tiny": 32, "mid": 256}
_PATCH = {"clip-vit-large-patch14": 14, "clip-vit-base-patch32": 32}


def demo_eval_dir(name: str, size: str = "tiny") -> Path:
    """A model folder for evaluation model ``name`` with random weights (built on first use)."""
    if size not in SIZES:
        raise ValueError(f"unknown demo size {size!r}; choose one of {', '.join(SIZES)}")
    if name not in EVAL_MODELS:
        raise ValueError(f"unknown evaluation model {name!r}")
    target = demo_cache_dir() / f"eval-v{DEMO_EVAL_VERSION}" / f"{name}-{size}"
    return build_once(target, lambda folder: _write(folder, name, size))


def _write(folder: Path, name: str, size: str) -> None:
    import torch
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    torch.manual_seed(0)
    family = EVAL_MODELS[name].family
    model = _build_vit(size) if family == "vit" else _build_dinov2(size) if family == "dinov2" else _build_clip(name, size)
    model.save_pretrained(str(folder))
    config = paths.resources_dir() / "eval" / f"{name}.preprocessor_config.json"
    shutil.copyfile(config, folder / "preprocessor_config.json")
    if family == "clip":
        tokenizer = paths.sdxl_config_dir() / "tokenizer"
        for file in ("vocab.json", "merges.txt", "tokenizer_config.json"):
            shutil.copyfile(tokenizer / file, folder / file)


def _build_vit(size: str):
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(image_size=224, patch_size=16, qkv_bias=True, **_VIT[size])
    return ViTModel(config, add_pooling_layer=False)


def _build_dinov2(size: str):
    from transformers import Dinov2Config, Dinov2Model

    spec = dict(_VIT[size])
    spec.pop("intermediate_size")
    return Dinov2Model(Dinov2Config(image_size=224, patch_size=14, mlp_ratio=4, **spec))


def _build_clip(name: str, size: str):
    from transformers import CLIPConfig, CLIPModel

    vision = dict(image_size=224, patch_size=_PATCH[name], **_CLIP_VISION[size])
    text = dict(vocab_size=49408, max_position_embeddings=77, **_CLIP_TEXT[size])
    return CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=_PROJECTION[size]))

