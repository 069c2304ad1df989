"""`models` on the command line: --json ends with one object; `models check` explains a file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ldm_layout import write_fake_safetensors

from alchemy_engine.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]


def test_models_json_last_line_has_every_group(alchemy_home, tmp_path):
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hf-empty")}
    done = subprocess.run([sys.executable, "main.py", "models", "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"sdxl", "sam", "detector"} <= result.keys()
    assert result["sdxl"][0] == {"name": "demo", "path": "demo", "kind": "demo",
                                 "note": "built-in random weights"}
    assert result["folders"]["sdxl"] == str(alchemy_home / "models" / "sdxl")


def test_models_human_output_names_the_folders(alchemy_home, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-empty"))
    assert cli_main(["models"]) == 0
    out = capsys.readouterr().out
    assert str(alchemy_home / "models" / "sam") in out and "demo" in out


def test_models_check_describes_a_lora_and_refuses_one_for_another_model(capsys, tmp_path):
    sd15 = write_fake_safetensors(tmp_path / "my_lora.safetensors", {
        "lora_unet_mid_block_attentions_0_proj_in.lora_down.weight": [4, 1280],
        "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": [4, 768]})
    assert cli_main(["models", "check", str(sd15)]) == 2
    captured = capsys.readouterr()
    assert captured.out.startswith("my_lora.safetensors: a LoRA for Stable Diffusion 1.x (kohya")
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: my_lora.safetensors is a LoRA for Stable Diffusion 1.x")
    sdxl = write_fake_safetensors(tmp_path / "sdxl_lora.safetensors", {
        "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": [4, 2048]})
    assert cli_main(["models", "check", "--json", str(sdxl)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (result["kind"], result["lora_base"], result["usable"]) == ("lora", "sdxl", True)


def test_models_check_json_accepts_sdxl(capsys, tmp_path):
    from test_models_probe import SDXL_BASE

    path = write_fake_safetensors(tmp_path / "sdxl.safetensors", SDXL_BASE)
    assert cli_main(["models", "check", "--json", str(path)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["usable"] is True and result["family"] == "sdxl_base" and len(result["fingerprint"]) == 16
