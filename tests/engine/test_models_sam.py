"""SAM checkpoints: the variant comes from the tensors, never the file name; code never runs."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch

from alchemy_engine import paths
from alchemy_engine.errors import ModelError
from alchemy_engine.models import sam as sam_models
from alchemy_engine.models.inventory import find_models
from alchemy_engine.models.sam import load_sam, read_sam_variant


def _sam_dir() -> Path:
    folder = paths.models_dir() / "sam"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_demo_under_a_misleading_name_is_recognised_as_demo():
    from alchemy_engine.models.demo import demo_sam_checkpoint

    target = _sam_dir() / "sam_vit_h_4b8939.pth"
    shutil.copy(demo_sam_checkpoint(), target)
    sam, variant = load_sam(target)
    assert variant.name == "demo" and sam.image_encoder.img_size == 256
    entries = find_models(detect_sam_variants=True).to_dict()["sam"]
    assert [(e["name"], e["kind"]) for e in entries] == [("demo", "demo"), ("sam_vit_h_4b8939", "demo")]
    listed_fast = find_models().to_dict()["sam"]  # without opening files: name only
    assert listed_fast[1]["kind"] == "sam"


def test_vit_b_shapes_are_recognised_without_building_the_model(monkeypatch):
    state = {"image_encoder.patch_embed.proj.weight": torch.zeros(768, 3, 1, 1)}
    state.update({f"image_encoder.blocks.{i}.norm1.weight": torch.zeros(1) for i in range(12)})
    target = _sam_dir() / "sam_vit_h.pth"  # the name lies; the tensors decide
    torch.save(state, target)

    def no_build(*args, **kwargs):
        raise AssertionError("the model must not be built just to recognise the variant")

    monkeypatch.setattr(sam_models, "build_sam", no_build)
    assert read_sam_variant(target).name == "vit_b"


def test_unknown_width_and_non_sam_files_are_refused(tmp_path):
    odd = tmp_path / "odd.pth"
    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(100, 3, 1, 1)}, odd)
    with pytest.raises(ModelError, match="unrecognised SAM image encoder.*vit_h, vit_l or vit_b"):
        read_sam_variant(odd)
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(ModelError, match="not a Segment Anything checkpoint"):
        load_sam(other)


class _Booby:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_with_code_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "code-ran"
    target = _sam_dir() / "sam_vit_b_01ec64.pth"
    with target.open("wb") as fh:
        torch.save({"image_encoder.patch_embed.proj.weight": _Booby(marker)}, fh)
    with pytest.raises(ModelError, match="may be damaged or contain code"):
        load_sam(target)
    entry = find_models(detect_sam_variants=True).to_dict()["sam"][1]
    assert entry["kind"] == "unusable" and "contain code" in entry["note"]
    target.write_bytes(pickle.dumps(_Booby(marker), protocol=2))  # a bare pickle, not torch's zip layout
    with pytest.raises(ModelError):
        load_sam(target)
    assert not marker.exists()


def test_missing_checkpoint_says_so(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_sam(tmp_path / "nope.pth")
