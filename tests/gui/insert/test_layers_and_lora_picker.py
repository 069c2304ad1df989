"""Insert panel: a result saved as layers / opened in the chosen editor from the strip's menu, and
*Add LoRA file…* listing the SDXL LoRAs of the model folders, grouped by folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin
from test_insert_panel import _scene
from test_insert_results import _open_project

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "engine"))
from test_model_folders import comfy_tree  # noqa: E402

from alchemy_engine import api  # noqa: E402
from alchemy_gui.insert import layers_action  # noqa: E402
from alchemy_gui.insert.panel_actions import result_action  # noqa: E402


def _output_with_mask(project, scene: Path) -> Path:
    """An output PNG as an insertion writes it: its metadata names the scene and the soft mask."""
    project.outputs_dir.mkdir(parents=True, exist_ok=True)
    size = Image.open(scene).size
    alpha = np.zeros((size[1], size[0]), np.uint8)
    alpha[10:40, 10:40] = 255
    alpha[8:10, 10:40] = 100
    mask = project.outputs_dir / "insert-1-mask.png"
    Image.fromarray(alpha, "L").save(mask)
    chunks = PngImagePlugin.PngInfo()
    chunks.add_text("alchemy_request", api.InsertRequest(project="rex", scene=scene, prompt="a sks dog").to_json())
    chunks.add_text("alchemy_result", json.dumps({"scene": str(scene), "mask": str(mask)}))
    path = project.outputs_dir / "insert-1-7.png"
    Image.open(scene).save(path, pnginfo=chunks)
    return path


def test_save_as_layers_and_open_in_the_chosen_editor(qtbot, panel, project, tmp_path, monkeypatch):
    output = _output_with_mask(project, _scene(tmp_path / "park.png"))
    _open_project(qtbot, panel, project)
    qtbot.waitUntil(lambda: panel.results.list.count() == 1, timeout=30_000)
    api.save_app_settings({**api.load_app_settings(), "editor": "krita"})
    started = []
    monkeypatch.setattr(layers_action.QProcess, "startDetached", lambda program, args: started.append((program, args)) or True)
    result_action(panel, "editor", str(output))
    qtbot.waitUntil(lambda: "Saved layers" in panel.message.text(), timeout=30_000)
    ora = output.parent / "layers" / "insert-1-7.ora"  # beside, not among, the project's results
    assert started == [("krita", [str(ora)])]
    layers = api.read_ora_layers(ora)
    assert [(name, visible) for name, visible, _ in layers] == [("mask", False), ("subject", True), ("scene", True)]
    assert ora.with_suffix(".psd").is_file() and ora.with_name("insert-1-7-subject.png").is_file()
    assert panel.results.list.count() == 1

    (project.outputs_dir / "insert-1-mask.png").unlink()
    result_action(panel, "layers", str(output))
    qtbot.waitUntil(lambda: "does not name an existing scene and mask" in panel.message.text(), timeout=30_000)


def test_add_lora_file_lists_the_sdxl_loras_of_the_model_folders(qtbot, panel, tmp_path):
    comfy = comfy_tree(tmp_path / "elsewhere")
    api.add_model_folder(comfy / "models" / "loras")
    chosen = []
    dialog = panel.choose_lora_file()
    dialog.chosen.connect(chosen.append)
    qtbot.waitUntil(lambda: dialog.tree.topLevelItemCount() == 1, timeout=30_000)
    folder = dialog.tree.topLevelItem(0)
    assert folder.text(0) == str((comfy / "models" / "loras").resolve())
    assert [folder.child(i).text(0) for i in range(folder.childCount())] == ["dog_xl.safetensors"]
    assert "1 SDXL LoRA(s)" in dialog.status.text() and "1 made for other models" in dialog.status.text()
    dialog.tree.setCurrentItem(folder.child(0))
    dialog.accept()
    lora = str((comfy / "models" / "loras" / "dog_xl.safetensors").resolve())
    assert chosen == [lora]
    qtbot.waitUntil(lambda: panel.insert_state.settings.run == lora, timeout=30_000)  # checked, then chosen
