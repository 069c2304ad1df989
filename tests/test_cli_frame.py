"""The command line: help lists every command; user errors are one line with no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_help_lists_the_commands():
    done = subprocess.run([sys.executable, "main.py", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for command in ("models", "project", "train", "insert", "segment"):
        assert command in done.stdout


def test_unknown_project_is_one_line_error(alchemy_home):
    done = subprocess.run([sys.executable, "main.py", "project", "show", "no-such-project"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("error: ")
