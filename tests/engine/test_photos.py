"""Photo decoding and normalisation: every bad file gets its own message, every mode becomes RGB."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alchemy_engine.errors import ImageImportError
from alchemy_engine.image_files import load_rgb, pixel_sha256
from alchemy_engine.project.photos import MAX_STORED_SIDE, normalise_photo


def noise(path: Path, size=(320, 280), seed=0, fmt=None) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, fmt)
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width``×``height`` but holds a few bytes of data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


def refused(path: Path, *fragments: str) -> str:
    with pytest.raises(ImageImportError) as info:
        normalise_photo(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_truncated_jpeg_is_refused(tmp_path):
    good = noise(tmp_path / "good.jpg", size=(400, 400))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    refused(cut, "damaged or incomplete", "Copy it again")


def test_text_file_named_jpg_is_refused(tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("shopping list: dog food\n")
    refused(fake, "not an image", "JPEG, PNG")


def test_missing_file_and_folder_are_refused(tmp_path):
    refused(tmp_path / "gone.png", "file not found")
    (tmp_path / "folder.png").mkdir()
    refused(tmp_path / "folder.png", "is a folder")


@pytest.mark.parametrize("side", [8000, 10_000, 20_000])  # ours; PIL's warning; PIL's error
def test_huge_image_refused_from_its_header(tmp_path, side):
    huge = png_header_only(tmp_path / f"huge{side}.png", side, side)
    refused(huge, "over the 50 megapixels limit", "Scale it down")


def test_too_small_photo_is_refused_but_load_rgb_accepts_any_size(tmp_path):
    small = noise(tmp_path / "small.png", size=(400, 200))
    refused(small, "400×200", "at least 256 px")
    assert load_rgb(small).size == (400, 200)


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((300, 400, 3), np.uint8)
    pixels[:150] = (255, 0, 0)  # top half red
    pixels[150:] = (0, 0, 255)  # bottom half blue
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    path = tmp_path / "phone.jpg"
    image.save(path, quality=95, exif=exif.tobytes())

    photo = normalise_photo(path)
    assert photo.image.size == (300, 400)
    out = np.asarray(photo.image).astype(int)
    assert out[200, 280].tolist() == pytest.approx([255, 0, 0], abs=8)  # top went right
    assert out[200, 20].tolist() == pytest.approx([0, 0, 255], abs=8)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    cmyk = Image.new("CMYK", (300, 300), (0, 0, 0, 0))
    cmyk.paste((255, 0, 0, 0), (0, 0, 150, 300))  # left half cyan
    path = tmp_path / "print.jpg"
    cmyk.save(path, quality=100)
    out = np.asarray(load_rgb(path)).astype(int)
    assert out.shape == (300, 300, 3)
    assert out[150, 40].tolist() == pytest.approx([0, 255, 255], abs=4)
    assert out[150, 260].tolist() == pytest.approx([255, 255, 255], abs=4)


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    values = np.zeros((300, 300), np.uint16)
    values[:, 100:200] = 32768
    values[:, 200:] = 65535
    path = tmp_path / "scan16.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as image:
        assert image.mode.startswith("I")
    out = np.asarray(load_rgb(path))
    assert out.dtype == np.uint8
    assert out[10, [50, 150, 250]].tolist() == [[0, 0, 0], [128, 128, 128], [255, 255, 255]]


def test_palette_png_with_transparency_is_flattened_onto_white(tmp_path):
    image = Image.new("P", (300, 300), 0)
    image.putpalette([0, 255, 0] + [255, 0, 0] + [0, 0, 0] * 254)  # 0 green (transparent), 1 red
    image.paste(1, (0, 0, 150, 300))
    path = tmp_path / "sticker.png"
    image.save(path, transparency=0)
    out = np.asarray(load_rgb(path))
    assert out[10, 10].tolist() == [255, 0, 0]
    assert out[10, 250].tolist() == [255, 255, 255]


def test_rgba_and_la_are_composited_onto_white(tmp_path):
    rgba = Image.new("RGBA", (300, 300), (255, 0, 0, 128))
    rgba.paste((0, 0, 0, 0), (150, 0, 300, 300))
    rgba.save(tmp_path / "cutout.png")
    out = np.asarray(load_rgb(tmp_path / "cutout.png")).astype(int)
    assert out[10, 10].tolist() == pytest.approx([255, 127, 127], abs=1)
    assert out[10, 250].tolist() == [255, 255, 255]

    la = Image.new("LA", (300, 300), (0, 255))
    la.paste((0, 0), (0, 0, 150, 300))
    la.save(tmp_path / "grey_alpha.png")
    out = np.asarray(load_rgb(tmp_path / "grey_alpha.png"))
    assert out[10, 10].tolist() == [255, 255, 255] and out[10, 250].tolist() == [0, 0, 0]


def test_greyscale_and_one_bit_become_rgb(tmp_path):
    Image.new("L", (300, 300), 77).save(tmp_path / "grey.png")
    assert np.asarray(load_rgb(tmp_path / "grey.png"))[0, 0].tolist() == [77, 77, 77]
    Image.new("1", (300, 300), 1).save(tmp_path / "bits.png")
    assert np.asarray(load_rgb(tmp_path / "bits.png"))[0, 0].tolist() == [255, 255, 255]


def test_large_photo_is_downscaled_and_hashed_at_full_size(tmp_path):
    path = noise(tmp_path / "big.png", size=(3000, 1000))
    photo = normalise_photo(path)
    assert photo.image.size == (MAX_STORED_SIDE, 683)
    assert photo.original_size == (3000, 1000)
    with Image.open(path) as image:
        assert photo.sha256 == pixel_sha256(image.convert("RGB"))


def test_same_pixels_in_different_files_hash_equal(tmp_path):
    a = noise(tmp_path / "a.png", seed=3)
    b = tmp_path / "b.bmp"
    with Image.open(a) as image:
        image.save(b)
    assert normalise_photo(a).sha256 == normalise_photo(b).sha256
    assert normalise_photo(a).sha256 != normalise_photo(noise(tmp_path / "c.png", seed=4)).sha256


def test_multi_frame_files_give_their_first_frame(tmp_path):
    frames = [Image.new("RGB", (300, 300), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "pages.tif", save_all=True, append_images=frames[1:])
    for name in ("anim.gif", "pages.tif"):
        assert np.asarray(load_rgb(tmp_path / name))[5, 5].tolist() == [255, 0, 0]


def test_colour_profiles_are_applied_and_broken_ones_reported(tmp_path, caplog):
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.new("RGB", (300, 300), (200, 100, 50)).save(tmp_path / "tagged.png", icc_profile=srgb)
    assert np.asarray(load_rgb(tmp_path / "tagged.png"))[0, 0].tolist() == \
        pytest.approx([200, 100, 50], abs=2)

    Image.new("RGB", (300, 300), (200, 100, 50)).save(tmp_path / "junk.png", icc_profile=b"junk")
    assert np.asarray(load_rgb(tmp_path / "junk.png"))[0, 0].tolist() == [200, 100, 50]
    assert "junk.png: ignoring its colour profile" in caplog.text
