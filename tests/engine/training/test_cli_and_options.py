"""The train command (same engine call as the GUI) and the quality options end to end."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
from PIL import Image
from train_helpers import quick_request

from alchemy_engine.cli import main
from alchemy_engine.training import TrainRequest, run


@pytest.fixture(autouse=True)
def keep_sigint_handler():
    """The train command installs a Ctrl+C handler; give pytest its own back."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


def _cli(capsys, *argv) -> tuple[int, list[str], str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out.strip().splitlines(), captured.err


def test_cli_json_lines_end_with_the_result(project, capsys):
    code, lines, _ = _cli(capsys, "train", str(project.root), "--model", "demo", "--json", "--steps", "3",
                          "--resolution", "64", "--rank", "4", "--alpha", "2", "--no-gradient-checkpointing")
    assert code == 0
    events = [json.loads(line) for line in lines]
    assert all(e["event"] == "progress" for e in events[:-1])
    assert [e["step"] for e in events[:-1] if e["stage"] == "training"] == [1, 2, 3]
    result = events[-1]
    assert {"run_dir", "lora", "lora_kohya", "steps", "final_loss"} <= set(result) and result["steps"] == 3
    saved = json.loads((project.runs_dir / result["run_dir"].split("/")[-1] / "train_request.json").read_text())
    assert saved["alpha"] == 2.0 and saved["gradient_checkpointing"] == "off"


def test_cli_progress_bar_and_plain_result(project, capsys):
    code, lines, err = _cli(capsys, "train", str(project.root), "--model", "demo", "--steps", "2",
                            "--resolution", "64", "--rank", "4")
    assert code == 0 and any(line.startswith("lora_kohya: ") for line in lines)
    assert "training" in err and "2/2" in err


def test_cli_estimate_only_and_errors(project, capsys):
    code, lines, _ = _cli(capsys, "train", str(project.root), "--model", "demo", "--estimate-only", "--json")
    assert code == 0
    estimate = json.loads(lines[-1])
    assert estimate["peak_bytes"] > 0 and estimate["settings"]["resolution"] == 1024
    assert not list(project.runs_dir.iterdir())
    code, _, err = _cli(capsys, "train", str(project.root), "--model", "demo", "--rank", "0")
    assert code == 2 and "rank must be" in err
    code, _, err = _cli(capsys, "train", "no-such-project", "--model", "demo")
    assert code == 2 and "No project named" in err


def test_prior_preservation_makes_and_reuses_class_images(project):
    first = run(quick_request(project, steps=2, prior_preservation=True, class_images=2))
    made = sorted((project.cache_dir / "training" / "class_images").rglob("*.png"))
    assert len(made) == 2 and Image.open(made[0]).size == (64, 64)
    stamps = [p.stat().st_mtime_ns for p in made]
    second = run(quick_request(project, steps=2, prior_preservation=True, class_images=2))
    assert [p.stat().st_mtime_ns for p in made] == stamps  # reused, not regenerated
    assert second.cache["latents_reused"] == 5 and np.isfinite(second.final_loss) and first.lora.is_file()


def test_other_options_run(project):
    result = run(quick_request(project, steps=3, train_ff=True, min_snr_gamma=0.0, noise_offset=0.1, flip=True,
                               grad_accum=2, lr_scheduler="cosine", lr_warmup_steps=1, mixed_precision="bf16"))
    from safetensors import safe_open

    with safe_open(str(result.lora), framework="pt") as handle:
        keys = list(handle.keys())
    assert any(".ff.net.2." in k for k in keys) and any(".attn1.to_q." in k for k in keys)
    assert np.isfinite(result.final_loss)


def test_text_encoder_lora_trains_and_exports_both_encoders(project):
    from safetensors import safe_open

    result = run(quick_request(project, steps=3, text_encoder_lora=True, text_encoder_lr=5e-4, save_every=2,
                               sample_every=3))
    with safe_open(str(result.lora), framework="pt") as handle:
        keys = list(handle.keys())
        adapter = json.loads(handle.metadata()["lora_adapter_metadata"])
    assert {k.split(".")[0] for k in keys} == {"unet", "text_encoder", "text_encoder_2"}
    assert adapter["text_encoder.r"] == 4
    with safe_open(str(result.lora_kohya), framework="pt") as handle:
        prefixes = {k.split("_")[1] for k in handle.keys()}
    assert prefixes == {"unet", "te1", "te2"}
    assert len(result.samples) == 1
    from diffusers import StableDiffusionXLPipeline

    from alchemy_engine.models.demo import demo_sdxl_dir

    pipe = StableDiffusionXLPipeline.from_pretrained(demo_sdxl_dir("tiny"))
    pipe.load_lora_weights(str(result.lora))
    for encoder in (pipe.text_encoder, pipe.text_encoder_2):
        assert any("lora_A" in name for name, _ in encoder.named_parameters())


def test_adamw_is_fused_on_the_cpu():
    """One kernel for all LoRA tensors: the per-tensor foreach step cost ~18 ms a step on demo:mid."""
    import torch

    from alchemy_engine.training import optimizers

    param = torch.nn.Parameter(torch.zeros(4))
    optimizer = optimizers.create(TrainRequest(project="unused"), [{"params": [param]}], torch.device("cpu"))
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"]
    param.grad = torch.ones(4)
    optimizer.step()
    assert torch.all(param < 0)


def test_prodigy_optimizer_trains(project):
    pytest.importorskip("prodigyopt")
    result = run(quick_request(project, steps=3, optimizer="prodigy", learning_rate=1.0))
    assert result.steps == 3 and np.isfinite(result.final_loss)


def test_settings_the_engine_changes_are_reported_and_saved(project):
    """8-bit AdamW cannot run on the CPU: the run uses AdamW, says so, and keeps the reason."""
    events = []
    result = run(quick_request(project, optimizer="adamw8bit", steps=2), events.append)
    assert result.settings_changed == {"optimizer": ["adamw8bit", "adamw"]}
    notes = [e.message for e in events if e.stage == "note"]
    assert any(n.startswith("optimizer: adamw8bit → adamw (8-bit AdamW needs bitsandbytes") for n in notes)
    assert any(n.startswith("mixed_precision: auto → no") for n in notes)
    assert set(notes) <= set(result.notes)  # the result also carries the per-phase memory report
    saved = json.loads((result.run_dir / "settings_changed.json").read_text())
    assert saved["optimizer"]["used"] == "adamw" and "bitsandbytes" in saved["optimizer"]["why"]
    request = json.loads((result.run_dir / "train_request.json").read_text())
    assert request["optimizer"] == "adamw"  # what really ran, so a resume runs the same
    assert {e.run_id for e in events if e.run_id} == {result.run_dir.name}
