"""Damaged files of every kind on disk get a message (or a fallback), never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import zlib

import pytest
from train_helpers import make_photo, quick_request

from alchemy_engine import paths
from alchemy_engine.errors import AlchemyError, ImageImportError, InvalidRequest, ModelError, ProjectError
from alchemy_engine.jobs import CancelToken
from alchemy_engine.project import list_projects, open_project


@pytest.fixture(scope="module")
def stopped_home(tmp_path_factory, shared_cache, template):
    """A project whose run stopped at step 5 with checkpoints at steps 4 and 5 (made once)."""
    from alchemy_engine.errors import JobCancelled
    from alchemy_engine.project import create_project
    from alchemy_engine.training import run

    home = tmp_path_factory.mktemp("stopped_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMAGE_ALCHEMY_HOME", str(home))
        mp.setenv("IMAGE_ALCHEMY_CACHE", str(shared_cache))
        project = create_project("Rex", class_noun="dog", images=template)
        cancel = CancelToken()

        def stop(event):
            if event.stage == "training" and event.step == 5:
                cancel.cancel()

        with pytest.raises(JobCancelled):
            run(quick_request(project, steps=7, save_every=4), stop, cancel)
    [run_dir] = list(project.runs_dir.iterdir())
    return project.root, run_dir.name


@pytest.fixture
def stopped(stopped_home):
    root, run_id = stopped_home
    target = paths.projects_dir() / "rex"
    shutil.copytree(root, target)
    return open_project(target), target / "runs" / run_id


def _garbage(path):
    path.write_bytes(os.urandom(300))


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _pickle(path):
    import torch

    torch.save({"payload": argparse.Namespace(run="code")}, path)  # refused by weights_only=True


def _drop_key(path):
    data = json.loads(path.read_text())
    del data["micro_step"]
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("name, damage", [
    ("optimizer.pt", _garbage), ("rng.pt", _pickle), ("lora.safetensors", _truncate),
    ("state.json", _drop_key), ("scheduler.pt", os.remove),
])
def test_a_damaged_checkpoint_falls_back_to_the_previous_one(stopped, name, damage):
    from alchemy_engine.training import run

    project, run_dir = stopped
    damage(run_dir / "checkpoints" / "step-000005" / name)
    result = run(quick_request(project, resume_run=run_dir.name))
    assert result.resumed_from == 4 and result.lora.is_file()
    [note] = [w for w in result.warnings if "damaged" in w]
    assert note.startswith("checkpoint step 5 is damaged (") and note.endswith("resuming from step 4")
    assert "weights_only" not in note and "Traceback" not in note


def test_every_checkpoint_damaged_is_one_message(stopped):
    from alchemy_engine.training import run

    project, run_dir = stopped
    for checkpoint in (run_dir / "checkpoints").iterdir():
        _pickle(checkpoint / "optimizer.pt")
    with pytest.raises(AlchemyError, match="no checkpoint of run .* can be read .*step 5: optimizer.pt") as info:
        run(quick_request(project, resume_run=run_dir.name))
    assert "weights_only" not in str(info.value)


def test_a_garbage_loss_log_does_not_stop_a_resume(stopped):
    from alchemy_engine.training import run

    project, run_dir = stopped
    with open(run_dir / "loss.csv", "ab") as handle:
        handle.write(b"\x00\xff garbage,,\nnot,a,row,at,all\n3,x,y,z\n")
    result = run(quick_request(project, resume_run=run_dir.name))
    rows = (run_dir / "loss.csv").read_text().splitlines()
    assert rows[0] == "step,loss,loss_smoothed,learning_rate" and [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, 8))
    assert result.steps == 7


@pytest.mark.parametrize("text", ["{not json", '{"steps": "many"}', "[]", '{"steps": 1e999}'])
def test_a_damaged_train_request_is_a_message(stopped, text):
    from alchemy_engine.training import run

    project, run_dir = stopped
    (run_dir / "train_request.json").write_text(text)
    with pytest.raises(InvalidRequest, match="cannot be resumed"):
        run(quick_request(project, resume_run=run_dir.name))


@pytest.mark.parametrize("change", [
    lambda d: d["references"][0].update(width="wide"), lambda d: d.update(name=None),
    lambda d: d["references"][0].update(height=10**400), lambda d: d.update(token="s\x1b[2Jks"),
    lambda d: d["references"][0].update(sha256=1), lambda d: d.update(settings={"a": [[[[[[[[[[1]]]]]]]]]]}),
])
def test_project_json_fields_are_checked_with_bounds(fresh_project, change):
    project = fresh_project()
    data = json.loads(project.project_file.read_text())
    change(data)
    text = json.dumps(data).replace("1" + "0" * 400, "1e999")
    project.project_file.write_text(text)
    with pytest.raises(ProjectError, match="project.json is damaged"):
        open_project(project.root)
    assert list_projects()[0].error


def test_deeply_nested_project_json_is_a_message(fresh_project):
    project = fresh_project()
    project.project_file.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ProjectError, match="damaged"):
        open_project(project.root)


def _png_header_claiming(path, width, height):
    """A tiny PNG whose header claims ``width`` × ``height`` (CRCs right, pixel data absent)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("make, reason", [
    (lambda p: (p.write_text("white = subject"), p)[1], "not an image"),
    (lambda p: _png_header_claiming(p, 16000, 16000), "over the 50 megapixels limit"),
    (lambda p: os.mkfifo(p) or p, "not a regular file"),
])
def test_masks_go_through_the_safe_decoder(tmp_path, make, reason):
    from PIL import Image

    from alchemy_engine.insertion.request import LocateOptions
    from alchemy_engine.insertion.segment import build_mask

    mask = make(tmp_path / "mask.png")
    with pytest.raises(ImageImportError, match=reason):
        build_mask(LocateOptions(mask=mask), Image.new("RGB", (64, 64)), session=None, device="cpu")


def test_a_fifo_given_as_a_photo_is_refused_at_once(fresh_project, tmp_path):
    project = fresh_project()
    os.mkfifo(tmp_path / "photo.png")
    make_photo(tmp_path / "real.png", (256, 256), seed=9)
    report = project.import_photos([tmp_path / "photo.png", tmp_path / "real.png"])
    assert "not a regular file" in report.refused[0].reason and len(report.imported) == 1


@pytest.fixture(scope="module")
def demo_unet():
    from diffusers import UNet2DConditionModel

    from alchemy_engine.models.demo import demo_sdxl_dir

    return UNet2DConditionModel.from_pretrained(demo_sdxl_dir("tiny") / "unet")


def _rewrite_lora(source, target, metadata=None, change=None):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(source), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
        meta = dict(handle.metadata() or {})
    if change:
        change(tensors)
    save_file(tensors, str(target), metadata={**meta, **(metadata or {})})
    return target


@pytest.mark.parametrize("metadata, change, message", [
    ({"lora_adapter_metadata": '"not a dict"'}, None, "not a JSON object"),
    ({"lora_adapter_metadata": json.dumps({"unet.r": 10**8, "unet.lora_alpha": 4})}, None, "rank 100000000"),
    (None, lambda t: next(iter(t.values())).fill_(float("nan")), "NaN"),
])
def test_untrusted_lora_files_are_refused_before_loading(demo_lora, demo_unet, tmp_path, metadata, change, message):
    from alchemy_engine.models.lora_files import check_lora_file

    bad = _rewrite_lora(demo_lora, tmp_path / "bad.safetensors", metadata, change)
    with pytest.raises(ModelError, match=message):
        check_lora_file(bad, demo_unet)


def test_a_truncated_lora_is_a_message(demo_lora, demo_unet, tmp_path):
    from alchemy_engine.models.lora_files import check_lora_file, read_metadata

    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(demo_lora.read_bytes()[:5000])
    with pytest.raises(ModelError):
        read_metadata(bad)
    with pytest.raises(ModelError):
        check_lora_file(bad, demo_unet)


def test_lora_metadata_is_cleaned_and_bounded(demo_lora, tmp_path):
    from alchemy_engine.models.lora_files import read_metadata

    evil = _rewrite_lora(demo_lora, tmp_path / "evil.safetensors",
                         {"alchemy.token": "s\x1b]0;pwned\x07ks\x1b[2J", "alchemy.class_noun": "dog" * 1_000_000})
    meta = read_metadata(evil)
    assert "\x1b" not in meta["token"] and "\x07" not in meta["token"] and "pwned" in meta["token"]
    assert all(ch.isprintable() for ch in meta["token"])
    assert len(meta["class_noun"]) <= 1000
