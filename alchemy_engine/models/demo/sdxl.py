"""The built-in SDXL-shaped model with random weights (the real diffusers pipeline classes).

Sizes of the SDXL-shaped model:
* ``tiny``: for tests and the demo (about 3 M parameters, 64–128 px images);
* ``mid``: the SDXL block layout at reduced width, for CPU benchmarks;
* ``full``: the real SDXL base 1.0 architecture from ``resources/``, for GPU benchmarks
  (never cached: 2.6 B random parameters are cheaper to build than to store).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alchemy_engine import paths
from alchemy_engine.models.demo.demo_cache import build_once, demo_cache_dir

SDXL_SIZES = ("tiny", "mid", "full")

# VAE with four levels like SDXL's, so images are 8x the latent size as in the real model.
_TINY_VAE = dict(block_out_channels=[8, 16, 16, 16], norm_num_groups=8, layers_per_block=1)
_MID_VAE = dict(block_out_channels=[32, 64, 64, 64], norm_num_groups=32, layers_per_block=1)

_UNET_LAYOUT = dict(
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    addition_embed_type="text_time",
    use_linear_projection=True,
)
_TINY = dict(
    unet=dict(block_out_channels=(16, 32, 32), layers_per_block=1, attention_head_dim=(2, 4, 4),
              transformer_layers_per_block=(1, 1, 1), addition_time_embed_dim=8,
              norm_num_groups=8, sample_size=16),
    text_encoder=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2),
    # Wider than text_encoder, as in SDXL (768 vs 1280): single-file loaders tell the two CLIP
    # encoders apart by width, so equal widths would load text_encoder's weights into both.
    text_encoder_2=dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=2,
                        projection_dim=32),
    vae=_TINY_VAE,
)
_MID = dict(
    unet=dict(block_out_channels=(64, 128, 256), layers_per_block=2, attention_head_dim=(2, 4, 8),
              transformer_layers_per_block=(1, 1, 2), addition_time_embed_dim=64,
              norm_num_groups=32, sample_size=64),
    text_encoder=dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4),
    text_encoder_2=dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                        projection_dim=256),
    vae=_MID_VAE,
)


def _config_dir() -> Path:
    return paths.sdxl_config_dir()


def build_sdxl_components(size: str = "tiny", seed: int = 0, device: Any = None, dtype: Any = None) -> dict:
    """Fresh random-weight SDXL components, ready for ``StableDiffusionXLPipeline(**components)``."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    if size not in SDXL_SIZES:
        raise ValueError(f"unknown demo size {size!r}; choose one of {', '.join(SDXL_SIZES)}")
    cfg_dir = _config_dir()
    te1_cfg = CLIPTextConfig.from_json_file(cfg_dir / "text_encoder" / "config.json")
    te2_cfg = CLIPTextConfig.from_json_file(cfg_dir / "text_encoder_2" / "config.json")
    unet_cfg = UNet2DConditionModel.load_config(cfg_dir / "unet")
    vae_cfg = AutoencoderKL.load_config(cfg_dir / "vae")
    if size != "full":
        spec: dict[str, Any] = _TINY if size == "tiny" else _MID
        for cfg, overrides in ((te1_cfg, spec["text_encoder"]), (te2_cfg, spec["text_encoder_2"])):
            for key, value in overrides.items():
                setattr(cfg, key, value)
        unet_cfg.update(_UNET_LAYOUT)
        unet_cfg.update(spec["unet"])
        unet_cfg["cross_attention_dim"] = te1_cfg.hidden_size + te2_cfg.hidden_size
        unet_cfg["projection_class_embeddings_input_dim"] = (
            6 * unet_cfg["addition_time_embed_dim"] + te2_cfg.projection_dim
        )
        vae_cfg.update(spec["vae"])
        n = len(vae_cfg["block_out_channels"])
        vae_cfg["down_block_types"] = ["DownEncoderBlock2D"] * n
        vae_cfg["up_block_types"] = ["UpDecoderBlock2D"] * n
        vae_cfg["sample_size"] = unet_cfg["sample_size"] * 8

    torch.manual_seed(seed)
    with torch.device(device or "cpu"):
        components = dict(
            unet=UNet2DConditionModel.from_config(unet_cfg),
            vae=AutoencoderKL.from_config(vae_cfg),
            text_encoder=CLIPTextModel(te1_cfg),
            text_encoder_2=CLIPTextModelWithProjection(te2_cfg),
        )
    if dtype is not None:
        for module in components.values():
            module.to(dtype=dtype)
    components["tokenizer"] = CLIPTokenizer.from_pretrained(cfg_dir / "tokenizer")
    components["tokenizer_2"] = CLIPTokenizer.from_pretrained(cfg_dir / "tokenizer_2")
    components["scheduler"] = EulerDiscreteScheduler.from_pretrained(cfg_dir / "scheduler")
    return components


def demo_sdxl_dir(size: str = "tiny") -> Path:
    """A diffusers folder of the demo SDXL model, loadable like any real one."""
    if size == "full":
        raise ValueError("the full-size demo SDXL is built in memory only: use build_sdxl_components('full')")

    def write(folder: Path) -> None:
        from diffusers import StableDiffusionXLPipeline

        StableDiffusionXLPipeline(**build_sdxl_components(size)).save_pretrained(folder)

    return build_once(demo_cache_dir() / f"sdxl-{size}", write)


def demo_sdxl_fp16_unet_dir(size: str = "tiny") -> Path:
    """:func:`demo_sdxl_dir` with its UNet saved in fp16, as SDXL's own files store it (half-weight
    storage is lossless only from such a file)."""

    def write(folder: Path) -> None:
        import shutil

        import torch
        from diffusers import UNet2DConditionModel

        shutil.copytree(demo_sdxl_dir(size), folder)
        unet = UNet2DConditionModel.from_pretrained(folder / "unet")
        (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
        torch.nn.Module.to(unet, torch.float16).save_pretrained(folder / "unet")

    return build_once(demo_cache_dir() / f"sdxl-{size}-fp16-unet", write)


VPRED_MARKERS = ("v_pred", "ztsnr")


def demo_sdxl_vpred_file() -> Path:
    """The tiny demo SDXL as one original-layout ``.safetensors`` file carrying the community's
    ``v_pred`` and ``ztsnr`` marker keys, as NoobAI-XL V-Pred's files do (``models/prediction.py``);
    loaded with :func:`demo_sdxl_dir`'s configs (its sizes are not SDXL's)."""

    def write(file: Path) -> None:
        from diffusers import StableDiffusionXLPipeline

        from alchemy_engine.models.demo.ldm_layout import write_ldm_checkpoint

        pipe = StableDiffusionXLPipeline.from_pretrained(demo_sdxl_dir("tiny"), local_files_only=True,
                                                         use_safetensors=True)
        write_ldm_checkpoint(pipe, file, markers=VPRED_MARKERS)

    return build_once(demo_cache_dir() / "sdxl-tiny-vpred.safetensors", write)


def demo_sdxl_inpaint_file() -> Path:
    """The tiny demo SDXL with a 9-channel inpainting UNet, as one original-layout file like
    ``sd_xl_base_1.0_inpainting_0.1.safetensors``; read with :func:`demo_sdxl_dir`'s configs."""

    def write(file: Path) -> None:
        import torch
        from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel

        from alchemy_engine.models.demo.ldm_layout import write_ldm_checkpoint

        pipe = StableDiffusionXLPipeline.from_pretrained(demo_sdxl_dir("tiny"), local_files_only=True,
                                                         use_safetensors=True)
        torch.manual_seed(1)
        pipe.unet = UNet2DConditionModel.from_config({**pipe.unet.config, "in_channels": 9})
        write_ldm_checkpoint(pipe, file)

    return build_once(demo_cache_dir() / "sdxl-tiny-inpaint.safetensors", write)
