"""Results back into the artist's editor: .ora and .psd with scene / subject / hidden mask layers,
and the transparent subject PNG, checked by reading the files back."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from insert_helpers import noisy_scene, write_mask
from PIL import Image

from alchemy_engine.cli import main
from alchemy_engine.errors import InvalidRequest
from alchemy_engine.insertion.layered_export import export_layers, read_ora_layers


def _psd_layers(path):
    from psd_tools import PSDImage

    document = PSDImage.open(path)  # psd-tools lists the bottom layer first
    return [(layer.name, layer.visible, np.asarray(layer.topil().convert("RGBA"))) for layer in reversed(list(document))]


def _check_layers(layers_top_first, result, scene, alpha):
    names = [name for name, _, _ in layers_top_first]
    assert names == ["mask", "subject", "scene"]
    (_, mask_visible, mask), (_, subject_visible, subject), (_, scene_visible, backdrop) = layers_top_first
    assert (mask_visible, subject_visible, scene_visible) == (False, True, True)
    opaque = alpha == 255
    assert opaque.any() and ((alpha > 0) & (alpha < 255)).any()  # the test mask really is soft
    assert np.array_equal(subject[..., :3][opaque], result[opaque])
    assert np.array_equal(subject[..., 3], alpha)
    assert np.array_equal(backdrop[..., :3], scene) and (backdrop[..., 3] == 255).all()
    assert np.array_equal(mask[..., 0], alpha)


@pytest.fixture
def insertion(tmp_path):
    """A scene, a result differing inside a feathered square, and that feathered mask."""
    scene = np.asarray(Image.open(noisy_scene(tmp_path / "scene.png", (80, 48))).convert("RGB"))
    alpha = np.zeros((48, 80), np.uint8)
    alpha[10:30, 20:50] = 255
    alpha[8:10, 18:52] = 128
    result = scene.copy()
    result[8:30, 18:52] = (250, 20, 10)
    Image.fromarray(result).save(tmp_path / "insert-1.png")
    Image.fromarray(alpha, "L").save(tmp_path / "insert-1-mask.png")
    return tmp_path / "insert-1.png", tmp_path / "scene.png", tmp_path / "insert-1-mask.png", result, scene, alpha


def test_ora_psd_and_subject_png_read_back_with_the_right_layers(insertion):
    result_path, scene_path, mask_path, result, scene, alpha = insertion
    written = export_layers(result_path, scene_path, mask_path)
    stem = result_path.with_suffix("")
    assert written == [stem.with_name("insert-1.ora"), stem.with_name("insert-1.psd"),
                       stem.with_name("insert-1-subject.png")]
    with zipfile.ZipFile(written[0]) as archive:
        first = archive.infolist()[0]
        assert (first.filename, first.compress_type) == ("mimetype", zipfile.ZIP_STORED)
        assert np.array_equal(np.asarray(Image.open(archive.open("mergedimage.png")).convert("RGB")), result)
    _check_layers(read_ora_layers(written[0]), result, scene, alpha)
    _check_layers(_psd_layers(written[1]), result, scene, alpha)
    subject = np.asarray(Image.open(written[2]))
    assert subject.shape == (48, 80, 4) and np.array_equal(subject[..., 3], alpha)


def test_mismatched_sizes_are_refused(insertion, tmp_path):
    result_path, scene_path, _, *_ = insertion
    Image.new("L", (10, 10)).save(tmp_path / "small-mask.png")
    with pytest.raises(InvalidRequest, match="differ in size"):
        export_layers(result_path, scene_path, tmp_path / "small-mask.png")
    with pytest.raises(InvalidRequest, match="unknown layered format tiff"):
        export_layers(result_path, scene_path, tmp_path / "small-mask.png", formats=("tiff",))


def test_insert_with_layers_writes_ora_and_psd(tmp_path, project, capsys):
    """Done-when: `insert … --layers` writes an .ora and a .psd that read back with the right layers."""
    scene = noisy_scene(tmp_path / "scene.png", (96, 64))
    mask = write_mask(tmp_path / "m.png", (96, 64), (10, 10, 40, 40))
    code = main(["insert", "Rex", "--scene", str(scene), "--mask", str(mask), "--model", "demo", "--steps", "2",
                 "--seed", "5", "--work-size", "128", "--out", str(tmp_path / "out"), "--layers", "--json"])
    assert code == 0
    result = json.loads([line for line in capsys.readouterr().out.splitlines() if line.strip()][-1])
    (output,) = result["outputs"]
    ora, psd, png = result["layered"]
    assert (ora.endswith(".ora"), psd.endswith(".psd"), png.endswith("-subject.png")) == (True, True, True)
    image = np.asarray(Image.open(output).convert("RGB"))
    alpha = np.asarray(Image.open(result["mask"]).convert("L"))
    backdrop = np.asarray(Image.open(result["scene"]).convert("RGB"))
    _check_layers(read_ora_layers(ora), image, backdrop, alpha)
    _check_layers(_psd_layers(psd), image, backdrop, alpha)
