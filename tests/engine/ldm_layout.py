"""Test helper: the LDM ("sgm") single-file layout writer (the demo package's) and fake headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alchemy_engine.models.demo.ldm_layout import (  # noqa: F401  (re-exported for the tests)
    CLIP_L,
    OPEN_CLIP,
    UNET,
    VAE,
    clip_l_to_ldm,
    open_clip_to_ldm,
    unet_key,
    unet_to_ldm,
    vae_key,
    vae_to_ldm,
    write_ldm_checkpoint,
)


def write_fake_safetensors(target: Path, shapes: dict[str, list[int]],
                           metadata: dict[str, str] | None = None) -> Path:
    """A valid safetensors file with the given tensor names and shapes and all-zero data.

    The data is a sparse hole, so a header shaped like a 7 GB checkpoint's first tensors costs
    nothing on disk; only names and shapes matter to the probe.
    """
    import json
    import struct

    header: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, shape in shapes.items():
        size = 2
        for dim in shape:
            size *= dim
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    with target.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        fh.truncate(8 + len(raw) + offset)
    return target
