"""Helpers for insertion tests: a peft-built demo LoRA, noise scenes and box masks.

The LoRA has random, non-zero B weights (so it changes the output) and is saved in the diffusers
layout ``StableDiffusionXLPipeline.save_lora_weights`` writes: a test fixture, not the trainer.
(Kept out of conftest.py: two conftest modules cannot both be imported by name.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

TINY_WORK = 128 * 128


def make_demo_lora(target: Path, size: str = "tiny", rank: int = 4, seed: int = 0) -> Path:
    import torch
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from alchemy_engine.models.demo import demo_sdxl_dir

    unet = UNet2DConditionModel.from_pretrained(demo_sdxl_dir(size) / "unet")
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    target.parent.mkdir(parents=True, exist_ok=True)
    StableDiffusionXLPipeline.save_lora_weights(save_directory=str(target.parent), weight_name=target.name,
                                                unet_lora_layers=layers)
    return target


def noisy_scene(path: Path, size=(160, 96), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(array, "RGB").save(path)
    return path


def write_mask(path: Path, size, box) -> Path:
    array = np.zeros((size[1], size[0]), dtype=np.uint8)
    x0, y0, x1, y1 = box
    array[y0:y1, x0:x1] = 255
    Image.fromarray(array, "L").save(path)
    return path


def read_rgb(path: Path) -> np.ndarray:
    """An image file's pixels as an (h, w, 3) uint8 array (the file closed again)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))
