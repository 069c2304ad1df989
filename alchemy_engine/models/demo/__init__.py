"""Built-in SDXL-, SAM- and detector-shaped models with random weights.

They run the exact code paths of the real models (the same diffusers pipeline classes,
``segment_anything.Sam``, transformers' Grounding DINO) and produce noise images, so the app,
the tests and CPU benchmarks work with no downloaded weights. Built offline in seconds and cached
under ``cache_root()/demo_models``. This package imports the loaders; they never import it.
"""

from alchemy_engine.models.demo.demo_cache import DEMO_FORMAT_VERSION, build_once, demo_cache_dir
from alchemy_engine.models.demo.files import demo_detector_dir, demo_sam_checkpoint
from alchemy_engine.models.demo.sdxl import (
           SDXL_SIZES,
           build_sdxl_components,
           demo_sdxl_dir,
           demo_sdxl_fp16_unet_dir,
           demo_sdxl_inpaint_file,
           demo_sdxl_vpred_file,
)

__all__ = ["DEMO_FORMAT_VERSION", "SDXL_SIZES", "build_once", "build_sdxl_components", "demo_cache_dir",
           "demo_detector_dir", "demo_sam_checkpoint", "demo_sdxl_dir", "demo_sdxl_fp16_unet_dir",
           "demo_sdxl_inpaint_file", "demo_sdxl_vpred_file"]
