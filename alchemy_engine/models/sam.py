"""Segment Anything: a registry of variants, built here so checkpoints load with weights_only=True.

segment-anything's own ``build_sam`` unpickles the checkpoint with a plain ``torch.load``; we build
the same ``Sam`` modules ourselves and load the tensors safely. The variant is recognised from the
tensors (patch-embedding width and block count), never from the file name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from alchemy_engine.errors import ModelError


@dataclass(frozen=True)
class SamVariant:
    name: str
    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]
    image_size: int = 1024
    prompt_embed_dim: int = 256
    decoder_mlp_dim: int = 2048
    decoder_heads: int = 8


SAM_VARIANTS: dict[str, SamVariant] = {
    "vit_h": SamVariant("vit_h", 1280, 32, 16, (7, 15, 23, 31)),
    "vit_l": SamVariant("vit_l", 1024, 24, 16, (5, 11, 17, 23)),
    "vit_b": SamVariant("vit_b", 768, 12, 12, (2, 5, 8, 11)),
    # Tests and the demo: same modules, tiny widths and a 256 px input (16x16 embedding).
    "demo": SamVariant("demo", 32, 2, 2, (1,), image_size=256, prompt_embed_dim=32,
                       decoder_mlp_dim=64, decoder_heads=2),
}

_PATCH_KEY = "image_encoder.patch_embed.proj.weight"
_BLOCK_KEY = re.compile(r"^image_encoder\.blocks\.(\d+)\.")


def build_sam(variant: str | SamVariant) -> Any:
    """A ``segment_anything.modeling.Sam`` with random weights, in eval mode."""
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    v = SAM_VARIANTS[variant] if isinstance(variant, str) else variant
    patch = 16
    grid = v.image_size // patch
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=v.depth, embed_dim=v.embed_dim, img_size=v.image_size, mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=v.num_heads,
            patch_size=patch, qkv_bias=True, use_rel_pos=True,
            global_attn_indexes=v.global_attn_indexes, window_size=14, out_chans=v.prompt_embed_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=v.prompt_embed_dim, image_embedding_size=(grid, grid),
            input_image_size=(v.image_size, v.image_size), mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=v.prompt_embed_dim,
                                          mlp_dim=v.decoder_mlp_dim, num_heads=v.decoder_heads),
            transformer_dim=v.prompt_embed_dim, iou_head_depth=3,
            iou_head_hidden_dim=v.prompt_embed_dim,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()


def detect_sam_variant(state_dict: Mapping[str, Any]) -> SamVariant:
    """Recognise the variant from tensor shapes; raise ModelError for anything that is not SAM."""
    weight = state_dict.get(_PATCH_KEY)
    if weight is None or not hasattr(weight, "shape"):
        raise ModelError(
            "this file is not a Segment Anything checkpoint (no image encoder found); "
            "use Meta's sam_vit_h_4b8939.pth, sam_vit_l_0b3195.pth or sam_vit_b_01ec64.pth"
        )
    embed_dim = int(weight.shape[0])
    depth = 1 + max((int(m.group(1)) for k in state_dict if (m := _BLOCK_KEY.match(k))), default=-1)
    for variant in SAM_VARIANTS.values():
        if variant.embed_dim == embed_dim and variant.depth == depth:
            return variant
    raise ModelError(
        f"unrecognised SAM image encoder (width {embed_dim}, {depth} blocks); "
        "expected vit_h, vit_l or vit_b from Meta's segment-anything release"
    )


def _read_state_dict(path: Path) -> Mapping[str, Any]:
    """The tensors of a SAM ``.pth``, read with ``weights_only=True`` (no code is ever run)."""
    import pickle

    import torch

    if not path.is_file():
        raise ModelError(f"SAM checkpoint not found: {path}")
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise ModelError(
            f"{path.name} cannot be read as a plain-tensor SAM checkpoint ({exc.__class__.__name__}); "
            "it may be damaged or contain code. Download Meta's original .pth file again."
        ) from exc
    if not isinstance(state_dict, Mapping):
        raise ModelError(f"{path.name} does not hold a state dict of tensors; expected a SAM .pth file")
    return state_dict


def read_sam_variant(checkpoint: str | Path) -> SamVariant:
    """The variant of a SAM ``.pth`` from its tensor shapes, without building the model."""
    return detect_sam_variant(_read_state_dict(Path(checkpoint)))


def load_sam(checkpoint: str | Path, device: Any = "cpu") -> tuple[Any, SamVariant]:
    """Load a Meta SAM ``.pth`` safely (resolve ``demo`` with the inventory first); returns the
    model and its variant."""
    from alchemy_engine.models.resident import building_models

    state_dict = _read_state_dict(Path(checkpoint))
    variant = detect_sam_variant(state_dict)
    with building_models():
        sam = build_sam(variant)
        sam.load_state_dict(state_dict)
    return sam.to(device), variant
