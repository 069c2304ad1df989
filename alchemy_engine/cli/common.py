"""Shared CLI plumbing: result printing, progress printers, common arguments."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from alchemy_engine.jobs import CancelToken, Progress


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print machine-readable JSON; the last line is the result object")


def add_model_arg(parser: argparse.ArgumentParser) -> None:
    from alchemy_engine.api import MODEL_HELP

    parser.add_argument("--model", default=None, metavar="PATH|demo", help=MODEL_HELP)


class CliOutput:
    """Prints human text normally, and JSON lines with ``--json``."""

    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode
        self._bar: Any = None  # a tqdm bar while a stage with steps runs
        self._last_status = ""

    def info(self, text: str) -> None:
        """A human message: stdout normally, stderr in JSON mode so stdout stays parseable."""
        self._close_bar()
        print(text, file=sys.stderr if self.json_mode else sys.stdout, flush=True)

    def event(self, payload: dict[str, Any]) -> None:
        if self.json_mode:
            print(json.dumps(payload, default=str), flush=True)

    def progress(self, event: Progress) -> None:
        """A ProgressCallback: one JSON object per event, or a tqdm bar per stage."""
        if self.json_mode:
            self.event({"event": "progress", **event.to_dict()})
            return
        if not event.total:  # a stage with no steps: one status line, no empty bar
            self._close_bar()
            line = f"{event.stage}: {event.message}" if event.message else event.stage
            if line != self._last_status:
                print(line, file=sys.stderr, flush=True)
                self._last_status = line
            return
        from tqdm import tqdm

        if self._bar is None or self._bar.desc != event.stage or self._bar.total != event.total:
            self._close_bar()
            # initial=step: a bar opened mid-run (after a checkpoint line, or on resume) measures
            # its rate from here, not as if every earlier step took no time
            self._bar = tqdm(total=event.total or None, desc=event.stage, unit="step", initial=event.step,
                             dynamic_ncols=True, file=sys.stderr)
        self._bar.n = event.step
        postfix = {}
        if event.loss_smoothed is not None:
            postfix["loss"] = f"{event.loss_smoothed:.4f}"
        if event.learning_rate is not None:
            postfix["lr"] = f"{event.learning_rate:.2e}"
        if postfix:
            self._bar.set_postfix(postfix, refresh=False)
        if event.message:
            self._bar.set_description_str(f"{event.stage}: {event.message}", refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        """End any progress bar, so what follows starts on a fresh line."""
        self._close_bar()

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def result(self, payload: dict[str, Any] | None) -> None:
        self._close_bar()
        if payload is None:
            return
        if self.json_mode:
            print(json.dumps(payload, default=str), flush=True)
        else:
            for key, value in payload.items():
                if value is None or value == [] or value == {}:
                    continue
                shown = json.dumps(value, default=str, ensure_ascii=False) if isinstance(value, (dict, list, tuple)) else value
                print(f"{key}: {shown}")


def run_job(out: CliOutput, fn, request) -> Any:
    """Run an engine job with progress on the terminal; Ctrl+C cancels it cleanly."""
    cancel = CancelToken()
    install_sigint_cancel(cancel)
    return fn(request, out.progress, cancel)


def install_sigint_cancel(cancel: CancelToken) -> None:
    """First Ctrl+C asks the job to stop cleanly at the next step; a second one aborts."""
    import signal

    def handler(signum, frame):
        if cancel.cancelled:
            raise KeyboardInterrupt
        print("\nstopping after this step (Ctrl+C again to abort)", file=sys.stderr)
        cancel.cancel()

    signal.signal(signal.SIGINT, handler)
