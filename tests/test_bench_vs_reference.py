"""The ``train_bench.py --vs-reference`` harness: script check, probe, runner and tables (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import step_probe  # noqa: E402
import vs_reference  # noqa: E402

PEFT_SCRIPT = '''from peft import LoraConfig
# Will error if the minimal version of diffusers is not installed. Remove at your own risks.
check_min_version("0.37.0.dev0")
'''
OLD_SCRIPT = '''from diffusers.models.lora import LoRALinearLayer
check_min_version("0.22.0.dev0")
'''


def test_script_version_reads_check_min_version():
    assert vs_reference.script_version(PEFT_SCRIPT) == "0.37.0.dev0"
    assert vs_reference.script_version("print('no version')") is None


def test_check_script_accepts_peft_script_and_refuses_old_or_missing(tmp_path):
    good, old = tmp_path / "good.py", tmp_path / "old.py"
    good.write_text(PEFT_SCRIPT)
    old.write_text(OLD_SCRIPT)
    assert vs_reference.check_script(good) == "0.37.0.dev0"
    with pytest.raises(SystemExit, match=r"0\.22\.0\.dev0\) predates .*0\.37\.0\.dev0"):
        vs_reference.check_script(old)
    with pytest.raises(SystemExit, match="no reference script"):
        vs_reference.check_script(tmp_path / "absent.py")


def test_probe_reads_optimizer_and_unet_settings():
    probe = step_probe.Probe()
    weight = torch.nn.Parameter(torch.zeros(4, 3))
    optimizer = torch.optim.AdamW([weight], lr=1e-4, weight_decay=1e-4)
    for _ in range(3):
        probe.on_step(optimizer, (), {})
    unet = SimpleNamespace(peft_config={"default": SimpleNamespace(r=16, lora_alpha=16, init_lora_weights="gaussian",
                                                                   target_modules={"to_q", "to_k"})},
                           dtype=torch.float32, is_gradient_checkpointing=True)
    probe.on_unet(unet, torch.zeros(1, 4, 32, 32), torch.zeros(1, 77, 384))
    probe.on_tokenize("a photo of sks dog")
    probe.on_tokenize(["a photo of sks dog", "a dog"])
    result = json.loads(json.dumps(probe.result()))
    assert result["steps"] == 3 and len(result["step_times"]) == 2
    assert result["settings"]["optimizer"] == {"class": "AdamW", "lr": 1e-4, "betas": [0.9, 0.999], "eps": 1e-08,
                                               "weight_decay": 1e-4, "trained_params": 12,
                                               "trained_dtype": "float32"}
    assert result["settings"]["unet"] == {"latents": [1, 4, 32, 32], "text_embeds": [1, 77, 384],
                                          "dtype": "float32", "gradient_checkpointing": True,
                                          "lora": {"r": 16, "alpha": 16, "init": "gaussian",
                                                   "targets": ["to_k", "to_q"]}}
    assert result["settings"]["prompts"] == ["a photo of sks dog", "a dog"]


def test_reference_runner_times_optimizer_steps_and_keeps_the_parsed_arguments(tmp_path):
    script = tmp_path / "stand_in.py"
    script.write_text("import argparse, torch\n"
                      "parser = argparse.ArgumentParser()\n"
                      "parser.add_argument('--max_train_steps', type=int)\n"
                      "args = parser.parse_args()\n"
                      "w = torch.nn.Parameter(torch.zeros(2))\n"
                      "opt = torch.optim.AdamW([w], lr=1e-4)\n"
                      "for _ in range(args.max_train_steps):\n"
                      "    w.sum().backward(); opt.step(); opt.zero_grad()\n")
    result = tmp_path / "result.json"
    subprocess.run([sys.executable, str(BENCH / "reference_run.py"), str(result), str(script),
                    "--max_train_steps", "4"], check=True, capture_output=True, timeout=300)
    data = json.loads(result.read_text())
    assert data["steps"] == 4 and len(data["step_times"]) == 3  # one stamp per update, not per wrapper
    assert data["args"] == {"max_train_steps": 4}
    assert data["settings"]["optimizer"]["class"] == "AdamW" and data["peak_rss_mb"] > 0


def _run(step_times, checkpointing, rss, seconds, **extra):
    return {"step_times": step_times, "steps": len(step_times) + 1, "peak_rss_mb": rss, "seconds": seconds,
            "settings": {"unet": {"gradient_checkpointing": checkpointing, "latents": [1, 4, 32, 32]},
                         "optimizer": {"class": "AdamW", "lr": 1e-4}, "prompts": ["a photo of sks dog"]},
            **extra}


def test_table_leaves_out_warmup_and_flags_unequal_checkpointing():
    args = Namespace(warmup=2, vs_reference="/tmp/ref/train_dreambooth_lora_sdxl.py", script_version="0.37.0.dev0",
                     sizes="mid", resolution=256, steps=6, device="cpu", repeats=1)
    ours = _run([9.0, 9.0, 1.0, 1.0, 1.0], True, 1000.0, 50.0, notes=["gradient_checkpointing: auto → on"])
    ref = _run([9.0, 9.0, 2.0, 2.0, 2.0], False, 1250.0, 100.0)
    text = vs_reference.table({"ours": [ours], "reference": [ref]}, args)
    assert "| 1000.0 ms | 2000.0 ms | **0.50** | ≤ 0.5 |" in text
    assert "| 50.0 s | 100.0 s | **0.50** |" in text and "| 1000 MB | 1250 MB | **0.80** |" in text
    assert "NOT equal: for equal settings rerun with --ours-checkpointing off" in text
    same = vs_reference.table({"ours": [_run([1.0] * 5, False, 1.0, 1.0)],
                               "reference": [_run([1.0] * 5, False, 1.0, 1.0)]}, args)
    assert "ours off / reference off (equal)" in same


def test_settings_table_marks_each_difference():
    ours = _run([1.0], True, 1.0, 1.0, request={"seed": 0, "min_snr_gamma": 5.0, "max_grad_norm": 1.0})
    ref = _run([1.0], False, 1.0, 1.0, args={"seed": 0, "snr_gamma": None, "max_grad_norm": 1.0})
    rows = {line.split(" | ")[0].lstrip("| "): line for line in vs_reference.settings_table(ours, ref).splitlines()
            if line.startswith("| ")}
    assert rows["gradient checkpointing"].endswith("| **differs** |")
    assert rows["min-SNR γ"].endswith("| **differs** |")
    assert rows["seed"].endswith("| = |") and rows["prompts tokenized"].endswith("| = |")
    assert rows["UNet latents (batch, 4, h, w)"].endswith("| = |")
