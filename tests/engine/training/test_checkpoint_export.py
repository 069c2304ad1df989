"""Exporting the LoRA of a kept checkpoint (api.export_checkpoint_lora and the export command)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import quick_request

from alchemy_engine import api
from alchemy_engine.cli import main
from alchemy_engine.errors import InvalidRequest
from alchemy_engine.models import lora_files
from alchemy_engine.training import run


def test_export_checkpoint_lora_writes_loadable_files(project, capsys):
    from diffusers import UNet2DConditionModel

    from alchemy_engine.models.demo import demo_sdxl_dir

    result = run(quick_request(project, steps=4, save_every=2, keep_last=2))
    run_id = str(result.run_dir).rstrip("/").split("/")[-1]
    assert api.kept_checkpoint_steps(result.run_dir) == [2, 4]

    lora, kohya = api.export_checkpoint_lora(project, run_id, 2)
    assert lora == project.runs_dir / run_id / "exports" / "step-2" / "lora.safetensors"
    assert kohya.name == "lora_kohya.safetensors" and kohya.parent == lora.parent
    unet = UNet2DConditionModel.from_pretrained(demo_sdxl_dir("tiny") / "unet")
    lora_files.check_lora_file(lora, unet)
    lora_files.check_lora_file(kohya, unet)

    # The last checkpoint's export holds exactly what the finished run wrote.
    _, kohya4 = api.export_checkpoint_lora(project, run_id, 4)
    ours, finished = load_file(str(kohya4)), load_file(str(result.lora_kohya))
    assert set(ours) == set(finished)
    assert all(torch.equal(ours[k], finished[k]) for k in ours)
    step2 = load_file(str(kohya))
    assert any(not torch.equal(step2[k], ours[k]) for k in ours if k.endswith("lora_up.weight"))

    code = main(["export", str(project.root), run_id, "--step", "2", "--json"])
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and payload["lora"] == str(lora)

    with pytest.raises(InvalidRequest, match="no checkpoint at step 3"):
        api.export_checkpoint_lora(project, run_id, 3)


def test_export_with_text_encoder_and_feed_forward_layers_equals_the_finished_run(project):
    result = run(quick_request(project, steps=2, save_every=2, text_encoder_lora=True, train_ff=True))
    lora, kohya = api.export_checkpoint_lora(project.root, result.run_dir.name, 2)  # a folder works too
    for ours, theirs in ((lora, result.lora), (kohya, result.lora_kohya)):
        a, b = load_file(str(ours)), load_file(str(theirs))
        assert set(a) == set(b) and any("te2" in k or "text_encoder_2" in k for k in a)
        assert all(torch.equal(a[k], b[k]) for k in a)
