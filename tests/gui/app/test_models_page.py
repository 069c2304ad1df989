"""Journey: Preferences → Models — add a ComfyUI folder, Scan…, the Train picker lists its checkpoint;
download the required models from a local stand-in for the Hub, with progress."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "engine"))
from hub_server import FakeHub, HubFile, lfs_sha256  # noqa: E402
from test_model_folders import comfy_tree  # noqa: E402

from alchemy_engine import api  # noqa: E402
from alchemy_gui.shell.menus import open_preferences  # noqa: E402
from alchemy_gui.shell.models_page import licence_text  # noqa: E402


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    import huggingface_hub.constants

    data = b"weights" * 40_000
    server = FakeHub({"acme/base/base.safetensors": HubFile(data)}).start()
    catalogue = {"version": 1, "models": [
        {"id": "base", "title": "A base model", "required": True, "repo": "acme/base", "target": "sdxl",
         "used_for": "training", "licence": "Test licence", "licence_url": "https://example.invalid/licence",
         "files": [{"path": "base.safetensors", "size": len(data), "sha256": lfs_sha256(data)}]}]}
    (tmp_path / "catalogue.json").write_text(json.dumps(catalogue), encoding="utf-8")
    monkeypatch.setenv("IMAGE_ALCHEMY_CATALOGUE", str(tmp_path / "catalogue.json"))
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    yield data
    server.stop()


def test_models_page_scans_a_comfy_folder_and_downloads(qtbot, open_window, tmp_path, fake_hub, screenshot):
    comfy = comfy_tree(tmp_path / "elsewhere")
    window = open_window()
    dialog = open_preferences(window)
    page = dialog.models_page
    dialog.tabs.setCurrentWidget(page)
    qtbot.waitUntil(lambda: bool(page.catalogue), timeout=30_000)

    with qtbot.waitSignal(page.models_changed, timeout=30_000):
        page.add_folder(str(comfy / "models"))
    assert page.folders.item(0).text() == str((comfy / "models").resolve())
    top = page.found.topLevelItem(0)
    rows = {top.child(i).text(0): top.child(i).text(1) for i in range(top.childCount())}
    assert rows["x.safetensors"] == "SDXL base" and rows["dog_xl.safetensors"] == "LoRA for sdxl"
    assert rows["sam_vit_b_01ec64.pth"] == "SAM" and rows["legacy.pth"] == "other"
    assert "1 SDXL models, 2 LoRAs, 1 SAM" in page.scan_status.text()
    qtbot.waitUntil(lambda: any(m.get("location") for m in window.train_state.models), timeout=30_000)
    assert [m["name"] for m in window.train_state.models if m.get("location")] == ["x"]
    combo = window.train_panel.form.model_combo  # the Train picker says where it lives, in its own group
    qtbot.waitUntil(lambda: any(combo.itemText(i) == "x   — ComfyUI/models" for i in range(combo.count())),
                    timeout=30_000)

    assert "Test licence" in licence_text(page.catalogue) and "https://example.invalid/licence" in licence_text(page.catalogue)
    events = []
    worker = page.download(["base"], confirmed=True)
    worker.progress.connect(events.append)
    qtbot.waitUntil(lambda: "1 file(s) fetched and verified" in page.progress_text.text(), timeout=30_000)
    assert (api.models_dir() / "sdxl" / "base.safetensors").read_bytes() == fake_hub
    assert any(e.total == len(fake_hub) for e in events)
    qtbot.waitUntil(lambda: page.catalogue and page.catalogue[0]["state"] == "present", timeout=30_000)
    assert page.table.topLevelItem(0).text(1) == "yes" and not page.required_button.isEnabled()
    screenshot(dialog, "preferences-models")
    dialog.reject()
    window.close()


def test_first_run_finds_the_models_of_other_apps(qtbot, monkeypatch, tmp_path, screenshot):
    """First run, no SDXL installed: *Find my models…* opens Preferences → Models, finds the ComfyUI
    install in the home folder and, once the artist agrees, searches it in place."""
    from PySide6.QtWidgets import QMessageBox

    from alchemy_gui.main_window import MainWindow

    monkeypatch.delenv("IMAGE_ALCHEMY_DEMO", raising=False)
    monkeypatch.delenv("INVOKEAI_ROOT", raising=False)
    home = tmp_path / "home"
    comfy = comfy_tree(home)
    monkeypatch.setenv("HOME", str(home))
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda parent, title, text: asked.append(text) or QMessageBox.StandardButton.Yes)
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: getattr(window, "welcome", None) is not None and window.welcome.isVisible(),
                    timeout=30_000)
    screenshot(window.welcome, "first-run-welcome")
    window.welcome.find_button.click()
    page = window.dialog.models_page
    qtbot.waitUntil(lambda: page.found.topLevelItemCount() == 3, timeout=30_000)
    assert "ComfyUI: " + str((comfy / "models/checkpoints").resolve()) in asked[0]
    assert [str(p) for p in api.list_model_folders()] == [
        str((comfy / "models" / sub).resolve()) for sub in ("checkpoints", "loras", "sams")]
    qtbot.waitUntil(lambda: any(m.get("location") for m in window.train_state.models), timeout=30_000)
    screenshot(window.dialog, "first-run-find-models")
    window.dialog.reject()
    window.close()
