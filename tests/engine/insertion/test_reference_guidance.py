"""Reference guidance (IP-Adapter) in insertion, end to end on the tiny demo SDXL and demo adapters."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from insert_helpers import TINY_WORK, noisy_scene, read_rgb, write_mask
from PIL import Image

from alchemy_engine.insertion import InsertRequest, LocateOptions, run
from alchemy_engine.insertion.metadata import REQUEST_KEY, RESULT_KEY, read_png_text


@pytest.fixture()
def photos_project(project, tmp_path):
    """'Rex' with three photos, two of them with subject masks."""
    from alchemy_engine.project.reference_masks import write_mask as write_photo_mask

    files = []
    for i in range(3):
        rng = np.random.default_rng(10 + i)
        path = tmp_path / f"photo{i}.png"
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8), "RGB").save(path)
        files.append(path)
    project.import_photos(files)
    for photo in project.reference_photos()[:2]:
        mask = np.zeros((photo.height, photo.width), dtype=bool)
        mask[40:200, 60:180] = True
        write_photo_mask(photo, mask)
    return project


def _request(tmp_path, **changes) -> InsertRequest:
    scene = noisy_scene(tmp_path / "scene.png", (128, 96))
    mask = write_mask(tmp_path / "mask.png", (128, 96), (30, 20, 90, 80))
    base = dict(project="Rex", model="demo", scene=scene, locate=LocateOptions(mask=mask, grow=2, feather=2.0),
                steps=3, seed=5, work_pixels=TINY_WORK, strength=0.9, guidance=3.0)
    return InsertRequest(**{**base, **changes})


def test_guided_insertion_records_the_adapter_and_changes_only_the_inside(tmp_path, photos_project, session):
    plain = run(_request(tmp_path), session=session)
    guided = run(_request(tmp_path, ip_adapter="demo", ip_scale=1.0, out=tmp_path / "out"), session=session)
    zero = run(_request(tmp_path, ip_adapter="demo", ip_scale=0.0), session=session)
    a, b, c = (read_rgb(r.project_outputs[0]) for r in (plain, guided, zero))
    alpha = np.asarray(Image.open(guided.mask))
    assert np.array_equal(a, c)  # scale 0: bit-identical to no adapter
    assert np.array_equal(b[alpha == 0], a[alpha == 0])  # outside the mask: untouched
    assert np.abs(b[alpha > 0].astype(int) - a[alpha > 0]).mean() > 0.5
    text = read_png_text(guided.outputs[0])
    reference = json.loads(text[RESULT_KEY])["reference"]
    assert reference["adapter"].startswith("ip-adapter_demo") and reference["scale"] == 1.0
    assert reference["photos"] == [p.name for p in photos_project.reference_photos()[:2]]  # the masked ones
    assert len(reference["adapter_hash"]) == 10 and reference["mode"] == "full"
    assert InsertRequest.from_json(text[REQUEST_KEY]).ip_adapter == "demo"  # Reuse parameters


def test_detach_restores_the_exact_processors_and_weights(session):
    from alchemy_engine.insertion.reference_guidance import attached
    from alchemy_engine.models.demo.ip_adapter import demo_ip_adapter
    from alchemy_engine.models.ip_adapter_files import read_adapter

    unet = session.sdxl("demo").base.unet
    before = dict(unet.attn_processors)
    params = {n: (p.dtype, p.data_ptr()) for n, p in unet.named_parameters()}
    sample = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    text = torch.randn(2, 7, unet.config.cross_attention_dim, generator=torch.Generator().manual_seed(1))
    added = {"text_embeds": torch.zeros(2, 32), "time_ids": torch.zeros(2, 6)}
    with torch.no_grad():
        reference = unet(sample, 10, text, added_cond_kwargs=added).sample
    for plus in (True, False, True):  # attach → detach → attach works for Plus
        weights = read_adapter(demo_ip_adapter(unet, plus=plus))
        with attached(unet, weights, torch.float32) as processors:
            assert len(processors) == 7 and unet.config.encoder_hid_dim_type == "ip_image_proj"
            with pytest.raises(ValueError, match="image_embeds"):  # scenes must run detached
                unet(sample, 10, text, added_cond_kwargs=added)
            calls = []
            unet.encoder_hid_proj.image_projection_layers[0].register_forward_hook(lambda *a, calls=calls: calls.append(1))
            width = 32 if plus else 24
            embeds = [torch.zeros((2, 1, 50, width) if plus else (2, 1, width))]
            with torch.no_grad():
                for _ in range(3):  # the steps of one pipeline call: projected once
                    unet(sample, 10, text, added_cond_kwargs={**added, "image_embeds": embeds})
            assert len(calls) == 1
        after = dict(unet.attn_processors)
        assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)
        assert unet.encoder_hid_proj is None and unet.config.encoder_hid_dim_type is None
    assert {n: (p.dtype, p.data_ptr()) for n, p in unet.named_parameters()} == params
    with torch.no_grad():
        assert torch.equal(unet(sample, 10, text, added_cond_kwargs=added).sample, reference)


def test_guidance_outside_the_insertion_mask_is_exactly_off():
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    from alchemy_engine.insertion.reference_guidance import ReferenceAttnProcessor

    torch.manual_seed(0)
    attn = Attention(query_dim=16, cross_attention_dim=12, heads=2, dim_head=8)
    hidden, text, tokens = torch.randn(2, 4 * 6, 16), torch.randn(2, 5, 12), [torch.randn(2, 1, 4, 12)]
    proc = ReferenceAttnProcessor(AttnProcessor2_0(), 16, 12, torch.randn(16, 12), torch.randn(16, 12))
    proc.scale = 1.0
    mask = torch.zeros(1, 1, 8, 12)
    mask[..., :4, :6] = 1.0  # top-left quarter of the 8x12 latent; the layer is 4x6 (one level down)
    proc.set_mask(mask)
    plain = AttnProcessor2_0()(attn, hidden, text)
    guided = proc(attn, hidden, (text, tokens))
    inside = torch.zeros(4, 6, dtype=torch.bool)
    inside[:2, :3] = True
    inside = inside.flatten()
    assert torch.allclose(guided[:, ~inside], plain[:, ~inside], atol=1e-6)
    assert (guided[:, inside] - plain[:, inside]).abs().mean() > 1e-3
    proc.scale = 0.0
    assert torch.equal(proc(attn, hidden, (text, tokens)), plain)


def test_second_insertion_reads_cached_embeddings_and_batches_equal_singles(tmp_path, photos_project, session,
                                                                            monkeypatch):
    from alchemy_engine.models import clip_vision

    loads = []
    real = clip_vision.load_encoder
    monkeypatch.setattr(clip_vision, "load_encoder", lambda *a, **k: loads.append(1) or real(*a, **k))
    guided = dict(ip_adapter="demo-plus", ip_scale=0.8, ip_range="0:0.7", ip_mode="full")
    batch = run(_request(tmp_path, variations=2, batch_size="2", **guided), session=session)
    assert len(loads) == 1
    singles = [run(_request(tmp_path, seed=seed, **guided), session=session) for seed in batch.seeds]
    assert len(loads) == 1  # the encoder was never loaded again
    for together, alone in zip(batch.project_outputs, singles):
        # as in test_batch_variations: batched sums round differently, at most one level on a few pixels
        diff = np.abs(read_rgb(together).astype(int) - read_rgb(alone.project_outputs[0]))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.005
    cached = list((photos_project.cache_dir / "reference_embeddings").glob("*.safetensors"))
    assert len(cached) == 3  # two photos and the Plus negative


def test_range_and_mode_change_the_result(tmp_path, photos_project, session):
    base = dict(ip_adapter="demo", ip_scale=1.5)
    full = read_rgb(run(_request(tmp_path, **base), session=session).project_outputs[0])
    late = read_rgb(run(_request(tmp_path, ip_range="0.5:1", **base), session=session).project_outputs[0])
    style = read_rgb(run(_request(tmp_path, ip_mode="style", **base), session=session).project_outputs[0])
    assert not np.array_equal(full, late) and not np.array_equal(full, style)
    plain_no_cfg = read_rgb(run(_request(tmp_path, guidance=1.0), session=session).project_outputs[0])
    no_cfg = read_rgb(run(_request(tmp_path, guidance=1.0, **base), session=session).project_outputs[0])
    assert not np.array_equal(plain_no_cfg, no_cfg)  # without CFG the pipeline gets the positive half only


def test_block_factors_follow_the_unets_own_layout():
    from types import SimpleNamespace

    from alchemy_engine.insertion.reference_guidance import active, block_factors

    names = [f"down_blocks.{b}.attentions.{a}.transformer_blocks.0.attn2.processor" for b in (1, 2) for a in (0, 1)]
    names += [f"up_blocks.{b}.attentions.{a}.transformer_blocks.0.attn2.processor" for b in (0, 1) for a in (0, 1, 2)]
    names += ["mid_block.attentions.0.transformer_blocks.0.attn2.processor"]
    unet = SimpleNamespace(config=SimpleNamespace(block_out_channels=[320, 640, 1280]),
                           attn_processors=dict.fromkeys(names))
    style = [n for n, f in block_factors(unet, "style").items() if f]
    layout = [n for n, f in block_factors(unet, "layout").items() if f]
    assert style == ["up_blocks.0.attentions.1.transformer_blocks.0.attn2.processor"]
    assert layout == ["down_blocks.2.attentions.1.transformer_blocks.0.attn2.processor"]
    assert all(block_factors(unet, "full").values())
    assert [active(i, 10, 0.2, 0.8) for i in range(10)] == [False] * 2 + [True] * 6 + [False] * 2
    assert all(active(i, 3, 0.0, 1.0) for i in range(3))


def test_bad_reference_settings_are_refused_before_loading(tmp_path):
    from alchemy_engine.errors import InvalidRequest

    for changes, message in ((dict(ip_range="0.8:0.2"), "START:END"), (dict(ip_scale=2.0), "between 0 and 1.5"),
                             (dict(ip_mode="pose"), "full, style, layout"),
                             (dict(ip_adapter=str(tmp_path / "missing.safetensors")), "not found")):
        with pytest.raises(InvalidRequest, match=message):
            _request(tmp_path, **changes).validate()


def test_insert_command_with_the_demo_adapter(tmp_path, photos_project, capsys):
    from alchemy_engine.cli import main

    scene = noisy_scene(tmp_path / "scene.png", (96, 64))
    mask = write_mask(tmp_path / "m.png", (96, 64), (10, 10, 60, 50))
    code = main(["insert", "Rex", "--model", "demo", "--ip-adapter", "demo", "--ip-scale", "0.7",
                 "--ip-range", "0.2:0.8", "--ip-mode", "layout", "--scene", str(scene), "--mask", str(mask),
                 "--seed", "1", "--steps", "2", "--work-size", "128", "--out", str(tmp_path / "out"), "--json"])
    assert code == 0
    result = json.loads([line for line in capsys.readouterr().out.splitlines() if line.strip()][-1])
    reference = json.loads(read_png_text(result["outputs"][0])[RESULT_KEY])["reference"]
    assert (reference["scale"], reference["range"], reference["mode"]) == (0.7, [0.2, 0.8], "layout")
    assert reference["adapter"].startswith("ip-adapter_demo")
    bin_file = tmp_path / "ip-adapter_sdxl.bin"
    bin_file.write_bytes(b"\x80\x04not opened")
    code = main(["insert", "Rex", "--model", "demo", "--ip-adapter", str(bin_file), "--scene", str(scene),
                 "--mask", str(mask), "--seed", "1", "--steps", "2", "--work-size", "128", "--out", str(tmp_path)])
    assert code == 2
    assert "pickle file" in capsys.readouterr().err


def test_ranking_works_with_guidance_on(tmp_path, photos_project, session):
    result = run(_request(tmp_path, ip_adapter="demo", variations=2, rank=True, eval_models="demo"), session=session)
    assert len(result.scores) == 2 and all("dino_subject" in s for s in result.scores)


def test_half_stored_unet_weights_stay_half_and_plain_insertion_is_unchanged_after(tmp_path, photos_project,
                                                                                   monkeypatch):
    from alchemy_engine.insertion import InsertionSession
    from alchemy_engine.models.demo import demo_sdxl_fp16_unet_dir

    model = str(demo_sdxl_fp16_unet_dir("tiny"))
    monkeypatch.setattr("alchemy_engine.models.device.free_device_bytes", lambda device: 64 * 1024 ** 2)
    session = InsertionSession()
    before = read_rgb(run(_request(tmp_path, model=model), session=session).project_outputs[0])
    unet = session.sdxl(model).base.unet
    dtypes = {name: p.dtype for name, p in unet.named_parameters()}
    assert torch.float16 in dtypes.values()  # the UNet's weights are kept in half
    run(_request(tmp_path, model=model, ip_adapter="demo-plus", ip_scale=1.0), session=session)
    assert {name: p.dtype for name, p in unet.named_parameters()} == dtypes
    after = read_rgb(run(_request(tmp_path, model=model), session=session).project_outputs[0])
    assert np.array_equal(before, after)  # detached: as if never attached
    session.release()
