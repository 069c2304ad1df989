"""Done-when: an SDXL checkpoint that lives in another app's model folder (a ComfyUI tree elsewhere
on disk) is what `insert` runs on once the folder is added — found, loaded in place, never copied.

The checkpoint is the tiny demo SDXL written as one original-layout file, so the single-file loader
is pointed at the demo's configs instead of the bundled full-size ones."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from insert_helpers import noisy_scene, write_mask

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ldm_layout import write_ldm_checkpoint  # noqa: E402

from alchemy_engine.cli import main  # noqa: E402


@pytest.fixture
def comfy_checkpoint(shared_cache, tmp_path, monkeypatch) -> Path:
    from alchemy_engine import paths
    from alchemy_engine.models.demo import demo_sdxl_dir

    built = shared_cache / "single_file_stream" / "tiny_fp32.safetensors"  # shared with the loader tests
    if not built.exists():
        import torch

        from alchemy_engine.models.device import DevicePolicy
        from alchemy_engine.models.sdxl import load_sdxl_pipeline

        pipe = load_sdxl_pipeline("demo", DevicePolicy("cpu", torch.float32, torch.float32))
        built.parent.mkdir(exist_ok=True)
        write_ldm_checkpoint(pipe, built)
    folder = tmp_path / "ComfyUI" / "models" / "checkpoints"
    folder.mkdir(parents=True)
    target = folder / "tiny_xl.safetensors"
    target.symlink_to(built)  # "elsewhere on disk": the app must read it where it is
    monkeypatch.setattr(paths, "sdxl_config_dir", demo_sdxl_dir)
    return target


def test_insert_runs_on_a_checkpoint_from_a_model_folder(tmp_path, project, comfy_checkpoint, capsys):
    assert main(["models", "folders", "add", str(comfy_checkpoint.parent.parent)]) == 0
    capsys.readouterr()
    scene = noisy_scene(tmp_path / "scene.png", (96, 64))
    mask = write_mask(tmp_path / "m.png", (96, 64), (10, 10, 40, 40))
    code = main(["insert", "Rex", "--scene", str(scene), "--mask", str(mask), "--steps", "2", "--seed", "5",
                 "--work-size", "128", "--out", str(tmp_path / "out"), "--json"])  # no --model: found
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    result = json.loads(out[-1])
    assert len(result["outputs"]) == 1
    assert not any((tmp_path / "alchemy_home" / "models").rglob("*.safetensors"))  # nothing copied
    from alchemy_engine.insertion.metadata import read_png_text

    assert "Model: tiny_xl," in read_png_text(Path(result["outputs"][0]))["parameters"]  # the ComfyUI file
