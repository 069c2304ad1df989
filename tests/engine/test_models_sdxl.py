"""Finding and loading SDXL: single file (LDM layout), diffusers folder, Hugging Face cache, demo;
always offline."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ldm_layout import write_ldm_checkpoint

from alchemy_engine import paths
from alchemy_engine.errors import ModelError
from alchemy_engine.models.device import DevicePolicy, choose_device_policy, device_policy
from alchemy_engine.models.inventory import find_models, resolve_sdxl
from alchemy_engine.models.sdxl import load_sdxl_pipeline
from alchemy_engine.models.sources import SDXL_REPO_ID

CPU = DevicePolicy("cpu", torch.float32, torch.float32)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ldm_file(shared_cache) -> Path:
    """The tiny demo SDXL written as one LDM/sgm-layout .safetensors (built once per module)."""
    target = shared_cache / "ldm" / "tiny_sdxl_ldm.safetensors"
    if not target.exists():
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("IMAGE_ALCHEMY_CACHE", str(shared_cache))
            pipe = load_sdxl_pipeline("demo", CPU)
        target.parent.mkdir(exist_ok=True)
        write_ldm_checkpoint(pipe, target)
    return target


@pytest.fixture(autouse=True)
def empty_hf_cache(tmp_path, monkeypatch) -> Path:
    """Never see the developer's real Hugging Face cache."""
    cache = tmp_path / "hf-hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:] if len(args) > 1 else args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def _unet_inputs(unet):
    g = torch.Generator().manual_seed(0)
    cfg = unet.config
    text_dim = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
    return dict(
        sample=torch.randn(1, 4, 8, 8, generator=g), timestep=torch.tensor([500]),
        encoder_hidden_states=torch.randn(1, 77, cfg.cross_attention_dim, generator=g),
        added_cond_kwargs={"text_embeds": torch.randn(1, text_dim, generator=g),
                           "time_ids": torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]])},
    )


@torch.inference_mode()
def test_single_file_matches_diffusers_folder_offline(ldm_file, no_network):
    from alchemy_engine.models.demo import demo_sdxl_dir

    folder = load_sdxl_pipeline("demo", CPU)
    single = load_sdxl_pipeline(ldm_file, CPU, config_dir=demo_sdxl_dir())
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        want, got = getattr(folder, name).state_dict(), getattr(single, name).state_dict()
        assert want.keys() == got.keys(), name
        assert all(torch.equal(want[k], got[k]) for k in want), name
    # Same weights; outputs may differ in the last float bit (kernels depend on memory alignment).
    close = dict(rtol=1e-5, atol=1e-5)
    inputs = _unet_inputs(folder.unet)
    torch.testing.assert_close(folder.unet(**inputs).sample, single.unet(**inputs).sample, **close)
    ids = folder.tokenizer("a photo of a dog", return_tensors="pt").input_ids
    torch.testing.assert_close(folder.text_encoder(ids).last_hidden_state,
                               single.text_encoder(ids).last_hidden_state, **close)
    torch.testing.assert_close(folder.text_encoder_2(ids).text_embeds, single.text_encoder_2(ids).text_embeds,
                               **close)
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(folder.vae.decode(latents).sample, single.vae.decode(latents).sample, **close)


def test_real_checkpoints_load_with_the_bundled_configs_offline(ldm_file, no_network, monkeypatch):
    from diffusers import StableDiffusionXLPipeline

    seen = {}

    from diffusers import EulerDiscreteScheduler

    class FakePipe:
        vae = type("V", (), {"register_to_config": staticmethod(lambda **kw: None)})()
        scheduler = EulerDiscreteScheduler.from_pretrained(paths.sdxl_config_dir() / "scheduler")

        def set_progress_bar_config(self, **kw):
            pass

        def to(self, device):
            return self

    def fake_from_single_file(cls, path, **kwargs):
        seen.update(kwargs, path=path)
        return FakePipe()

    monkeypatch.setattr(StableDiffusionXLPipeline, "from_single_file", classmethod(fake_from_single_file))
    load_sdxl_pipeline(ldm_file, CPU)
    assert seen["path"] == str(ldm_file)
    assert seen["config"] == str(paths.sdxl_config_dir()) and seen["local_files_only"] is True
    bundled = paths.sdxl_config_dir()
    index = json.loads((bundled / "model_index.json").read_text())
    for component in index:
        if not component.startswith("_") and isinstance(index[component], list) and index[component][0]:
            assert (bundled / component).is_dir(), component
    for tok in ("tokenizer", "tokenizer_2"):
        assert (bundled / tok / "vocab.json").is_file() and (bundled / tok / "merges.txt").is_file()


def test_bundled_configs_supply_tokenizers_and_scheduler_offline(ldm_file, no_network):
    """The real from_single_file path with the bundled folder; only the weights are the tiny ones."""
    from diffusers import StableDiffusionXLPipeline

    demo = load_sdxl_pipeline("demo", CPU)
    weights = {name: getattr(demo, name) for name in ("unet", "vae", "text_encoder", "text_encoder_2")}
    pipe = StableDiffusionXLPipeline.from_single_file(
        str(ldm_file), config=str(paths.sdxl_config_dir()), local_files_only=True, **weights)
    assert pipe.tokenizer("a photo of sks dog").input_ids == [49406, 320, 1125, 539, 48136, 1929, 49407]
    assert pipe.tokenizer_2.pad_token == "!"
    assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"


def test_demo_loads_through_the_folder_path():
    source = resolve_sdxl("demo")
    assert source.kind == "demo" and (source.path / "model_index.json").is_file()
    pipe = load_sdxl_pipeline(source, CPU)
    assert pipe.unet.dtype == torch.float32 and pipe.device.type == "cpu"
    assert source.fingerprint() == resolve_sdxl("demo").fingerprint()
    with pytest.raises(ModelError, match="unknown demo model"):
        resolve_sdxl("demo:huge")


def test_fp16_policy_keeps_the_vae_safe():
    pipe = load_sdxl_pipeline("demo", DevicePolicy("cpu", torch.float16, torch.float32))
    assert pipe.unet.dtype == torch.float16
    assert pipe.vae.config.force_upcast is True  # pipelines decode in float32: no NaN/black images


def test_diffusers_folder_in_models_dir_is_found(ldm_file):
    from alchemy_engine.models.demo import demo_sdxl_dir

    target = paths.models_dir() / "sdxl" / "my-sdxl"
    shutil.copytree(demo_sdxl_dir(), target)
    shutil.copy(ldm_file, target.parent / "tiny.safetensors")
    (target.parent / "notes.txt").write_text("not a model")
    (target.parent / "old.ckpt").write_bytes(b"\x80\x02}q\x00.")
    found = resolve_sdxl(None)
    assert (found.kind, found.name, found.path) == ("diffusers", "my-sdxl", target)
    assert resolve_sdxl("my-sdxl") == found == resolve_sdxl(str(target))
    assert resolve_sdxl("tiny.safetensors").kind == "single_file"
    listed = find_models().to_dict()["sdxl"]
    assert [e["name"] for e in listed] == ["demo", "demo:mid", "my-sdxl", "tiny", "old.ckpt"]
    assert listed[-1]["kind"] == "unusable" and "never opens pickle files" in listed[-1]["note"]


def _fake_hf_cache(cache: Path, repo_id: str, source: Path, weights: bool = True) -> Path:
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / "0123abcd"
    for file in source.rglob("*"):
        if file.is_file() and (weights or file.suffix != ".safetensors"):
            link = snapshot / file.relative_to(source)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(file)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    return snapshot


def test_hugging_face_cache_is_used_without_downloading(empty_hf_cache, no_network):
    from alchemy_engine.models.demo import demo_sdxl_dir

    snapshot = _fake_hf_cache(empty_hf_cache, SDXL_REPO_ID, demo_sdxl_dir())
    found = resolve_sdxl(None)
    assert (found.kind, found.name, found.path) == ("hf_cache", SDXL_REPO_ID, snapshot)
    assert resolve_sdxl(SDXL_REPO_ID) == found
    assert found.fingerprint() == resolve_sdxl("demo").fingerprint()
    assert load_sdxl_pipeline(found, CPU).unet is not None


def test_configs_only_cache_is_not_a_model(empty_hf_cache):
    from alchemy_engine.models.demo import demo_sdxl_dir

    _fake_hf_cache(empty_hf_cache, SDXL_REPO_ID, demo_sdxl_dir(), weights=False)
    with pytest.raises(ModelError, match="no SDXL model found"):
        resolve_sdxl(None)
    with pytest.raises(ModelError, match="unet/ has no .safetensors weights"):
        resolve_sdxl(SDXL_REPO_ID)
    with pytest.raises(ModelError, match="not in the local Hugging Face cache.*never downloads"):
        resolve_sdxl("someone/other-model")


def test_nothing_found_says_where_to_put_weights():
    with pytest.raises(ModelError) as err:
        resolve_sdxl(None)
    assert str(paths.models_dir() / "sdxl") in str(err.value) and "'demo'" in str(err.value)


def test_refiner_folder_is_refused(tmp_path):
    folder = tmp_path / "refiner"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionXLImg2ImgPipeline", "text_encoder": [None, None],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}))
    with pytest.raises(ModelError, match="StableDiffusionXLImg2ImgPipeline.*no text_encoder"):
        resolve_sdxl(folder)


def test_device_policy_on_this_cpu_machine():
    policy = device_policy("cpu")
    assert (policy.device, policy.dtype, policy.vae_dtype) == ("cpu", torch.float32, torch.float32)
    assert not policy.vae_upcast
    if not torch.cuda.is_available():
        assert device_policy().dtype == torch.float32


@pytest.mark.parametrize("prefer, cuda, bf16, mps, expected", [
    (None, True, True, False, ("cuda", torch.bfloat16, torch.bfloat16)),
    (None, True, False, False, ("cuda", torch.float16, torch.float32)),
    ("cuda:1", True, False, False, ("cuda:1", torch.float16, torch.float32)),
    (None, False, False, True, ("mps", torch.float16, torch.float32)),
    (None, False, False, False, ("cpu", torch.float32, torch.float32)),
    ("cpu", True, True, True, ("cpu", torch.float32, torch.float32)),
])
def test_device_policy_decision(prefer, cuda, bf16, mps, expected):
    policy = choose_device_policy(prefer, cuda_available=cuda, cuda_bf16=bf16, mps_available=mps)
    assert (policy.device, policy.dtype, policy.vae_dtype) == expected


@pytest.mark.parametrize("prefer, words", [("cuda", "no CUDA GPU"), ("mps", "MPS"),
                                           ("tpu", "unknown device")])
def test_device_policy_refuses_unavailable_devices(prefer, words):
    with pytest.raises(ModelError, match=words):
        choose_device_policy(prefer, cuda_available=False, cuda_bf16=False, mps_available=False)


def test_importing_model_modules_does_not_import_torch():
    code = ("import sys, alchemy_engine.models.inventory, alchemy_engine.models.detector, "
            "alchemy_engine.models.probe, alchemy_engine.cli.models_cmd\n"
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'huggingface_hub') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
