"""Reading any picture a user hands us, safely: photos, scenes and masks.

:func:`load_rgb` is how the engine reads a picture: header size checked before decoding
(decompression bombs), only common formats' decoders tried, the whole file decoded (a truncated
file fails here, not mid-training), EXIF orientation applied, ICC colour converted to sRGB, every
mode converted to 8-bit RGB, transparency flattened onto white (training and inpainting need RGB).
:func:`open_image` is the same check and full decode without the conversion (masks keep their
mode). Every failure is one :class:`ImageImportError` that names the file and says what to do.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from alchemy_engine.errors import ImageImportError
from alchemy_engine.safe_read import regular_file

log = logging.getLogger(__name__)

MAX_PIXELS = 50_000_000
"""Refuse anything larger than 50 megapixels, judged from the header before decoding."""

READABLE_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "TIFF", "BMP", "GIF")
"""Only these decoders are tried: no EPS/PDF (external programs) or exotic formats."""

_HUMAN_FORMATS = "JPEG, PNG, WebP, TIFF, BMP or GIF"

MAX_FILE_BYTES = 512 * 1024 * 1024
"""Refuse image files larger than this on disk before opening them (a 50 MP 16-bit TIFF fits)."""


def load_rgb(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode ``path`` fully and return an 8-bit sRGB ``RGB`` image, upright per its EXIF tag.

    Any size up to ``max_pixels`` is accepted. Alpha is composited onto white. Raises
    :class:`ImageImportError` naming the file when it is missing, not an image, damaged or
    truncated, too large, or in a colour format that cannot be converted.
    """
    path = Path(path)
    image = open_image(path, max_pixels)
    try:
        upright = ImageOps.exif_transpose(image)  # always a new image, info kept
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageImportError(f"{path}: its EXIF data is damaged ({exc}). Re-save the photo "
                               "as JPEG or PNG and import it again.") from exc
    finally:
        image.close()
    return _to_srgb_rgb(upright, path)


def pixel_sha256(image: Image.Image) -> str:
    """SHA-256 of an image's size, mode and raw pixels: equal for equal pictures in any file."""
    digest = hashlib.sha256(f"{image.mode} {image.width}x{image.height}\n".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def open_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open with a header-size check first, then decode every pixel; the mode is left as it is."""
    path = Path(path)
    regular_file(path, max_bytes=MAX_FILE_BYTES, what="picture", error=ImageImportError)  # no FIFO hang
    try:
        with warnings.catch_warnings():
            # PIL warns (then errors) on images over its own limit; treat both as "too large".
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.init()  # registers every plugin; open(formats=...) does not do it itself
            image = Image.open(path, formats=[f for f in READABLE_FORMATS if f in Image.OPEN])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_large(path, None, max_pixels) from exc
    except UnidentifiedImageError as exc:
        raise ImageImportError(f"{path}: is not an image Image Alchemy can read. Save or export "
                               f"it as {_HUMAN_FORMATS} and import it again.") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageImportError(f"{path}: cannot be read ({exc}). Check that the file is a "
                               "photo and that you may read it.") from exc
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise _too_large(path, (width, height), max_pixels)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        image.close()
        raise ImageImportError(f"{path}: the file is damaged or incomplete ({exc}). Copy it "
                               "again from the camera or phone, or re-save it, then import "
                               "it again.") from exc
    return image


def _too_large(path: Path, size: tuple[int, int] | None, max_pixels: int) -> ImageImportError:
    limit = f"{max_pixels / 1e6:g} megapixels"
    what = f"{size[0]}×{size[1]} px ({size[0] * size[1] / 1e6:.1f} MP)" if size else "the image"
    return ImageImportError(f"{path}: {what} is over the {limit} limit. Scale it down below "
                            f"{limit} and import it again.")


def _to_srgb_rgb(image: Image.Image, path: Path) -> Image.Image:
    """Convert any decoded mode to 8-bit RGB, colour-managed to sRGB where a profile is given."""
    mode = image.mode
    if mode in ("F",) or mode.startswith("I;32") or mode.startswith("F;"):
        raise ImageImportError(f"{path}: floating-point images are not supported. Save it as "
                               "an 8- or 16-bit image and import it again.")
    if mode == "I" or mode.startswith("I;16"):
        return _sixteen_bit_to_rgb(image)
    icc = image.info.get("icc_profile")
    if icc and mode in ("RGB", "RGBA", "CMYK"):
        image = _apply_icc(image, icc, path)
    if "A" in image.mode or "a" in image.mode or "transparency" in image.info:
        return _flatten_on_white(image.convert("RGBA"))
    if image.mode == "RGB":
        return image
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise ImageImportError(f"{path}: colour mode {mode} cannot be converted to RGB ({exc}). "
                               "Save it as an RGB JPEG or PNG and import it again.") from exc


def _sixteen_bit_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit grey (``I;16*``) or 32-bit integer (``I``, from 16-bit files) scaled to 0-255.

    PIL's own ``convert`` clips instead of scaling, turning most 16-bit photos white.
    """
    values = np.asarray(image, dtype=np.int64)
    values = np.clip(values, 0, 65535)
    eight_bit = ((values * 255 + 32767) // 65535).astype(np.uint8)
    return Image.fromarray(eight_bit).convert("RGB")


def _flatten_on_white(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _apply_icc(image: Image.Image, icc: bytes, path: Path) -> Image.Image:
    """Convert from the embedded profile to sRGB; a broken profile is logged and ignored."""
    from PIL import ImageCms

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        target = ImageCms.createProfile("sRGB")
        if image.mode == "RGBA":
            rgb = ImageCms.profileToProfile(image.convert("RGB"), source, target, outputMode="RGB")
        else:
            rgb = ImageCms.profileToProfile(image, source, target, outputMode="RGB")
        if rgb is None:  # only with inPlace=True
            raise ValueError("the colour conversion returned no image")
        if image.mode == "RGBA":
            rgb.putalpha(image.getchannel("A"))
        return rgb
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        log.warning("%s: ignoring its colour profile, which cannot be used (%s)", path, exc)
        return image
