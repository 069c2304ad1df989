"""The demo SAM checkpoint (Meta's ``.pth`` layout, the tiny ``demo`` variant) and the demo
Grounding DINO folder, cached like the demo SDXL."""

from __future__ import annotations

from pathlib import Path

from alchemy_engine.models.demo.demo_cache import build_once, demo_cache_dir


def demo_sam_checkpoint() -> Path:
    """A SAM checkpoint in Meta's ``.pth`` layout with the tiny ``demo`` variant's shapes."""

    def write(file: Path) -> None:
        import torch

        from alchemy_engine.models.sam import build_sam

        torch.manual_seed(0)
        torch.save(build_sam("demo").state_dict(), file)

    return build_once(demo_cache_dir() / "sam_demo.pth", write)


def demo_detector_dir() -> Path:
    """A tiny Grounding DINO folder (model + processor) loadable with transformers' Auto classes."""
    from alchemy_engine.models.demo.detector import save_tiny_grounding_dino

    return build_once(demo_cache_dir() / "grounding-dino-demo", save_tiny_grounding_dino)
