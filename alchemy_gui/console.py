"""Where a console-less app writes what it would print.

A windowed build (Windows ``ImageAlchemy.exe``, a macOS app started from Finder) has no
stdout/stderr: ``sys.stdout`` and ``sys.stderr`` are ``None``. Then the app's log lines and the
command line's output and errors go to a log file under the data folder, and a failed command
says in a message box where that file is.
"""

from __future__ import annotations

import datetime
import sys
import traceback
from pathlib import Path

from alchemy_engine import api


def has_console() -> bool:
    return sys.stdout is not None and sys.stderr is not None


def redirect_to_log(name: str, argv: list[str]) -> Path:
    """Send stdout and stderr to ``<data folder>/logs/<name>.log`` (appended); returns its path."""
    path = api.logs_dir() / f"{name}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = open(path, "a", encoding="utf-8", buffering=1)  # open for the rest of the process
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    stream.write(f"--- {stamp} ImageAlchemy {' '.join(argv)}\n")
    sys.stdout = sys.stderr = stream
    return path


def last_error_line(path: Path) -> str:
    """The last ``error:`` line the command wrote to its log, or an empty string."""
    lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
             if line.startswith("error:")]
    return lines[-1] if lines else ""


def failure_message(path: Path, status: int) -> str:
    error = last_error_line(path)
    headline = error if error else f"The command failed (exit status {status})."
    return f"{headline}\n\nEverything it printed is in {path}"


def show_failure(path: Path, status: int) -> None:
    """Tell a user without a console that a command failed and where its log is."""
    from PySide6.QtWidgets import QMessageBox

    from alchemy_gui.app import create_application

    create_application([sys.argv[0]])
    QMessageBox.critical(None, "Image Alchemy", failure_message(path, status))


def run_cli(argv: list[str]) -> int:
    """The command line; without a console its output goes to ``logs/cli.log``."""
    from alchemy_engine.cli import main as cli_main

    if has_console():
        return cli_main(argv)
    log_path = redirect_to_log("cli", argv)
    try:
        status = cli_main(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        status = exc.code if isinstance(exc.code, int) else 1
    except Exception:  # noqa: BLE001 - a crash: its traceback goes to the log, the user is told where
        print("error: the command crashed", file=sys.stderr)
        traceback.print_exc()  # to sys.stderr, the log (the logging handlers may point elsewhere)
        status = 1
    sys.stderr.flush()
    if status != 0:
        show_failure(log_path, status)
    return status
