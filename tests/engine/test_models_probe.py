"""Checkpoint files are recognised from their safetensors header alone; wrong files are refused
with a message that says what they are, and pickle files are never opened."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import pytest
from ldm_layout import write_fake_safetensors

from alchemy_engine.errors import ModelError
from alchemy_engine.models.inventory import resolve_sdxl
from alchemy_engine.models.probe import probe_checkpoint, require_sdxl_checkpoint
from alchemy_engine.models.sdxl import load_sdxl_pipeline

U = "model.diffusion_model."
SDXL_BASE = {
    U + "input_blocks.0.0.weight": [320, 4, 3, 3],
    U + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": [640, 2048],
    U + "label_emb.0.0.weight": [1280, 2816],
    "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight": [77, 768],
    "conditioner.embedders.1.model.positional_embedding": [77, 1280],
    "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias": [1280],
    "first_stage_model.decoder.conv_in.weight": [512, 4, 3, 3],
}
SD15 = {
    U + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [320, 768],
    U + "output_blocks.11.0.skip_connection.weight": [320, 640, 1, 1],
    "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight": [77, 768],
    "first_stage_model.decoder.conv_in.weight": [512, 4, 3, 3],
}
SD2 = {
    U + "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight": [320, 1024],
    "cond_stage_model.model.positional_embedding": [77, 1024],
    "first_stage_model.decoder.conv_in.weight": [512, 4, 3, 3],
}
REFINER = {
    U + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": [768, 1280],
    U + "label_emb.0.0.weight": [1536, 2560],
    "conditioner.embedders.0.model.text_projection": [1280, 1280],
    "conditioner.embedders.0.model.transformer.resblocks.9.mlp.c_proj.bias": [1280],
    "first_stage_model.decoder.conv_in.weight": [512, 4, 3, 3],
}
KOHYA_LORA = {
    "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight": [4, 640],
    "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight": [640, 4],
    "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.alpha": [],
}
PEFT_LORA = {
    "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight": [4, 640],
    "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight": [640, 4],
}
LONE_VAE = {"encoder.down.0.block.0.conv1.weight": [128, 128, 3, 3],
            "decoder.up.0.block.0.conv1.weight": [128, 256, 3, 3]}
RANDOM = {"foo": [3], "bar.baz": [2, 2]}


def _fake(tmp_path: Path, shapes: dict, name: str = "model.safetensors", **kw) -> Path:
    return write_fake_safetensors(tmp_path / name, shapes, **kw)


def test_sdxl_base_header_is_accepted_without_reading_weights(tmp_path):
    info = require_sdxl_checkpoint(_fake(tmp_path, SDXL_BASE))
    assert info.family == "sdxl_base" and info.context_dim == 2048 and info.has_vae
    assert info.description == "an SDXL base checkpoint"


@pytest.mark.parametrize("shapes, family, words", [
    (SD15, "sd1", "Stable Diffusion 1.x"),
    (SD2, "sd2", "Stable Diffusion 2.x"),
    (REFINER, "sdxl_refiner", "SDXL refiner"),
    ({**SDXL_BASE, U + "input_blocks.0.0.weight": [320, 9, 3, 3]}, "sdxl_inpaint", "inpainting"),
    (KOHYA_LORA, "lora", "LoRA (kohya format, trained for sdxl_base_v1-0)"),
    (PEFT_LORA, "lora", "LoRA (PEFT/diffusers format"),
    (LONE_VAE, "vae", "a VAE on its own"),
    (RANDOM, "unknown", "not a Stable Diffusion model"),
    ({"double_blocks.0.img_attn.norm.key_norm.scale": [128]}, "flux", "FLUX"),
    ({U + "joint_blocks.0.context_block.adaLN_modulation.1.bias": [9216]}, "sd3", "Stable Diffusion 3"),
])
def test_wrong_model_kinds_are_refused_with_what_they_are(tmp_path, shapes, family, words):
    meta = {"ss_base_model_version": "sdxl_base_v1-0"} if shapes is KOHYA_LORA else None
    path = _fake(tmp_path, shapes, metadata=meta)
    assert probe_checkpoint(path).family == family
    with pytest.raises(ModelError) as err:
        resolve_sdxl(path)
    message = str(err.value)
    assert words in message
    assert "not an SDXL base model" in message and "sd_xl_base_1.0.safetensors" in message


def test_sdxl_without_vae_is_refused(tmp_path):
    shapes = {k: v for k, v in SDXL_BASE.items() if not k.startswith("first_stage_model.")}
    with pytest.raises(ModelError, match="without VAE weights"):
        require_sdxl_checkpoint(_fake(tmp_path, shapes))


def test_truncated_download_is_reported(tmp_path):
    path = _fake(tmp_path, SDXL_BASE)
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)
    info = probe_checkpoint(path)
    assert info.family == "damaged" and "truncated" in info.description
    with pytest.raises(ModelError, match="truncated.*Download it again"):
        load_sdxl_pipeline(path)


@pytest.mark.parametrize("content, words", [
    (b"", "only 0 bytes"),
    (random.Random(7).randbytes(4096).replace(b"\x80", b"\x00").replace(b"PK", b"pk"), "safetensors header"),
    (b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}", "not valid JSON"),
], ids=["empty", "random-bytes", "bad-json"])
def test_garbage_files_are_reported(tmp_path, content, words):
    path = tmp_path / "weird.safetensors"
    path.write_bytes(content)
    info = probe_checkpoint(path)
    assert info.family == "damaged" and words in info.description


class _Booby:
    """Unpickling this object creates a marker file: proof that the pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("name", ["sd_xl_base_1.0.ckpt", "disguised.safetensors", "model.bin"])
def test_pickle_checkpoints_are_never_unpickled(tmp_path, name):
    marker = tmp_path / "code-ran"
    path = tmp_path / name
    path.write_bytes(pickle.dumps({"state_dict": _Booby(marker)}, protocol=4))
    assert probe_checkpoint(path).family == "pickle"
    with pytest.raises(ModelError, match="never opens pickle files.*safetensors"):
        load_sdxl_pipeline(path)
    assert not marker.exists()


def test_fingerprint_reads_header_and_is_stable(tmp_path):
    a = resolve_sdxl(_fake(tmp_path, SDXL_BASE, name="a.safetensors"))
    b = resolve_sdxl(_fake(tmp_path, SDXL_BASE, name="b.safetensors"))
    other = {**SDXL_BASE, "first_stage_model.decoder.conv_out.weight": [3, 128, 3, 3]}
    c = resolve_sdxl(_fake(tmp_path, other, name="c.safetensors"))
    assert a.kind == "single_file" and a.name == "a"
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert len(a.fingerprint()) == 16


def test_missing_file_names_the_models_folder(tmp_path):
    with pytest.raises(ModelError, match="not found.*models.sdxl"):
        resolve_sdxl(tmp_path / "nope.safetensors")


def test_header_length_starting_with_0x80_is_not_mistaken_for_a_pickle(tmp_path):
    for pad in range(300):
        path = _fake(tmp_path, SDXL_BASE, metadata={"pad": "x" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    else:
        pytest.fail("could not make a header whose length starts with byte 0x80")
    assert probe_checkpoint(path).family == "sdxl_base"
