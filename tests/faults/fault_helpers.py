"""Fault injection for the write layer, the way SQLite tests its I/O errors.

Every write the app makes passes a write point in :mod:`alchemy_engine.atomic` (``fault_hook``).
:class:`Injector` counts them and makes the N-th one fail the way a full, read-only or failing disk
does (or as torch and safetensors report it). :func:`assert_clean` checks what must hold after any
failure: the project opens, every file under a final name is whole, no temporary is left behind
and no photo lacks its record.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from safetensors import SafetensorError

from alchemy_engine import atomic

FAULTS: dict[str, Callable[[], BaseException]] = {
    "ENOSPC": lambda: OSError(errno.ENOSPC, "No space left on device"),
    "EROFS": lambda: OSError(errno.EROFS, "Read-only file system"),
    "EIO": lambda: OSError(errno.EIO, "Input/output error"),
    "torch": lambda: RuntimeError("[enforce fail at inline_container.cc:783] . PytorchStreamWriter failed "
                                  "writing file data/0: file write failed"),
    "safetensors": lambda: SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                                           'message: "No space left on device" })'),
}
CAUSE_WORDS = {"ENOSPC": "disk is full", "EROFS": "read-only", "EIO": "input/output error",
               "torch": "could not write", "safetensors": "disk is full"}


class Injector:
    """``with Injector(fail_at=N, fault="ENOSPC"):`` makes the N-th write point raise; with
    ``fail_at=None`` it only records the points (``.points``). ``kill=True`` sends SIGKILL instead."""

    def __init__(self, fail_at: int | None = None, fault: str = "ENOSPC", kill: bool = False) -> None:
        self.fail_at, self.fault, self.kill = fail_at, fault, kill
        self.points: list[tuple[str, Path]] = []
        self.fired: tuple[str, Path] | None = None

    def __call__(self, phase: str, path: Path) -> None:
        self.points.append((phase, path))
        if self.fail_at is not None and len(self.points) == self.fail_at:
            self.fired = (phase, path)
            if self.kill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise FAULTS[self.fault]()

    def __enter__(self) -> Injector:
        atomic.fault_hook = self
        return self

    def __exit__(self, *exc: object) -> None:
        atomic.fault_hook = None


TEMP_MARKERS = (".tmp", ".export-", ".import-")


def assert_clean(root: Path, *others: Path, temporaries: bool = False) -> None:
    """After a failed or killed job: the project at ``root`` opens, files under final names are
    whole, no temporary is left (``temporaries=True``: after a kill, hidden temporaries may be; the
    next job on the run removes them), every photo has its record and every run folder its request."""
    from alchemy_engine.project import open_project

    project = open_project(root)
    recorded = {p.name for p in project.reference_photos()}
    for photo in project.reference_photos():
        assert photo.path.is_file(), f"record without its photo: {photo.path}"
    refs = project.references_dir
    on_disk = {p.name for p in refs.iterdir() if not p.name.endswith(".mask.png")} if refs.is_dir() else set()
    assert on_disk <= recorded, f"photos without a record: {on_disk - recorded}"
    from alchemy_engine.project.runs import list_runs

    listed = {r.path.name for r in list_runs(project.runs_dir)}
    for run in project.runs_dir.iterdir() if project.runs_dir.is_dir() else []:
        if temporaries and run.name.startswith(".tmp-"):
            assert run.name not in listed  # a run folder the kill stopped half-made is never shown
            continue
        assert (run / "train_request.json").is_file(), f"run folder without its request: {run}"
    for folder in (root, *others):
        for path in Path(folder).rglob("*"):
            temporary = any(m in path.name for m in TEMP_MARKERS) or any(
                part.startswith(".tmp-") for part in path.parts)
            assert not temporary or temporaries, f"left behind: {path}"
            if path.is_file() and not temporary:
                assert_whole(path)


def assert_whole(path: Path) -> None:
    if path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".png":
        with Image.open(path) as image:
            image.load()
    elif path.suffix == ".safetensors":
        from safetensors.torch import load_file

        load_file(str(path))
    elif path.suffix == ".pt":
        import torch

        torch.load(path, weights_only=True)


def assert_message(error: BaseException, fault: str) -> None:
    """One sentence naming a file and the cause; never a raw library error."""
    from alchemy_engine.errors import AlchemyError

    text = str(error)
    assert isinstance(error, AlchemyError), f"raw {type(error).__name__}: {text}"
    assert text.startswith("could not write /") and CAUSE_WORDS[fault] in text, text
    assert "Traceback" not in text and "PytorchStreamWriter" not in text and "IoError" not in text, text


def spread(count: int, most: int) -> list[int]:
    """At most ``most`` of the points 1..count, always the first and the last, evenly apart."""
    if count <= most:
        return list(range(1, count + 1))
    return sorted({1 + round(i * (count - 1) / (most - 1)) for i in range(most)})


def copy_lora(project, lora: Path, run: str = "run-1") -> Path:
    folder = project.runs_dir / run
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(lora, folder / "lora.safetensors")
    (folder / "train_request.json").write_text("{}")
    return folder / "lora.safetensors"
