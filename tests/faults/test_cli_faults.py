"""What a terminal user sees: one ``error:`` line for a failed write, silence for a closed pipe."""

from __future__ import annotations

import sys

from fault_helpers import Injector
from train_helpers import make_photo

from alchemy_engine.cli import main


def test_a_failed_write_is_one_error_line(fresh_project, tmp_path, capsys):
    project = fresh_project()
    photo = make_photo(tmp_path / "more.png", (256, 300), seed=50)
    with Injector(fail_at=1, fault="EROFS"):
        status = main(["project", "add-photos", str(project.root), str(photo)])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: could not write ") and "read-only" in err
    assert "Traceback" not in err and err.count("\n") == 1


class _ClosedPipe:
    """stdout after ``| head -1`` has read its line and exited."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return self._fd


def test_a_closed_pipe_is_not_a_traceback(fresh_project, tmp_path, monkeypatch, capsys):
    project = fresh_project()
    with open(tmp_path / "stdout", "w") as sink:
        monkeypatch.setattr(sys, "stdout", _ClosedPipe(sink.fileno()))
        status = main(["project", "show", str(project.root)])
    assert status == 141 and capsys.readouterr().err == ""
