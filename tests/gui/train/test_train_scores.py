"""Fidelity scores in the Train area: Score every in the form, DINO / CLIP-T per step beside the
loss curve with the best step marked, and exporting the LoRA of a kept checkpoint."""

from __future__ import annotations

from test_train_panel import TRAIN_TIMEOUT_MS, _finish, _open_panel, _tiny

from alchemy_engine import api


def test_scores_plotted_best_step_marked_and_a_checkpoint_exported(qtbot, photos, screenshot):
    panel = _open_panel(qtbot, photos)
    train, fields = panel.train_state, panel.form.fields
    assert not fields["eval_prompts"].isEnabled()  # follows Score every
    _tiny(panel, steps=4, save_every=2, keep_last=2, eval_every=2)
    assert fields["eval_prompts"].isEnabled() and train.settings["eval_every"] == 2
    fields["eval_prompts"].setValue(1)
    train.set_field("eval_models", "demo")  # not in the form: the tiny offline scorer
    panel.start_button.click()
    with qtbot.waitSignal(train.job.succeeded, timeout=TRAIN_TIMEOUT_MS) as done:
        pass
    result = done.args[0]
    qtbot.waitUntil(lambda: panel.runs.topLevelItemCount() >= 1, timeout=30_000)
    panel.runs.setCurrentItem(panel.runs.topLevelItem(0))
    details = panel.run_details
    qtbot.waitUntil(lambda: train.picked_run.details is not None, timeout=10_000)
    rows = api.read_scores(result.run_dir)
    assert [r["step"] for r in rows] == [2, 4]
    assert [s for s, _ in details.scores_chart.series["dino"]] == [2, 4]
    assert [s for s, _ in details.scores_chart.series["clip_t"]] == [2, 4]
    assert details.scores_chart.best_step == api.best_scored_step(rows) == result.best_step
    assert [details.checkpoint_combo.itemData(i) for i in range(details.checkpoint_combo.count())] == [2, 4]
    assert "best" in details.checkpoint_combo.currentText()
    screenshot(details, "train_run_scores")
    details.checkpoint_combo.setCurrentIndex(0)
    _finish(qtbot, panel)
    details.export_button.click()
    exported = result.run_dir / "exports" / "step-2"
    qtbot.waitUntil(lambda: "Exported the LoRA of step 2" in panel.run_message.text(), timeout=30_000)
    assert (exported / "lora.safetensors").is_file() and (exported / "lora_kohya.safetensors").is_file()
    _finish(qtbot, panel)
