"""Image Alchemy engine: plain Python over torch/diffusers. Never imports Qt."""

__version__ = "0.1.0"
