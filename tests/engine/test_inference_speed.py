"""Inference speed-ups by device: what is applied on the CPU, tiled VAE by size, compile fallback."""

from __future__ import annotations

import types

import torch

from alchemy_engine.models import inference_speed


def _pipe():
    from diffusers import StableDiffusionXLPipeline

    from alchemy_engine.models.demo import build_sdxl_components

    return StableDiffusionXLPipeline(**build_sdxl_components("tiny"))


def test_on_the_cpu_only_sdpa_no_fusing_no_compile_with_a_note():
    pipe = _pipe()
    state = inference_speed.prepare(pipe, "cpu", "auto")
    assert not state.compiled and state.fused == 0 and not state.channels_last
    assert state.take_notes() == [
        "compile: off (auto: off on cpu, where compiling takes minutes and did not repay them (on a CPU the "
        "compiled step was slower; bench/compile_bench.py); --compile on forces it)"]
    assert state.take_notes() == []  # shown once


def test_vae_tiles_above_two_megapixels_only():
    pipe = _pipe()
    inference_speed.vae_tiling(pipe, 2048, 1536)
    assert pipe.vae.use_tiling
    inference_speed.vae_tiling(pipe, 1024, 1024)
    assert not pipe.vae.use_tiling


def test_a_failing_compile_reruns_eagerly_and_leaves_a_note():
    def broken(graph, example_inputs):
        raise RuntimeError("inductor is not available")

    torch._dynamo.reset()
    unet = torch.nn.Linear(4, 4)
    unet.compile(backend=broken)
    pipe = types.SimpleNamespace(unet=unet)
    x = torch.ones(1, 4)
    out = inference_speed.call_with_fallback(pipe, lambda: pipe.unet(x))
    torch.testing.assert_close(out, torch.nn.functional.linear(x, unet.weight, unet.bias))
    note = inference_speed.compile_failure(pipe)
    assert note is not None and "inductor is not available" in note and note.startswith("compile: on → off")
    assert inference_speed.compile_failure(pipe) is None
    state = inference_speed.SpeedState()
    assert state.compile_notice(unet, (64, 64)) is None  # eager now: nothing to announce
