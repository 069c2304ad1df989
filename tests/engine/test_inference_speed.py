"""Inference speed-ups by device: what is applied on the CPU, tiled VAE by size, compile fallback."""

from __future__ import annotations

import types

import torch

from alchemy_engine.models import inference_speed, torch_compile


def _pipe():
    from diffusers import StableDiffusionXLPipeline

    from alchemy_engine.models.demo import build_sdxl_components

    return StableDiffusionXLPipeline(**build_sdxl_components("tiny"))


def test_on_the_cpu_only_sdpa_no_fusing_no_compile_with_a_note():
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    pipe = _pipe()
    pipe.unet.set_attn_processor(AttnProcessor())  # e.g. left by another tool: undone
    state = inference_speed.prepare(pipe, "cpu", "auto")
    processors = [*pipe.unet.attn_processors.values(), *pipe.vae.attn_processors.values()]
    assert processors and all(isinstance(p, AttnProcessor2_0) for p in processors)
    assert not state.compiled and state.fused == 0 and not state.channels_last
    assert not torch_compile.is_compiled(pipe.unet)
    [note] = state.take_notes()  # auto says what it chose, and how to change it
    assert note.startswith("compile: off") and "--compile on" in note
    assert state.take_notes() == []  # shown once
    forced = inference_speed.prepare(_pipe(), "cpu", "on")
    assert forced.compiled and forced.take_notes() == []  # asked for: done, nothing to explain


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
