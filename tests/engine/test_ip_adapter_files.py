"""IP-Adapter files and CLIP vision encoders: told apart by header, refused in one line, pickles never opened."""

from __future__ import annotations

import inspect
import json
import pickle
from pathlib import Path

import pytest
from ldm_layout import write_fake_safetensors

from alchemy_engine.cli import main as cli_main
from alchemy_engine.errors import ModelError
from alchemy_engine.models.ip_adapter_files import inspect_ip_adapter

# SDXL's 70 cross-attention layers: hidden 640 in down 1 / up 1, 1280 in down 2 / mid / up 0
_SDXL_ROWS = [640] * 4 + [1280] * 20 + [1280] * 10 + [1280] * 30 + [640] * 6


def _pairs(rows: list[int], cross: int = 2048) -> dict[str, list[int]]:
    shapes = {}
    for index, hidden in enumerate(rows):
        for part in ("k", "v"):
            shapes[f"ip_adapter.{2 * index + 1}.to_{part}_ip.weight"] = [hidden, cross]
    return shapes


PLAIN = {"image_proj.proj.weight": [4 * 2048, 1280], "image_proj.proj.bias": [4 * 2048],
         "image_proj.norm.weight": [2048], "image_proj.norm.bias": [2048]}
PLUS = {"image_proj.latents": [1, 16, 1280], "image_proj.proj_in.weight": [1280, 1280],
        "image_proj.proj_out.weight": [2048, 1280], "image_proj.norm_out.weight": [2048]}


def test_h94_adapters_are_told_apart_by_header_and_name(tmp_path):
    cases = {"ip-adapter_sdxl.safetensors": (PLAIN, "plain", "ViT-bigG", 4),
             "ip-adapter_sdxl_vit-h.safetensors": ({**PLAIN, "image_proj.proj.weight": [8192, 1024]}, "plain", "ViT-H", 4),
             "ip-adapter-plus_sdxl_vit-h.safetensors": (PLUS, "plus", "ViT-H", 16),
             "ip-adapter-plus-face_sdxl_vit-h.safetensors": (PLUS, "plus_face", "ViT-H", 16)}
    for name, (projection, variant, encoder, tokens) in cases.items():
        info = inspect_ip_adapter(write_fake_safetensors(tmp_path / name, {**projection, **_pairs(_SDXL_ROWS)}))
        assert (info.variant, info.encoder, info.tokens, info.layers, info.cross_width) == (
            variant, encoder, tokens, 70, 2048), name


@pytest.mark.parametrize("name,shapes,words", [
    ("ip-adapter-faceid_sdxl.safetensors", {"image_proj.proj.0.weight": [1024, 512], "image_proj.norm.weight": [2048],
                                            **_pairs([640]), "ip_adapter.1.to_k_lora.down.weight": [128, 640]},
     "FaceID"),
    ("ip-adapter-faceid-plusv2_sdxl.safetensors", {"image_proj.perceiver_resampler.proj_in.weight": [1280, 1280],
                                                   **_pairs([640])}, "FaceID"),
    ("ip-adapter-full-face_sd15.safetensors", {"image_proj.proj.3.weight": [768], **_pairs([320], 768)}, "Full-Face"),
    ("ip-adapter_sd15.safetensors", {"image_proj.proj.weight": [3072, 1024], **_pairs([320, 320], 768)},
     "Stable Diffusion 1.x"),
])
def test_unsupported_adapters_are_refused_in_one_line(tmp_path, name, shapes, words):
    path = write_fake_safetensors(tmp_path / name, shapes)
    with pytest.raises(ModelError, match=words) as caught:
        inspect_ip_adapter(path)
    assert "\n" not in str(caught.value) and name in str(caught.value)


def test_an_adapter_for_another_layout_is_refused_against_the_unet(tmp_path):
    from diffusers import UNet2DConditionModel

    from alchemy_engine.models.demo import demo_sdxl_dir
    from alchemy_engine.models.demo.ip_adapter import demo_ip_adapter
    from alchemy_engine.models.ip_adapter_files import check_fits

    unet = UNet2DConditionModel.from_pretrained(demo_sdxl_dir() / "unet")
    check_fits(inspect_ip_adapter(demo_ip_adapter(unet)), unet)  # the demo one fits
    sdxl = inspect_ip_adapter(write_fake_safetensors(tmp_path / "ip-adapter_sdxl.safetensors",
                                                     {**PLAIN, **_pairs(_SDXL_ROWS)}))
    with pytest.raises(ModelError, match="cross-attention width of 2048, but this SDXL model's is 80"):
        check_fits(sdxl, unet)
    short = inspect_ip_adapter(write_fake_safetensors(tmp_path / "ip-adapter_short.safetensors", {
        "image_proj.proj.weight": [320, 24], **_pairs([32] * 5, cross=80)}))
    with pytest.raises(ModelError, match="has 5 cross-attention layers; this model has 7"):
        check_fits(short, unet)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_adapter_is_refused_by_name_and_never_unpickled(tmp_path, capsys):
    marker = tmp_path / "payload-ran"
    trap = tmp_path / "ip-adapter_sdxl.bin"
    trap.write_bytes(pickle.dumps(_Payload(marker)))
    write_fake_safetensors(tmp_path / "ip-adapter_sdxl.safetensors", {**PLAIN, **_pairs(_SDXL_ROWS)})
    with pytest.raises(ModelError, match="use ip-adapter_sdxl.safetensors beside it"):
        inspect_ip_adapter(trap)
    assert cli_main(["models", "check", str(trap)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert not marker.exists()
    pickle.loads(trap.read_bytes())  # the trap is real: unpickling it runs the payload
    assert marker.exists()


def test_models_check_describes_an_adapter(tmp_path, capsys):
    path = write_fake_safetensors(tmp_path / "ip-adapter-plus_sdxl_vit-h.safetensors", {**PLUS, **_pairs(_SDXL_ROWS)})
    assert cli_main(["models", "check", "--json", str(path)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (result["kind"], result["variant"], result["encoder"], result["usable"]) == ("ip_adapter", "plus", "ViT-H", True)
    renamed = path.rename(tmp_path / "reference.safetensors")  # found by header, not by name
    assert cli_main(["models", "check", "--json", str(renamed)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["family"] == "ip_adapter"


def test_single_file_encoders_match_a_bundled_config_and_load_like_the_folder(tmp_path, monkeypatch):
    import torch

    from alchemy_engine.models import clip_vision
    from alchemy_engine.models.demo.ip_adapter import DEMO_ENCODER, demo_clip_vision_dir

    folder = clip_vision.encoder_source(demo_clip_vision_dir())
    single = tmp_path / "clip-vision_demo.safetensors"
    single.write_bytes(folder.weights.read_bytes())
    with pytest.raises(ModelError, match="neither ViT-H nor ViT-bigG"):
        clip_vision.encoder_source(single)
    bundled = clip_vision.bundled_config
    monkeypatch.setattr(clip_vision, "BUNDLED", (*clip_vision.BUNDLED, "demo"))
    monkeypatch.setattr(clip_vision, "bundled_config", lambda name: (
        {"hidden_act": "quick_gelu", **DEMO_ENCODER} if name == "demo" else bundled(name)))
    source = clip_vision.encoder_source(single)
    assert source.name == "demo" and source.projection_width == 24 and source.hidden_width == 32
    pixels = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = clip_vision.load_encoder(source, "cpu", torch.float32)(pixels).image_embeds
        b = clip_vision.load_encoder(folder, "cpu", torch.float32)(pixels).image_embeds
    assert torch.equal(a, b)
    for name in ("vit-h", "vit-bigg"):  # the bundled configs are the real encoders' shapes
        config = bundled(name)
        assert (config["hidden_size"], config["projection_dim"]) in ((1280, 1024), (1664, 1280))


def test_encoder_folders_refuse_pickles_and_wrong_widths(tmp_path):
    from alchemy_engine.models import clip_vision
    from alchemy_engine.models.demo.ip_adapter import demo_clip_vision_dir

    only_bin = tmp_path / "image_encoder"
    only_bin.mkdir()
    (only_bin / "config.json").write_text("{}")
    (only_bin / "pytorch_model.bin").write_bytes(b"\x80")
    with pytest.raises(ModelError, match="pickle file the app never opens"):
        clip_vision.encoder_source(only_bin)
    adapter = tmp_path / "ip-adapter.safetensors"
    with pytest.raises(ModelError, match="gives projection width 24, but ip-adapter.safetensors reads 1280"):
        clip_vision.matching_encoder(demo_clip_vision_dir(), adapter, "projection", 1280)
    with pytest.raises(ModelError, match="no CLIP vision encoder found"):
        clip_vision.matching_encoder(None, adapter, "hidden", 1280)


def test_the_private_diffusers_converter_we_rely_on_still_exists():
    from diffusers import UNet2DConditionModel

    convert = UNet2DConditionModel._convert_ip_adapter_image_proj_to_diffusers
    assert list(inspect.signature(convert).parameters)[:3] == ["self", "state_dict", "low_cpu_mem_usage"]


def test_demo_adapters_are_refused_on_a_real_sdxl_model():
    from types import SimpleNamespace

    from alchemy_engine.models.inventory import ip_adapter_file

    real = SimpleNamespace(config=SimpleNamespace(cross_attention_dim=2048))
    with pytest.raises(ModelError, match="tiny random adapter for the demo model"):
        ip_adapter_file("demo-plus", real)
