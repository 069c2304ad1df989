"""Samplers by the names artists know: each builds the diffusers scheduler it claims, on the model's
own noise schedule (v-prediction and zero-terminal SNR included), and leaves the pipeline as it was."""

from __future__ import annotations

import pytest

from alchemy_engine.errors import InvalidRequest
from alchemy_engine.models import prediction, samplers
from alchemy_engine.models.prediction import NoiseSchedule

# name -> (class, options the sampler must have): written out here, not read from the table
EXPECTED = {
    "Euler": ("EulerDiscreteScheduler", {"use_karras_sigmas": False}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler",
                 {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": False,
                  "final_sigmas_type": "zero"}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler",
                        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
    "DPM++ 2M SDE Karras": ("DPMSolverMultistepScheduler",
                            {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
    "DPM++ SDE Karras": ("DPMSolverSDEScheduler", {"use_karras_sigmas": True}),
    "DDIM": ("DDIMScheduler", {"clip_sample": False, "set_alpha_to_one": False}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "LCM": ("LCMScheduler", {}),
}


def _model_scheduler(schedule: NoiseSchedule | None = None):
    from diffusers import EulerDiscreteScheduler

    from alchemy_engine import paths

    euler = EulerDiscreteScheduler.from_pretrained(paths.sdxl_config_dir() / "scheduler")
    return prediction.configure(euler, schedule) if schedule else euler


def test_every_offered_name_is_tested():
    assert set(samplers.SAMPLER_NAMES) == set(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_name_builds_the_scheduler_it_claims_on_the_models_schedule(name):
    model = _model_scheduler()
    built = samplers.build_scheduler(name, model.config)
    class_name, options = EXPECTED[name]
    assert type(built).__name__ == class_name
    for key, value in options.items():
        assert built.config[key] == value, key
    for key in ("beta_start", "beta_end", "beta_schedule", "num_train_timesteps", "prediction_type"):
        assert built.config[key] == model.config[key], key
    assert samplers.sampler_name_of(built) == name
    built.set_timesteps(4)  # it can plan a run (DPM++ SDE draws its noise with torchsde only when stepping)
    assert len(built.timesteps) >= 4


@pytest.mark.parametrize("name", [n for n in EXPECTED if n != "DPM++ SDE Karras"])
def test_a_v_prediction_zero_snr_model_keeps_its_schedule_under_every_sampler(name):
    model = _model_scheduler(NoiseSchedule("v_prediction", True, True))
    built = samplers.build_scheduler(name, model.config)
    assert built.config.prediction_type == "v_prediction"
    assert built.config.rescale_betas_zero_snr is True and built.config.timestep_spacing == "trailing"


def test_a_sampler_that_cannot_do_zero_snr_says_which_can():
    model = _model_scheduler(NoiseSchedule("v_prediction", True, True))
    with pytest.raises(InvalidRequest, match="cannot sample a zero-terminal-SNR model.*DPM\\+\\+ 2M SDE Karras"):
        samplers.build_scheduler("DPM++ SDE Karras", model.config)


def test_one_samplers_options_never_leak_into_the_next():
    karras = samplers.build_scheduler("DPM++ 2M Karras", _model_scheduler().config)
    assert samplers.build_scheduler("Euler", karras.config).config.use_karras_sigmas is False


def test_an_unknown_name_is_refused_with_the_list_and_a_hint():
    with pytest.raises(InvalidRequest, match="did you mean 'DPM\\+\\+ 2M Karras'"):
        samplers.check_sampler("dpm++ 2m karras")
    with pytest.raises(InvalidRequest, match="Euler, Euler a"):
        samplers.check_sampler("k_lms")


def test_the_pipeline_gets_its_own_scheduler_back_even_after_an_error():
    class Pipe:
        scheduler = _model_scheduler()

    pipe, own = Pipe(), Pipe.scheduler
    with pytest.raises(RuntimeError), samplers.sampler_in_use(pipe, "UniPC") as used:
        assert pipe.scheduler is used and type(used).__name__ == "UniPCMultistepScheduler"
        raise RuntimeError("the UNet failed")
    assert pipe.scheduler is own
