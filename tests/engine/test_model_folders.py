"""Model folders of other apps: the persisted list, finding installs, the cached header scan, and
the inventory / resolver using what the scan found (searched in place, never copied)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ldm_layout import write_fake_safetensors
from test_models_probe import SDXL_BASE

from alchemy_engine.cli import main as cli_main
from alchemy_engine.errors import InvalidRequest
from alchemy_engine.jobs import CancelToken
from alchemy_engine.models.folders import (
    add_model_folder,
    detect_installs,
    list_model_folders,
    read_extra_model_paths,
    remove_model_folder,
)
from alchemy_engine.models.inventory import find_models, resolve_sdxl
from alchemy_engine.models.scanner import ScanRequest, scan_models

U = "model.diffusion_model."
SDXL_LORA = {
    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": [4, 2048],
    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_up.weight": [640, 4],
}
SD1_LORA = {
    "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": [4, 768],
    "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": [640, 4],
}


def comfy_tree(root: Path) -> Path:
    """A ComfyUI install with an SDXL checkpoint, two LoRAs, a SAM file and a stray pickle."""
    models = root / "ComfyUI" / "models"
    for sub in ("checkpoints/XL", "loras", "sams", "vae"):
        (models / sub).mkdir(parents=True)
    write_fake_safetensors(models / "checkpoints" / "XL" / "x.safetensors", SDXL_BASE)
    write_fake_safetensors(models / "loras" / "dog_xl.safetensors", SDXL_LORA)
    write_fake_safetensors(models / "loras" / "old_sd15.safetensors", SD1_LORA)
    (models / "sams" / "sam_vit_b_01ec64.pth").write_bytes(b"\x80\x02not really")
    (models / "vae" / "legacy.pth").write_bytes(b"\x80\x02pickle")
    return root / "ComfyUI"


def test_folder_list_is_persisted_and_refuses_what_is_not_a_folder(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    assert add_model_folder(a) == [a.resolve()]
    assert add_model_folder(b) == [a.resolve(), b.resolve()]
    assert add_model_folder(a) == [a.resolve(), b.resolve()]  # once only
    assert list_model_folders() == [a.resolve(), b.resolve()]
    assert remove_model_folder(a) == [b.resolve()]
    with pytest.raises(InvalidRequest, match="not in the model folders list"):
        remove_model_folder(a)
    with pytest.raises(InvalidRequest, match="is not a folder"):
        add_model_folder(tmp_path / "nope")


def test_cli_folders_add_list_remove(tmp_path, capsys):
    folder = tmp_path / "loras"
    folder.mkdir()
    assert cli_main(["models", "folders", "add", "--json", str(folder)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["folders"] == [str(folder.resolve())]
    assert cli_main(["models", "folders", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["folders"] == [str(folder.resolve())]
    assert cli_main(["models", "folders", "remove", "--json", str(folder)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["folders"] == []
    assert cli_main(["models", "folders", "add", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_extra_model_paths_yaml_is_read_safely(tmp_path):
    (tmp_path / "a1111" / "models" / "Lora").mkdir(parents=True)
    yaml_file = tmp_path / "extra_model_paths.yaml"
    yaml_file.write_text(
        "a111:\n"
        f"    base_path: {tmp_path / 'a1111'}\n"
        "    checkpoints: models/Stable-diffusion\n"
        "    loras: |\n"
        "         models/Lora\n"
        "         models/LyCORIS\n"
        "    vae: models/VAE\n"
        "other:\n"
        "    checkpoints: /abs/ckpts\n"
        "evil: !!python/object/apply:os.system ['echo pwned']\n", encoding="utf-8")
    # the unsafe tag makes the whole file unreadable to safe_load: nothing is run, nothing listed
    assert read_extra_model_paths(yaml_file) == []
    yaml_file.write_text(yaml_file.read_text().rsplit("evil", 1)[0], encoding="utf-8")
    pairs = read_extra_model_paths(yaml_file)
    a1111 = tmp_path / "a1111"
    assert pairs == [("checkpoints", a1111 / "models/Stable-diffusion"), ("loras", a1111 / "models/Lora"),
                     ("loras", a1111 / "models/LyCORIS"), ("checkpoints", Path("/abs/ckpts"))]


def test_detect_installs_finds_each_app_that_exists(tmp_path, monkeypatch):
    home = tmp_path / "home"
    comfy = comfy_tree(home)
    shared = tmp_path / "shared_loras"
    shared.mkdir()
    (comfy / "extra_model_paths.yaml").write_text(f"mine:\n  loras: {shared}\n", encoding="utf-8")
    for sub in ("Stable-diffusion", "Lora"):
        (home / "Documents" / "stable-diffusion-webui-forge" / "models" / sub).mkdir(parents=True)
    (home / "invokeai" / "models").mkdir(parents=True)
    krita = home / ".local/share/krita/ai_diffusion/server/ComfyUI/models/checkpoints"
    krita.mkdir(parents=True)
    monkeypatch.delenv("INVOKEAI_ROOT", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    found = {(d.app, d.holds, d.path) for d in detect_installs(home, hf_cache=tmp_path / "no_cache")}
    forge = (home / "Documents" / "stable-diffusion-webui-forge" / "models").resolve()
    assert found == {
        ("ComfyUI", "checkpoints", (comfy / "models/checkpoints").resolve()),
        ("ComfyUI", "loras", (comfy / "models/loras").resolve()),
        ("ComfyUI", "sams", (comfy / "models/sams").resolve()),
        ("ComfyUI (extra_model_paths.yaml)", "loras", shared.resolve()),
        ("A1111/Forge", "Stable-diffusion", forge / "Stable-diffusion"),
        ("A1111/Forge", "Lora", forge / "Lora"),
        ("InvokeAI", "models", (home / "invokeai/models").resolve()),
        ("krita-ai-diffusion server", "checkpoints", krita.resolve()),
    }


def test_scan_classifies_by_header_and_caches_by_size_and_mtime(tmp_path):
    comfy = comfy_tree(tmp_path)
    result = scan_models(ScanRequest((str(comfy / "models"),)))
    by_name = {m.name: m for m in result.models}
    assert (by_name["x.safetensors"].use, by_name["x.safetensors"].family) == ("sdxl", "sdxl_base")
    assert (by_name["dog_xl.safetensors"].use, by_name["dog_xl.safetensors"].lora_base) == ("lora", "sdxl")
    assert (by_name["old_sd15.safetensors"].use, by_name["old_sd15.safetensors"].lora_base) == ("lora", "sd1")
    assert by_name["sam_vit_b_01ec64.pth"].use == "sam"
    assert (by_name["legacy.pth"].use, by_name["legacy.pth"].family) == ("other", "pickle")
    assert (result.probed, result.reused) == (5, 0)

    again = scan_models(ScanRequest((str(comfy / "models"),)))
    assert (again.probed, again.reused) == (0, 5)
    assert again.models == result.models

    lora = comfy / "models/loras/dog_xl.safetensors"
    write_fake_safetensors(lora, SDXL_BASE)  # the same path now holds a checkpoint: size changes
    os.utime(lora, ns=(1, 1))
    third = scan_models(ScanRequest((str(comfy / "models"),)))
    assert (third.probed, third.reused) == (1, 4)
    assert {m.name: m.use for m in third.models}["dog_xl.safetensors"] == "sdxl"


def test_scan_can_be_cancelled(tmp_path):
    comfy = comfy_tree(tmp_path)
    cancel = CancelToken()
    cancel.cancel()
    from alchemy_engine.errors import JobCancelled

    with pytest.raises(JobCancelled):
        scan_models(ScanRequest((str(comfy),)), cancel=cancel)


def test_a_comfy_checkpoint_is_listed_and_resolved_in_place(tmp_path, capsys):
    """Done-when: `models folders add` then `models --json` lists it; train/insert resolve it."""
    comfy = comfy_tree(tmp_path / "elsewhere")
    assert cli_main(["models", "folders", "add", str(comfy / "models")]) == 0
    capsys.readouterr()
    assert cli_main(["models", "--json"]) == 0
    inventory = json.loads(capsys.readouterr().out.splitlines()[-1])
    checkpoint = comfy / "models/checkpoints/XL/x.safetensors"
    listed = [e for e in inventory["sdxl"] if e["path"] == str(checkpoint.resolve())]
    assert listed and listed[0]["kind"] == "single_file"
    assert listed[0]["location"] == str((comfy / "models").resolve())
    sam = [e for e in inventory["sam"] if e["path"].endswith("sam_vit_b_01ec64.pth")]
    assert sam and sam[0]["location"] == str((comfy / "models/sams").resolve())
    # what train and insert call: the default model, a file name, and nothing was copied
    assert resolve_sdxl(None).path == checkpoint.resolve()
    assert resolve_sdxl("x.safetensors").path == checkpoint.resolve()
    assert not any((tmp_path / "alchemy_home" / "models").glob("**/*.safetensors"))
    assert [e.name for e in find_models().sdxl if e.location] == ["x"]


def test_cli_detect_lists_then_adds_other_apps_folders(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    comfy = comfy_tree(home)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("INVOKEAI_ROOT", raising=False)
    assert cli_main(["models", "folders", "detect", "--json"]) == 0
    found = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert {d["holds"] for d in found["detected"]} == {"checkpoints", "loras", "sams"} and found["folders"] == []
    assert cli_main(["models", "folders", "detect", "--add", "--json"]) == 0
    added = json.loads(capsys.readouterr().out.splitlines()[-1])["folders"]
    assert added == [str((comfy / "models" / s).resolve()) for s in ("checkpoints", "loras", "sams")]
    assert cli_main(["models", "scan", "--json"]) == 0
    scanned = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert sorted(m["use"] for m in scanned["models"]) == ["lora", "lora", "sam", "sdxl"]


def test_a_diffusers_folder_in_a_model_folder_keeps_its_weight_variant(tmp_path):
    import shutil

    from alchemy_engine.models.demo import demo_sdxl_dir
    from alchemy_engine.models.sources import sdxl_components_status

    shelf = tmp_path / "invokeai" / "models" / "sdxl" / "main"
    shutil.copytree(demo_sdxl_dir(), shelf / "tiny-xl")
    add_model_folder(tmp_path / "invokeai" / "models")
    source = resolve_sdxl("tiny-xl")
    assert (source.kind, source.path) == ("diffusers", (shelf / "tiny-xl").resolve())
    assert source.variant == sdxl_components_status(shelf / "tiny-xl")[0]
    assert [m.use for m in scan_models().models if m.family == "diffusers_folder"] == ["sdxl"]
