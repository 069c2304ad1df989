"""Frozen UNet weights stored in half precision while training computes in fp32 (weight_dtype)."""

from __future__ import annotations

import copy
import dataclasses
import gc
import json
import subprocess
import sys
import types
import weakref
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from train_helpers import quick_request, subprocess_env

from alchemy_engine.errors import InvalidRequest
from alchemy_engine.memory import training as memory
from alchemy_engine.models import half_weights
from alchemy_engine.models.demo import demo_sdxl_fp16_unet_dir
from alchemy_engine.models.device import DevicePolicy
from alchemy_engine.models.sources import SdxlSource, stored_unet_dtype
from alchemy_engine.training import lora_io, run, setup
from alchemy_engine.training.request import TrainRequest

CPU = DevicePolicy("cpu", torch.float32, torch.float32)
MAIN = Path(__file__).resolve().parents[3] / "main.py"
GIB = 1024 ** 3


def _half_exact(module: torch.nn.Module, dtype=torch.float16) -> torch.nn.Module:
    """Round every parameter to ``dtype`` and back, as an fp32 model loaded from a half file is."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.to(dtype).float())
    return module.requires_grad_(False)


@pytest.fixture(scope="module")
def fp16_demo(shared_cache) -> Path:
    with pytest.MonkeyPatch.context() as mp:  # module scope: before the per-test cache setting
        mp.setenv("IMAGE_ALCHEMY_CACHE", str(shared_cache))
        return demo_sdxl_fp16_unet_dir("tiny")


# (a) one layer: bit-identical outputs and input gradients, and only the half weight kept

@pytest.mark.parametrize("make, shape", [
    (lambda: torch.nn.Linear(48, 80), (2, 7, 48)),
    (lambda: torch.nn.Linear(48, 80, bias=False), (5, 48)),
    (lambda: torch.nn.Conv2d(8, 16, 3, padding=1), (2, 8, 12, 12)),
    (lambda: torch.nn.Conv2d(16, 16, 3, stride=2, padding=1), (1, 16, 15, 15)),
    (lambda: torch.nn.Conv2d(16, 32, 1), (2, 16, 9, 9)),
], ids=["linear-3d", "linear-2d-no-bias", "conv3x3", "conv-stride2", "conv1x1"])
@pytest.mark.parametrize("storage", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_a_half_stored_layer_is_bit_identical_to_fp32_and_keeps_only_the_half_weight(make, shape, storage,
                                                                                      monkeypatch):
    torch.manual_seed(0)
    reference = _half_exact(make(), storage)
    layer = copy.deepcopy(reference)
    assert half_weights.store_layer(layer, storage) == reference.weight.numel() * 2
    assert layer.weight.dtype == storage and isinstance(layer, type(reference))
    x = torch.randn(*shape, requires_grad=True)
    expected = reference(x)
    grad_out = torch.randn_like(expected)
    (expected_grad,) = torch.autograd.grad(expected, x, grad_out)
    upcasts = _watch_linear_upcasts(monkeypatch)
    kept: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t) or t, lambda t: t):
        out = layer(x)
    gc.collect()
    assert all(ref() is None for ref in upcasts)  # no fp32 weight alive between forward and backward
    (grad,) = torch.autograd.grad(out, x, grad_out)
    assert torch.equal(out, expected) and torch.equal(grad, expected_grad)
    assert [t.dtype for t in kept] == ([storage] if isinstance(layer, torch.nn.Conv2d) else [])  # nor a conv input
    with torch.no_grad():
        assert torch.equal(layer(x), expected)


@pytest.mark.parametrize("layout", ["transposed", "permuted-4d", "channels-last"])
def test_a_the_input_gradient_is_bit_identical_for_any_input_layout(layout):
    torch.manual_seed(0)
    if layout == "channels-last":
        reference = _half_exact(torch.nn.Conv2d(16, 24, 3, padding=1))
        x = torch.randn(2, 16, 9, 9).to(memory_format=torch.channels_last)
    else:
        reference = _half_exact(torch.nn.Linear(32, 48))
        x = torch.randn(1, 32, 2, 2).permute(0, 2, 3, 1)  # proj_in of a 2×2 latent: a transposed view
        x = x.reshape(1, 4, 32) if layout == "transposed" else x
    layer = copy.deepcopy(reference)
    half_weights.store_layer(layer, torch.float16)
    x.requires_grad_(True)
    expected, out = reference(x), layer(x)
    grad_out = torch.randn_like(expected)
    assert torch.equal(torch.autograd.grad(out, x, grad_out)[0], torch.autograd.grad(expected, x, grad_out)[0])


def test_a_under_torch_compile_a_linear_runs_a_traceable_function_with_the_same_result(monkeypatch):
    torch.manual_seed(0)
    reference = _half_exact(torch.nn.Linear(32, 48))
    layer = copy.deepcopy(reference)
    half_weights.store_layer(layer, torch.float16)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)  # saved-tensor hooks are not traceable
    x = torch.randn(1, 32, 2, 2).permute(0, 2, 3, 1).reshape(1, 4, 32).requires_grad_(True)
    kept: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t) or t, lambda t: t):
        out = layer(x)
    expected = reference(x)
    grad_out = torch.randn_like(expected)
    assert torch.equal(out, expected) and [t.dtype for t in kept] == [torch.float16]
    torch.testing.assert_close(torch.autograd.grad(out, x, grad_out)[0],
                               torch.autograd.grad(expected, x, grad_out)[0], rtol=1e-5, atol=1e-6)


def test_a_half_stored_conv_and_linear_compile_in_one_graph_with_the_eager_result():
    """torch.compile traces both autograd functions, the shared upcast buffer's holder included."""
    torch.manual_seed(0)
    reference = _half_exact(torch.nn.Sequential(torch.nn.Conv2d(4, 4, 1), torch.nn.Conv2d(4, 8, 3, padding=1),
                                                torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 5)))
    model = copy.deepcopy(reference)
    half_weights.store_frozen_weights(model, torch.float16)
    assert [type(m) for m in model][1::2] == [half_weights.HalfStoredConv2d, half_weights.HalfStoredLinear]
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    out = compiled(x)
    expected = reference(x)
    assert torch.equal(out, expected)
    assert torch.equal(torch.autograd.grad(out.sum(), x)[0], torch.autograd.grad(expected.sum(), x)[0])


def _watch_linear_upcasts(monkeypatch) -> list[weakref.ref]:
    """Weak references to every fp32 upcast a half-stored Linear makes in its forward."""
    refs: list[weakref.ref] = []
    original = half_weights._WeightUpcastOnUnpack.__init__

    def init(self, half, full, scratch):
        refs.append(weakref.ref(full))
        original(self, half, full, scratch)

    monkeypatch.setattr(half_weights._WeightUpcastOnUnpack, "__init__", init)
    return refs


def test_a_unets_layers_upcast_into_one_shared_buffer_the_size_of_the_largest_weight(monkeypatch):
    from alchemy_engine.models.demo import build_sdxl_components

    unet = build_sdxl_components("tiny")["unet"].requires_grad_(False)
    half_weights.store_frozen_weights(unet, torch.float16)
    layers = [m for m in unet.modules() if isinstance(m, (half_weights.HalfStoredLinear, half_weights.HalfStoredConv2d))]
    scratch = layers[0].upcast_scratch
    assert len(layers) > 50 and all(m.upcast_scratch is scratch for m in layers)
    pointers: set[int] = set()
    original = half_weights.UpcastScratch.upcast

    def upcast(self, half, dtype):
        full = original(self, half, dtype)
        pointers.add(full.untyped_storage().data_ptr())
        return full

    monkeypatch.setattr(half_weights.UpcastScratch, "upcast", upcast)
    cfg = unet.config
    text_dim = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
    x = torch.randn(1, 4, 16, 16, requires_grad=True)
    out = unet(x, torch.tensor([10]), torch.randn(1, 77, cfg.cross_attention_dim), return_dict=False,
               added_cond_kwargs={"text_embeds": torch.randn(1, text_dim), "time_ids": torch.randn(1, 6)})[0]
    out.square().mean().backward()
    (buffer,) = scratch._buffers.values()  # every forward and backward upcast went into one fp32 buffer
    assert pointers == {buffer.untyped_storage().data_ptr()} and buffer.dtype == torch.float32
    assert buffer.numel() == max(m.weight.numel() for m in layers)
    half_weights.store_frozen_weights(unet, torch.float16)  # again: a no-op that keeps the shared buffer
    assert all(m.upcast_scratch is scratch for m in layers)


def test_the_unet_trains_identically_with_lora_and_checkpointing_and_reports_fp32():
    from alchemy_engine.models.demo import build_sdxl_components

    base = _half_exact(build_sdxl_components("tiny")["unet"])
    cfg = base.config
    text_dim = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
    g = torch.Generator().manual_seed(0)
    args = (torch.randn(1, 4, 16, 16, generator=g), torch.tensor([10]), torch.randn(1, 77, cfg.cross_attention_dim,
                                                                                     generator=g))
    added = {"text_embeds": torch.randn(1, text_dim, generator=g), "time_ids": torch.randn(1, 6, generator=g)}

    def step(half: bool, checkpointing: bool):
        unet = copy.deepcopy(base)
        if half:
            half_weights.store_frozen_weights(unet, torch.float16)
        torch.manual_seed(1)
        params = lora_io.add_unet_lora(unet, 4, 4.0, train_ff=True)
        if checkpointing:
            unet.enable_gradient_checkpointing()
        unet.train()
        out = unet(*args, added_cond_kwargs=added, return_dict=False)[0]
        out.square().mean().backward()
        return unet, out.detach(), [p.grad for p in params], params

    _, expected, expected_grads, _ = step(False, False)
    for checkpointing in (False, True):
        unet, out, grads, params = step(True, checkpointing)
        assert torch.equal(out, expected)
        assert all(torch.equal(a, b) for a, b in zip(grads, expected_grads))
        assert unet.dtype == torch.float32  # what the loop and the preview pipeline cast inputs to
        assert all(p.dtype == torch.float32 and p.requires_grad for p in params)  # LoRA A/B: fp32, trained
        to_q = unet.down_blocks[1].attentions[0].transformer_blocks[0].attn1.to_q
        assert isinstance(to_q.base_layer, half_weights.HalfStoredLinear)
        assert to_q.base_layer.weight.dtype == torch.float16


# (e) the UNet's weight bytes really halve, and the estimate counts them

def test_the_unet_weight_bytes_halve_and_the_estimate_counts_them_exactly():
    from alchemy_engine.models.demo import build_sdxl_components, demo_sdxl_dir

    unet = build_sdxl_components("tiny")["unet"]
    before = sum(p.numel() * p.element_size() for p in unet.parameters())
    saved = half_weights.store_as_asked(unet, "fp16", torch.float32)
    after = sum(p.numel() * p.element_size() for p in unet.parameters())
    assert before - after == saved and 0.50 <= after / before < 0.53  # norms, biases, conv_in stay fp32
    source = SdxlSource("demo", demo_sdxl_dir("tiny"), "demo")
    request = TrainRequest(project="p", resolution=64, gradient_checkpointing="off")
    half = memory.estimate(dataclasses.replace(request, weight_dtype="fp16"), source, CPU, free_bytes=None)
    full = memory.estimate(dataclasses.replace(request, weight_dtype="fp32"), source, CPU, free_bytes=None)
    assert half.parts["unet_weights"] == after and full.parts["unet_weights"] == before
    assert half.parts["activations"] < full.parts["activations"]  # convolutions keep no input either
    assert half_weights.store_as_asked(unet, "fp32", torch.float32) == 0  # fp32 and auto change nothing


# (b) a training run gives the same LoRA with fp16 storage as with fp32

@pytest.mark.parametrize("checkpointing", ["off", "on"])
def test_b_training_on_fp16_weights_gives_the_same_lora_and_previews_as_fp32(project, fp16_demo, checkpointing,
                                                                             monkeypatch):
    from alchemy_engine.training.staged_models import StagedModels

    stored = []  # half-precision UNet weights of each run's training UNet (loaded straight in half)
    original = StagedModels.add_unet

    def add_unet(self, parts):
        parts = original(self, parts)
        stored.append(sum(p.numel() for p in parts["unet"].parameters() if p.dtype == torch.float16))
        return parts

    monkeypatch.setattr(StagedModels, "add_unet", add_unet)
    from alchemy_engine.models import sdxl

    unet_loads = []  # the precision each UNet was loaded in: half storage never builds the fp32 UNet
    load = sdxl.load_sdxl_pipeline

    def spy(source, policy, *args, without=(), **kwargs):
        if "unet" not in without:
            unet_loads.append(policy.dtype)
        return load(source, policy, *args, without=without, **kwargs)

    monkeypatch.setattr(sdxl, "load_sdxl_pipeline", spy)
    results = {}
    for weight_dtype in ("fp32", "fp16"):
        results[weight_dtype] = run(quick_request(project, model=str(fp16_demo), weight_dtype=weight_dtype,
                                                  gradient_checkpointing=checkpointing, sample_every=2))
    full, half = results["fp32"], results["fp16"]
    assert stored[0] == 0 and stored[1] > 0  # the fp16 run's UNet really held half weights
    assert unet_loads == [torch.float32, torch.float16]
    for name in ("lora.safetensors", "lora_kohya.safetensors"):
        expected, got = load_file(full.run_dir / name), load_file(half.run_dir / name)
        assert expected.keys() == got.keys()
        assert all(torch.equal(expected[k], got[k]) for k in expected), name
    assert full.final_loss == half.final_loss and not half.warnings  # lossless: no rounding warning
    assert [p.read_bytes() for p in full.samples] == [p.read_bytes() for p in half.samples]
    assert half.memory_estimate["parts_gib"]["unet_weights"] < full.memory_estimate["parts_gib"]["unet_weights"]


# (c) auto: half only when lossless and fp32 weights do not fit, and it says why

def test_c_auto_stores_half_only_when_lossless_and_short_of_memory(fp16_demo):
    from alchemy_engine.models.inventory import resolve_sdxl

    request = TrainRequest(project="p", resolution=64)  # weight_dtype and checkpointing auto
    lossless = SdxlSource("diffusers", fp16_demo, "fp16 demo")
    need = memory.estimate(dataclasses.replace(request, weight_dtype="fp32", gradient_checkpointing="off"),
                           lossless, CPU, free_bytes=None).need_bytes
    roomy = memory.choose_weight_dtype(request, lossless, CPU, free_bytes=int(need * 1.2))
    tight = memory.choose_weight_dtype(request, lossless, CPU, free_bytes=need)
    unknown = memory.choose_weight_dtype(request, lossless, CPU, free_bytes=None)
    rounding = memory.choose_weight_dtype(request, resolve_sdxl("demo"), CPU, free_bytes=need)
    assert roomy[0] == "fp32" and "GiB free" in roomy[1]
    assert tight[0] == "fp16" and "lossless" in tight[1] and "more than" in tight[1]
    assert unknown[0] == "fp16"
    assert rounding[0] == "fp32" and "stored in fp32" in rounding[1] and "round" in rounding[1]
    bf16 = DevicePolicy("cuda", torch.bfloat16, torch.bfloat16)
    assert memory.choose_weight_dtype(request, lossless, bf16, free_bytes=1)[0] == "bf16"  # same as compute
    assert memory.estimate(request, lossless, CPU, free_bytes=need).request.weight_dtype == "fp16"


def test_c_auto_half_weights_are_reported_saved_and_tried_first_by_fit(project, fp16_demo, monkeypatch):
    request = quick_request(project, model=str(fp16_demo), steps=1)
    source = SdxlSource("diffusers", fp16_demo, "fp16 demo")
    monkeypatch.setattr(memory.memory_phases, "process_bytes", lambda: 500 * 1024 ** 2)
    need = memory.estimate(dataclasses.replace(request, weight_dtype="fp32", gradient_checkpointing="off"),
                           source, CPU, free_bytes=None).need_bytes
    monkeypatch.setattr(memory, "free_device_bytes", lambda device: need)
    events = []
    result = run(request, events.append)
    saved = json.loads((result.run_dir / "train_request.json").read_text())
    changed = json.loads((result.run_dir / "settings_changed.json").read_text())
    assert saved["weight_dtype"] == "fp16"
    assert changed["weight_dtype"]["asked"] == "auto" and "lossless" in changed["weight_dtype"]["why"]
    assert any(e.stage == "note" and e.message.startswith("weight_dtype: auto → fp16") for e in events)
    fitted = memory.fit(dataclasses.replace(request, weight_dtype="fp32", gradient_checkpointing="off"), source,
                        CPU, free_bytes=need - 1)
    assert fitted.changes == {"weight_dtype": ["fp32", "fp16"]} and fitted.fits  # before anything else


def test_a_run_that_fits_keeps_fp32_weights(project):
    result = run(quick_request(project, steps=1))
    assert json.loads((result.run_dir / "train_request.json").read_text())["weight_dtype"] == "fp32"
    assert any(n.startswith("weight_dtype: auto → fp32") for n in result.notes)


# (d) contradictions are refused with one message; rounding is allowed with a warning

@pytest.mark.parametrize("changes, message", [
    (dict(weight_dtype="fp8"), "weight_dtype must be one of auto, fp32, fp16, bf16"),
    (dict(weight_dtype="fp32", mixed_precision="bf16"), "weight_dtype fp32 needs training to compute in fp32"),
    (dict(weight_dtype="fp16", mixed_precision="bf16"), "use weight_dtype auto, or mixed_precision no"),
])
def test_d_contradictory_weight_dtypes_are_refused(changes, message):
    with pytest.raises(InvalidRequest, match=message):
        TrainRequest(project="p", **changes).validate()
    TrainRequest(project="p", weight_dtype="bf16", mixed_precision="bf16").validate()  # the same: fine


def test_d_auto_mixed_precision_on_a_gpu_refuses_an_fp32_weight_dtype(project, monkeypatch):
    monkeypatch.setattr(setup, "precision_policy", lambda request: DevicePolicy("cuda", torch.bfloat16, torch.bfloat16))
    with pytest.raises(InvalidRequest, match="this run computes in bf16"):
        setup.prepare(quick_request(project, weight_dtype="fp32"))


def test_d_explicit_half_on_fp32_weights_is_allowed_with_a_rounding_warning(project):
    run_setup = setup.prepare(quick_request(project, weight_dtype="bf16"))
    assert any("stored in fp32, so storing them in bf16 rounds them" in w for w in run_setup.warnings)


def test_the_stored_unet_dtype_is_read_from_the_headers(tmp_path, fp16_demo):
    from alchemy_engine.models.demo import demo_sdxl_dir

    assert stored_unet_dtype(SdxlSource("diffusers", fp16_demo, "x"))[0] == "fp16"
    assert stored_unet_dtype(SdxlSource("demo", demo_sdxl_dir("tiny"), "demo"))[0] == "fp32"
    unet = "model.diffusion_model.input_blocks.0.0."
    single = tmp_path / "model.safetensors"
    save_file({unet + "weight": torch.zeros(4, 4, dtype=torch.bfloat16), unet + "bias": torch.zeros(4),
               "first_stage_model.w": torch.zeros(2, 2)}, single)
    assert stored_unet_dtype(SdxlSource("single_file", single, "x"))[0] == "bf16"  # 1-d and VAE tensors ignored
    save_file({unet + "weight": torch.zeros(4, 4, dtype=torch.float16), unet + "w2": torch.zeros(4, 4)}, single)
    assert stored_unet_dtype(SdxlSource("single_file", single, "x")) == (None, "its UNet weights are stored as "
                                                                               "F16, F32")
    single.write_bytes(b"not a safetensors file")
    assert stored_unet_dtype(SdxlSource("single_file", single, "x"))[0] is None


# the memory estimate of a half-weights run stays within 15 % of every measured phase

@pytest.mark.calibration
def test_half_weights_estimate_is_within_15_percent_of_every_measured_phase_on_demo_mid(project, shared_cache):
    """In a fresh process (memory a previous test freed would be reused, below the estimate)."""
    model = demo_sdxl_fp16_unet_dir("mid")
    command = [sys.executable, str(MAIN), "train", str(project.root), "--model", str(model), "--json",
               "--resolution", "256", "--rank", "16", "--steps", "2", "--weight-dtype", "fp16",
               "--save-every", "0", "--sample-every", "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env=subprocess_env(Path(project.root).parents[1], shared_cache))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    phases = json.loads((Path(result["run_dir"]) / "memory.json").read_text())["phases"]
    ratios = {name: row["host_ratio"] for name, row in phases.items()}
    print("estimate / measured:", ratios)
    assert set(ratios) == {"loading", "caching", "training"}
    assert all(0.85 <= r <= 1.15 for r in ratios.values()), ratios
    assert result["memory_estimate"]["settings"]["weight_dtype"] == "fp16"


def test_an_estimate_only_source_keeps_fp32_weights():
    request = TrainRequest(project="p")
    config_only = types.SimpleNamespace(path=Path("resources/sdxl"))  # what estimates of full SDXL use: no kind
    choice, why = memory.choose_weight_dtype(request, config_only, CPU, free_bytes=1)
    assert choice == "fp32" and "unknown" in why
