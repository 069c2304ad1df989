"""An insertion handed back as layers, for the artist's own editor.

From one result (the output PNG, the untouched scene and the feathered mask the result was
pasted through) :func:`export_layers` writes, next to each other:

* ``<stem>.ora`` — OpenRaster (Krita, GIMP, MyPaint): a zip with ``mimetype`` first and stored,
  ``stack.xml``, one PNG per layer, ``mergedimage.png`` and a thumbnail;
* ``<stem>.psd`` — Photoshop, written by psd-tools;
* ``<stem>-subject.png`` — the subject layer alone, transparent around it.

Layers, top to bottom: ``mask`` (hidden; white where the subject was repainted), ``subject``
(the result's pixels with the soft mask as alpha: equal to the result wherever the alpha is 255),
``scene`` (the scene as it was). Showing ``subject`` over ``scene`` gives the result back, up to
rounding in the feathered edge.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
from PIL import Image

from alchemy_engine.atomic import atomic_path
from alchemy_engine.errors import InvalidRequest
from alchemy_engine.image_files import load_rgb

LAYER_NAMES = ("mask", "subject", "scene")  # top to bottom
FORMATS = ("ora", "psd", "png")
LAYERS_DIR = "layers"  # beside a project's outputs
_THUMB = 256


def _layers(result: Path, scene: Path, mask: Path) -> tuple[Image.Image, Image.Image, Image.Image]:
    """``(mask RGBA, subject RGBA, scene RGBA)``, all the result's size."""
    image = load_rgb(result)
    backdrop = load_rgb(scene)
    with Image.open(mask) as opened:
        alpha = opened.convert("L")
    if backdrop.size != image.size or alpha.size != image.size:
        raise InvalidRequest(f"the scene ({backdrop.size}), mask ({alpha.size}) and result ({image.size}) "
                             "differ in size; export the layers of the insertion that made this result")
    subject = image.convert("RGBA")
    subject.putalpha(alpha)
    shown = Image.merge("RGBA", (alpha, alpha, alpha, Image.new("L", alpha.size, 255)))
    return shown, subject, backdrop.convert("RGBA")


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _stack_xml(size: tuple[int, int]) -> str:
    rows = []
    for name in LAYER_NAMES:
        hidden = "hidden" if name == "mask" else "visible"
        rows.append(f'    <layer name={quoteattr(name)} src="data/{name}.png" x="0" y="0" opacity="1.0" '
                    f'visibility="{hidden}" composite-op="svg:src-over"/>')
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<image version="0.0.3" w="{size[0]}" h="{size[1]}">\n'
            '  <stack>\n' + "\n".join(rows) + "\n  </stack>\n</image>\n")


def write_ora(target: Path, layers: tuple[Image.Image, ...], merged: Image.Image) -> Path:
    """OpenRaster: ``mimetype`` must be the first entry and stored uncompressed (the spec's magic)."""
    thumb = merged.copy()
    thumb.thumbnail((_THUMB, _THUMB))
    with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "image/openraster", compress_type=zipfile.ZIP_STORED)
        archive.writestr("stack.xml", _stack_xml(merged.size))
        for name, layer in zip(LAYER_NAMES, layers):
            archive.writestr(f"data/{name}.png", _png_bytes(layer))
        archive.writestr("mergedimage.png", _png_bytes(merged))
        archive.writestr("Thumbnails/thumbnail.png", _png_bytes(thumb))
    return target


def write_psd(target: Path, layers: tuple[Image.Image, ...]) -> Path:
    """PSD through psd-tools; a document with an alpha channel keeps each layer's transparency."""
    from psd_tools import PSDImage
    from psd_tools.api.layers import PixelLayer

    document = PSDImage.new("RGBA", layers[0].size)
    for name, layer in reversed(list(zip(LAYER_NAMES, layers))):  # PSD lists bottom first
        pixel = PixelLayer.frompil(layer, document, name)
        pixel.visible = name != "mask"
        document.append(pixel)
    with atomic_path(target) as tmp:
        document.save(str(tmp))
    return target


def export_layers(result: str | Path, scene: str | Path, mask: str | Path, out_stem: str | Path | None = None,
                  formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write the layered files of one insertion result; returns the paths written.

    ``out_stem`` defaults to the result's path without its suffix (``insert-….png`` →
    ``insert-….ora``, ``.psd``, ``-subject.png``). Existing files of the same name are replaced:
    they are this export's own earlier copies."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise InvalidRequest(f"unknown layered format {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    result = Path(result)
    stem = Path(out_stem) if out_stem is not None else result.with_suffix("")
    layers = _layers(result, Path(scene), Path(mask))
    merged = load_rgb(result)
    written = []
    if "ora" in formats:
        written.append(write_ora(stem.with_name(stem.name + ".ora"), layers, merged))
    if "psd" in formats:
        written.append(write_psd(stem.with_name(stem.name + ".psd"), layers))
    if "png" in formats:
        subject_png = stem.with_name(stem.name + "-subject.png")
        with atomic_path(subject_png) as tmp:
            layers[1].save(tmp, format="PNG")
        written.append(subject_png)
    return written


def export_output_layers(output: str | Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """:func:`export_layers` for an insertion output PNG, finding its scene and mask from the
    output's own metadata (written by the insertion that made it). The files go to a ``layers/``
    folder beside it, so a project's ``outputs/`` keeps listing only results."""
    import json

    from alchemy_engine.insertion import metadata

    output = Path(output)
    try:
        made = json.loads(metadata.read_png_text(output).get(metadata.RESULT_KEY) or "{}")
    except (OSError, ValueError) as exc:
        raise InvalidRequest(f"{output.name} cannot be read: {exc}") from exc
    scene, mask = (made.get("scene"), made.get("mask")) if isinstance(made, dict) else (None, None)
    if not scene or not mask or not Path(scene).is_file() or not Path(mask).is_file():
        raise InvalidRequest(f"{output.name} does not name an existing scene and mask (made by another tool, "
                             "or its files were moved); layers need both")
    return export_layers(output, scene, mask, output.parent / LAYERS_DIR / output.stem, formats)


def read_ora_layers(path: str | Path) -> list[tuple[str, bool, np.ndarray]]:
    """``(name, visible, RGBA array)`` of each layer of an ``.ora``, top first (tests, round trips)."""
    import xml.etree.ElementTree as ET  # noqa: N817 - the usual name

    with zipfile.ZipFile(path) as archive:
        if archive.namelist()[0] != "mimetype" or archive.read("mimetype") != b"image/openraster":
            raise InvalidRequest(f"{path} is not an OpenRaster file")
        stack = ET.fromstring(archive.read("stack.xml"))
        layers = []
        for node in stack.iter("layer"):
            with Image.open(io.BytesIO(archive.read(node.attrib["src"]))) as image:
                pixels = np.asarray(image.convert("RGBA"))
            layers.append((node.attrib["name"], node.attrib.get("visibility", "visible") == "visible", pixels))
    return layers
