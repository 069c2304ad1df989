"""LoRAs from elsewhere load into the insertion session and apply fully, or are refused; a style
LoRA stacks on the subject's LoRA at its own scale."""

from __future__ import annotations

import pytest
import torch
from foreign_loras import adapted_pipe, kohya_tensors, outputs, peft_tensors
from insert_helpers import TINY_WORK, noisy_scene, write_mask
from safetensors.torch import save_file

from alchemy_engine.errors import InvalidRequest, ModelError
from alchemy_engine.insertion import InsertRequest, LocateOptions, run
from alchemy_engine.insertion.metadata import parse_parameters, read_png_text

RANK, ALPHA = 4, 2.0


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    """The adapted pipeline's outputs, and its LoRA written in three layouts from other tools."""
    folder = tmp_path_factory.mktemp("foreign")
    pipe = adapted_pipe(RANK, ALPHA)
    files = {}
    for layout, tensors in (("kohya", kohya_tensors(pipe, ALPHA)), ("kohya_sgm", kohya_tensors(pipe, ALPHA, sgm=True))):
        files[layout] = folder / f"{layout}.safetensors"
        save_file(tensors, str(files[layout]), metadata={"ss_output_name": "from elsewhere"})
    same_scale = adapted_pipe(RANK, float(RANK))  # a peft file without metadata is read at alpha = rank
    files["peft"] = folder / "peft.safetensors"
    save_file(peft_tensors(same_scale), str(files["peft"]))
    return files, {"kohya": outputs(pipe), "kohya_sgm": outputs(pipe), "peft": outputs(same_scale)}


@pytest.mark.parametrize("layout", ["kohya", "kohya_sgm", "peft"])
def test_foreign_lora_loads_fully_and_reproduces_its_outputs(foreign, session, layout):
    files, expected = foreign
    loaded = session.sdxl("demo")
    session.lora_off(loaded)
    plain = outputs(loaded.base)
    name = session.use_lora(loaded, files[layout], 1.0)
    got = outputs(loaded.base)
    for have, want, before in zip(got, expected[layout], plain):
        assert (want - before).abs().max() > 1e-3
        torch.testing.assert_close(have, want, atol=1e-5, rtol=1e-5)
    assert loaded.base.get_active_adapters() == [name]


def test_a_lora_that_fits_only_in_part_is_refused(foreign, session, tmp_path):
    """A key the model lacks would be dropped by diffusers with a log line only."""
    files, _ = foreign
    from safetensors.torch import load_file

    tensors = load_file(str(files["kohya"]))
    extra = "lora_te1_text_model_encoder_layers_7_self_attn_q_proj"  # the demo CLIP has 2 layers
    tensors.update({f"{extra}.lora_down.weight": torch.zeros(RANK, 32),
                    f"{extra}.lora_up.weight": torch.zeros(32, RANK), f"{extra}.alpha": torch.tensor(ALPHA)})
    partial = tmp_path / "partial.safetensors"
    save_file(tensors, str(partial))
    loaded = session.sdxl("demo")
    with pytest.raises(ModelError, match="loaded only in part"):
        session.use_lora(loaded, partial, 1.0)


def test_lycoris_and_other_models_are_refused_before_loading(session, tmp_path):
    loha = tmp_path / "loha.safetensors"
    key = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k"
    save_file({f"{key}.hada_w1_a": torch.zeros(32, 4), f"{key}.hada_w1_b": torch.zeros(4, 80),
               f"{key}.hada_w2_a": torch.zeros(32, 4), f"{key}.hada_w2_b": torch.zeros(4, 80)}, str(loha))
    sd15 = tmp_path / "sd15.safetensors"
    key = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    save_file({f"{key}.lora_down.weight": torch.zeros(4, 768), f"{key}.lora_up.weight": torch.zeros(320, 4)},
              str(sd15))
    loaded = session.sdxl("demo")
    with pytest.raises(ModelError, match="LyCORIS LoHa"):
        session.use_lora(loaded, loha, 1.0)
    with pytest.raises(ModelError, match="Stable Diffusion 1.x"):
        session.use_lora(loaded, sd15, 1.0)


def _request(tmp_path, **changes) -> InsertRequest:
    scene = noisy_scene(tmp_path / "scene.png", (64, 64))
    locate = LocateOptions(mask=write_mask(tmp_path / "m.png", (64, 64), (8, 8, 48, 48)), grow=2, feather=2.0)
    base = dict(project="Rex", model="demo", scene=scene, locate=locate, steps=3, seed=3,
                work_pixels=TINY_WORK, strength=0.9)
    return InsertRequest(**{**base, **changes})


def test_subject_and_style_lora_stack_each_at_its_scale(foreign, project, session, tmp_path):
    import numpy as np
    from PIL import Image

    files, _ = foreign
    style = files["kohya_sgm"]
    alone = run(_request(tmp_path), session=session)
    muted = run(_request(tmp_path, style_lora=style, style_lora_scale=0.0), session=session)
    styled = run(_request(tmp_path, style_lora=style, style_lora_scale=1.0), session=session)
    pixels = [np.asarray(Image.open(r.outputs[0]).convert("RGB")).astype(int) for r in (alone, muted, styled)]
    assert np.array_equal(pixels[0], pixels[1])  # scale 0: the subject LoRA alone
    assert np.abs(pixels[2] - pixels[0]).max() > 0
    assert len(session.sdxl("demo").base.get_active_adapters()) == 2
    fields = parse_parameters(read_png_text(styled.outputs[0])["parameters"])
    assert fields["prompt"].endswith("<lora:run-1:1> <lora:kohya_sgm:1>")
    assert fields["Lora hashes"].startswith("run-1: ") and ", kohya_sgm: " in fields["Lora hashes"]
    assert styled.style_lora == style
    assert any("not made by Image Alchemy" in note for note in alone.notes)  # the fixture LoRA has no metadata


def test_style_lora_is_checked_before_any_work(foreign, project, tmp_path):
    files, _ = foreign
    with pytest.raises(InvalidRequest, match="style LoRA file not found"):
        _request(tmp_path, style_lora=tmp_path / "missing.safetensors").validate()
    with pytest.raises(InvalidRequest, match="is the subject LoRA itself"):
        _request(tmp_path, lora=files["peft"], style_lora=files["peft"]).validate()
    with pytest.raises(InvalidRequest, match="style_lora_scale must be between -4 and 4"):
        _request(tmp_path, style_lora=files["peft"], style_lora_scale=9.0).validate()


def test_cli_takes_a_foreign_subject_lora_and_a_style_lora(foreign, project, tmp_path, capsys):
    import json

    from alchemy_engine.cli import main

    files, _ = foreign
    scene = noisy_scene(tmp_path / "scene.png", (64, 64))
    mask = write_mask(tmp_path / "m.png", (64, 64), (8, 8, 40, 40))
    code = main(["insert", "Rex", "--scene", str(scene), "--mask", str(mask), "--model", "demo", "--steps", "2",
                 "--seed", "1", "--work-size", "128", "--lora", str(files["kohya"]), "--style-lora",
                 str(files["peft"]), "--style-lora-scale", "0.5", "--out", str(tmp_path / "out"), "--json"])
    assert code == 0
    result = json.loads([line for line in capsys.readouterr().out.splitlines() if line.strip()][-1])
    assert result["lora"] == str(files["kohya"]) and result["style_lora"] == str(files["peft"])
    fields = parse_parameters(read_png_text(result["outputs"][0])["parameters"])
    assert fields["prompt"].endswith("<lora:kohya:1> <lora:peft:0.5>")
