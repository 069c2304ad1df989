"""Rank by fidelity: on by default in the Insert area when the evaluation models are found (checked
in the choices job), off when they are not, and the user's own choice is kept on a re-list."""

from __future__ import annotations

import pytest

from alchemy_gui.insert import jobs


@pytest.mark.parametrize("found", [True, False])
def test_rank_follows_whether_eval_models_exist(qtbot, panel, project, monkeypatch, found):
    monkeypatch.setattr(jobs, "eval_models_available", lambda source=None: found)
    state, box = panel.insert_state, panel.settings.rank
    assert not state.settings.rank and not box.isChecked()  # the request's default before the look-up
    panel.projects_state.open(project.slug)
    qtbot.waitUntil(lambda: state.choices is not None and not state.jobs.busy, timeout=30000)
    assert state.choices.eval_models is found
    assert state.settings.rank is found and box.isChecked() is found
    assert box.text() == "Rank by fidelity"
    if found:
        box.click()  # the user turns it off: a later re-list keeps that
        assert state.settings.rank is False
        state.refresh_choices()
        qtbot.waitUntil(lambda: not state.jobs.busy, timeout=30000)
        assert state.settings.rank is False and not box.isChecked()
