"""Training with ``gpus`` above 1 from inside the app: the same job, run by N processes under torchrun.

:func:`run` has the job signature (``request, progress, cancel -> TrainResult``), so the GUI calls
it as it calls one-process training. It starts ``train --json --request FILE`` under
``torch.distributed.run`` (``launch.command``), turns rank 0's JSON lines back into ``Progress``
events (a sample's preview is read from its file) and its last line into the ``TrainResult``; a
cancel sends SIGINT, so every rank stops at the same step with a checkpoint; the CLI's ``error:``
line becomes the same message here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

from alchemy_engine.errors import AlchemyError, JobCancelled
from alchemy_engine.jobs import CancelToken, Progress, ProgressCallback
from alchemy_engine.training import launch
from alchemy_engine.training.request import TrainRequest, TrainResult

log = logging.getLogger(__name__)

_PATHS = ("preview_path", "path")


def run(request: TrainRequest, gpus: int, progress: ProgressCallback, cancel: CancelToken) -> TrainResult:
    with tempfile.TemporaryDirectory(prefix="alchemy-train-") as folder:
        file = Path(folder) / "request.json"
        file.write_text(request.to_json(), encoding="utf-8")
        argv = ["train", str(request.project), "--json", "--request", str(file)]
        lines: queue.Queue[str | None] = queue.Queue()
        errors: list[str] = []
        with subprocess.Popen(launch.command(gpus, argv, module="alchemy_engine.cli"), env=launch.environment(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                              start_new_session=sys.platform != "win32") as child:
            readers = [threading.Thread(target=_read, args=(child.stdout, lines.put, True), daemon=True),
                       threading.Thread(target=_read, args=(child.stderr, errors.append, False), daemon=True)]
            for reader in readers:
                reader.start()
            try:
                result, stopped = _follow(child, lines, progress, cancel)
            except BaseException:  # e.g. the progress callback failed: the processes must not run on
                child.terminate()
                raise
            for reader in readers:
                reader.join()
            status = child.wait()
    if status == 0 and result is not None:
        return _result(result)
    said = [line for line in errors if line.startswith(("error: ", "cancelled: "))]
    if stopped:
        raise JobCancelled(said[-1].split(": ", 1)[1] if said else "training stopped")
    if said:
        raise AlchemyError(said[-1].split(": ", 1)[1])
    tail = "".join(errors[-20:]).strip()
    raise AlchemyError(f"the {gpus} training processes failed (exit status {status}): {tail[-1500:]}")


def _read(stream: IO[str] | None, put, mark_end: bool) -> None:
    assert stream is not None  # both pipes were asked for
    for line in stream:
        put(line)
    if mark_end:
        put(None)


def _follow(child: subprocess.Popen, lines: queue.Queue, progress: ProgressCallback,
            cancel: CancelToken) -> tuple[dict | None, bool]:
    """Rank 0's events until its output ends; SIGINT to torchrun once cancel is asked."""
    result, stopped = None, False
    while True:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            line = ""
        if cancel.cancelled and not stopped:
            stopped = True
            launch.interrupt(child)
        if line is None:
            return result, stopped
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:  # a library's own print on rank 0's stdout
            log.info("training process: %s", line.rstrip())
            continue
        if not isinstance(data, dict):
            continue
        if data.get("event") == "progress":
            progress(_event(data))
        else:
            result = data


def _event(data: dict[str, Any]) -> Progress:
    fields = {k: v for k, v in data.items() if k != "event"}
    for name in _PATHS:
        if fields.get(name):
            fields[name] = Path(fields[name])
    if fields.get("preview_path"):
        from alchemy_engine.image_files import load_rgb

        fields["preview"] = load_rgb(fields["preview_path"])
    return Progress(**fields)


def _result(data: dict[str, Any]) -> TrainResult:
    known = {f.name for f in dataclasses.fields(TrainResult)}
    values = {k: v for k, v in data.items() if k in known}
    for name in ("run_dir", "lora", "lora_kohya"):
        values[name] = Path(values[name])
    values["scores_csv"] = Path(values["scores_csv"]) if values.get("scores_csv") else None
    values["samples"] = tuple(Path(p) for p in values.get("samples", ()))
    values["notes"], values["warnings"] = tuple(values.get("notes", ())), tuple(values.get("warnings", ()))
    return TrainResult(**values)
