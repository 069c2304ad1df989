"""Training a v-prediction / zero-terminal-SNR model: the target is the scheduler's velocity, min-SNR
takes its v form, and the run and its LoRA say what the model predicts. Epsilon models are unchanged."""

from __future__ import annotations

import json

import pytest
import torch
from train_helpers import quick_request

from alchemy_engine.models import prediction
from alchemy_engine.models.prediction import NoiseSchedule
from alchemy_engine.training import loop

V_ZERO_SNR = NoiseSchedule("v_prediction", True, True)


def _scheduler(schedule: NoiseSchedule | None):
    from diffusers import DDPMScheduler, EulerDiscreteScheduler

    from alchemy_engine import paths

    euler = EulerDiscreteScheduler.from_pretrained(paths.sdxl_config_dir() / "scheduler")
    configured = prediction.configure(euler, schedule) if schedule else euler
    return configured, DDPMScheduler.from_config(configured.config)


@pytest.mark.parametrize("schedule", [V_ZERO_SNR, NoiseSchedule("v_prediction"), None])
def test_the_training_target_is_the_schedulers_velocity_for_v_models(schedule, project):
    scheduler, ddpm = _scheduler(schedule)
    tables = loop._noise_tables(scheduler, quick_request(project), torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    latents, noise = torch.randn(4, 4, 8, 8, generator=generator), torch.randn(4, 4, 8, 8, generator=generator)
    timesteps = torch.tensor([0, 500, 998, 999])
    noisy, target = loop.noised_and_target(tables, latents, noise, timesteps)
    torch.testing.assert_close(noisy, ddpm.add_noise(latents, noise, timesteps))
    expected = ddpm.get_velocity(latents, noise, timesteps) if schedule else noise
    torch.testing.assert_close(target, expected)
    if schedule and schedule.zero_terminal_snr:  # the last step is pure noise: the velocity is −latents
        torch.testing.assert_close(target[3], -latents[3])


def test_min_snr_takes_its_v_form_and_stays_finite_at_zero_snr(project):
    request = quick_request(project, min_snr_gamma=5.0)
    for schedule in (V_ZERO_SNR, NoiseSchedule("epsilon", True, True), None):
        scheduler, ddpm = _scheduler(schedule)
        weights = loop._noise_tables(scheduler, request, torch.device("cpu"))["snr_weight"]
        alphas = ddpm.alphas_cumprod.double()
        snr = alphas / (1 - alphas)
        assert torch.isfinite(weights).all()
        if schedule is not None and schedule.is_v:
            torch.testing.assert_close(weights.double(), torch.clamp(snr, max=5.0) / (snr + 1), rtol=1e-5, atol=0)
            assert weights[-1] == 0  # SNR 0 at the last step
        else:
            assert weights[0].item() == pytest.approx(5.0 / snr[0].item(), rel=1e-5)
            assert weights[-1] == 1.0  # min(SNR, γ) / SNR with SNR below γ, and its limit at SNR 0


def _metadata(path):
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        return handle.metadata()


@pytest.mark.parametrize(("model", "expected"), [("demo:vpred", "v_prediction"), ("demo", "epsilon")])
def test_a_run_records_what_its_model_predicts(project, monkeypatch, model, expected):
    from alchemy_engine.training import run

    seen = []
    original = loop._noise_tables
    monkeypatch.setattr(loop, "_noise_tables", lambda *a: seen.append(original(*a)) or seen[-1])
    result = run(quick_request(project, model=model, steps=1))
    assert bool(seen[0]["v_pred"]) is (expected == "v_prediction")
    changed = json.loads((result.run_dir / "settings_changed.json").read_text())["prediction_type"]
    assert changed["asked"] == "auto" and changed["used"] == expected
    assert any("prediction_type: auto → " + expected in note for note in result.notes)
    ours = _metadata(result.lora)
    assert ours["alchemy.prediction_type"] == expected
    kohya = _metadata(result.lora_kohya)
    assert kohya["ss_v_parameterization"] == str(expected == "v_prediction")
    assert kohya["ss_zero_terminal_snr"] == str(expected == "v_prediction")  # the demo v file is zero-SNR too
