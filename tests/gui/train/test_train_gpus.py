"""The Train form offers the GPUs field only on a computer with several NVIDIA GPUs."""

from __future__ import annotations

import pytest

from alchemy_engine import api
from alchemy_engine.models import gpu_count
from alchemy_gui.common.job_list import JobList
from alchemy_gui.train.form import TrainForm
from alchemy_gui.train.state import TrainState


@pytest.mark.parametrize("gpus, shown", [(0, False), (1, False), (2, True)])
def test_gpus_row_is_shown_only_with_several_gpus(qtbot, monkeypatch, gpus, shown):
    monkeypatch.setattr(api, "nvidia_gpu_count", lambda: gpus)
    form = TrainForm(TrainState(JobList()))
    qtbot.addWidget(form)
    assert form.advanced.layout().isRowVisible(form.fields["gpus"]) is shown
    assert form.state.request().gpus == 1  # one process unless the user asks


def test_gpus_are_counted_from_the_driver_listing(tmp_path, monkeypatch):
    listing = tmp_path / "gpus"
    for n in range(3):
        (listing / f"0000:0{n}:00.0").mkdir(parents=True)
    monkeypatch.setattr(gpu_count, "PROC_GPUS", listing)
    assert gpu_count._listed() == 3
    monkeypatch.setattr(gpu_count, "PROC_GPUS", tmp_path / "absent")
    if gpu_count.sys.platform != "win32":
        assert gpu_count._listed() == 0
