"""LoRA files from elsewhere are recognised from their header: SDXL LoRAs in every common layout
pass, LoRAs for other models and LyCORIS types are refused with a message that says what they are."""

from __future__ import annotations

import pytest
from ldm_layout import write_fake_safetensors

from alchemy_engine.errors import ModelError
from alchemy_engine.models.lora_files import clean_text, inspect_lora, read_metadata, require_sdxl_lora


def _lora(name: str, down: list[int], up: list[int], alpha: bool = True, down_key="lora_down.weight",
          up_key="lora_up.weight") -> dict[str, list[int]]:
    shapes = {f"{name}.{down_key}": down, f"{name}.{up_key}": up}
    return {**shapes, f"{name}.alpha": []} if alpha else shapes


SDXL_ATTN2 = "transformer_blocks_0_attn2_to_k"
CASES = {
    "kohya": {**_lora(f"lora_unet_down_blocks_1_attentions_0_{SDXL_ATTN2}", [8, 2048], [640, 8]),
              **_lora("lora_te1_text_model_encoder_layers_0_mlp_fc1", [8, 768], [3072, 8]),
              **_lora("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", [8, 1280], [1280, 8])},
    "kohya_sgm": _lora(f"lora_unet_input_blocks_4_1_{SDXL_ATTN2}", [8, 2048], [640, 8]),
    "peft": _lora("unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_v", [8, 2048], [640, 8],
                  alpha=False, down_key="lora_A.weight", up_key="lora_B.weight"),
    "diffusers": _lora("unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k", [8, 2048], [1280, 8],
                       alpha=False, down_key="lora.down.weight", up_key="lora.up.weight"),
}


@pytest.mark.parametrize("layout", sorted(CASES))
def test_sdxl_loras_in_every_layout_pass(tmp_path, layout):
    path = write_fake_safetensors(tmp_path / f"{layout}.safetensors", CASES[layout])
    info = require_sdxl_lora(path)
    assert (info.layout, info.kind, info.base) == (layout, "lora", "sdxl")
    assert info.unet_layers == 1 and info.text_encoder_layers == (2 if layout == "kohya" else 0)


REFUSED = {
    "sd15": ({**_lora("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", [4, 768], [320, 4]),
              **_lora("lora_te_text_model_encoder_layers_0_self_attn_q_proj", [4, 768], [768, 4])},
             "LoRA for Stable Diffusion 1.x"),
    "sd15_te_only": (_lora("lora_te_text_model_encoder_layers_0_self_attn_q_proj", [4, 768], [768, 4]),
                     "Stable Diffusion 1.x"),
    "sd2": (_lora("lora_unet_input_blocks_1_1_transformer_blocks_0_attn2_to_v", [4, 1024], [320, 4]),
            "LoRA for Stable Diffusion 2.x"),
    "refiner": (_lora("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", [4, 1280], [768, 4]),
                "the SDXL refiner"),
    "flux_kohya": (_lora("lora_unet_double_blocks_0_img_attn_qkv", [16, 3072], [9216, 16]), "FLUX"),
    "flux_diffusers": (_lora("transformer.single_transformer_blocks.0.attn.to_q", [16, 3072], [3072, 16],
                             alpha=False, down_key="lora_A.weight", up_key="lora_B.weight"), "FLUX"),
    "sd3": (_lora("transformer.transformer_blocks.0.attn.add_k_proj", [16, 1536], [1536, 16], alpha=False,
                  down_key="lora_A.weight", up_key="lora_B.weight"), "Stable Diffusion 3"),
    "loha": ({"lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.hada_w1_a": [640, 8],
              "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.hada_w1_b": [8, 2048],
              "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.alpha": []}, "LyCORIS LoHa for SDXL"),
    "lokr": ({"lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lokr_w1": [8, 8],
              "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lokr_w2": [80, 80],
              "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lokr_w1": [8, 8]}, "LyCORIS LoKr"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_other_models_and_lycoris_are_refused_saying_what_they_are(tmp_path, case):
    shapes, words = REFUSED[case]
    path = write_fake_safetensors(tmp_path / f"{case}.safetensors", shapes)
    with pytest.raises(ModelError) as caught:
        require_sdxl_lora(path)
    message = str(caught.value)
    assert words in message and path.name in message
    assert ("SDXL" in message) and ("LoRA" in message)


def test_non_loras_are_refused_as_what_they_are(tmp_path):
    checkpoint = write_fake_safetensors(tmp_path / "model.safetensors", {
        "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": [640, 2048]})
    with pytest.raises(ModelError, match="not a LoRA file"):
        inspect_lora(checkpoint)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ModelError, match="not a readable .safetensors LoRA"):
        inspect_lora(broken)


def test_metadata_decides_only_when_the_tensors_cannot(tmp_path):
    attn1 = _lora("lora_unet_up_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", [4, 1280], [1280, 4])
    path = write_fake_safetensors(tmp_path / "a.safetensors", attn1, {"ss_base_model_version": "sd_v1"})
    assert inspect_lora(path).base == "sd1"
    path = write_fake_safetensors(tmp_path / "b.safetensors", attn1)
    assert inspect_lora(path).base == "unknown"  # left to the shape check against the loaded UNet
    lying = write_fake_safetensors(tmp_path / "c.safetensors", CASES["kohya_sgm"],
                                   {"ss_base_model_version": "sd_v1"})
    assert inspect_lora(lying).base == "sdxl"


def test_metadata_is_cleaned_and_bounded(tmp_path):
    meta = {"alchemy.token": "sks\x1b[31m\u202e", "alchemy.class_noun": "dog\n\r\x00", "alchemy.notes": "x" * 5000,
            "ss_output_name": "style\x07 name"}
    path = write_fake_safetensors(tmp_path / "m.safetensors", CASES["kohya"], meta)
    read = read_metadata(path)
    assert read["token"] == "sks [31m" and read["class_noun"] == "dog"
    assert len(read["notes"]) == 1000 and read["notes"].endswith("…")
    assert inspect_lora(path).title == "style name"
    assert clean_text("a\tb\u200bc") == "a b c"
