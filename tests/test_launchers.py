"""packaging/launchers/launch.sh with a fake ``python3`` on PATH: the first start installs (visible
message, log file), later starts go straight to the app, a failed install says what to do."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAUNCH = ROOT / "packaging" / "launchers" / "launch.sh"
TOOLS = ("bash", "sh", "dirname", "cat", "cksum", "cut", "mkdir", "tee", "grep", "date", "tail", "uname",
         "sed", "cp", "echo", "env", "basename")

FAKE_PYTHON = r"""#!/usr/bin/env bash
# A stand-in for python3: records each call, makes venvs, "installs", "runs" the app.
echo "$(basename "$0") $*" >>"$FAKE_CALLS"
case "$1" in
  -c) [ -z "${FAKE_OLD:-}" ] ;;
  --version) echo "Python 3.11.9" ;;
  -m)
    case "$2" in
      venv) mkdir -p "$3/bin" && cp "$0" "$3/bin/python" ;;
      pip)
        if [ "$4" = "-e" ] && [ -n "${FAKE_PIP_FAIL:-}" ]; then echo "ERROR: no network"; exit 1; fi
        echo "Collecting torch"; echo "Successfully installed image-alchemy" ;;
    esac ;;
  *) echo "APP $*" ;;
esac
"""

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@pytest.fixture
def launcher(tmp_path):
    """Run launch.sh with PATH holding only the fake python3 and the basic tools it uses."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    fake = bin_dir / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    calls = tmp_path / "calls.txt"
    calls.touch()
    base = {"PATH": str(bin_dir), "HOME": str(tmp_path), "FAKE_CALLS": str(calls),
            "IMAGE_ALCHEMY_VENV": str(tmp_path / "venv"), "IMAGE_ALCHEMY_HOME": str(tmp_path / "data")}

    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        calls.write_text("")
        return subprocess.run(["bash", str(LAUNCH), *args], env={**base, **env}, capture_output=True,
                              text=True, timeout=60)

    run.calls = lambda: calls.read_text().splitlines()
    run.venv = tmp_path / "venv"
    run.log = tmp_path / "data" / "logs" / "install.log"
    return run


def test_first_start_installs_with_a_message_and_a_log_then_starts(launcher):
    done = launcher("--demo")
    assert done.returncode == 0, done.stderr
    assert "First start: installing Image Alchemy" in done.stdout and str(launcher.log) in done.stdout
    assert "Collecting torch" in done.stdout  # pip's progress is shown
    assert f"APP {ROOT / 'main.py'} --demo" in done.stdout
    calls = launcher.calls()
    assert calls[0].startswith("python3 -c") and f"python3 -m venv {launcher.venv}" in calls
    assert f"python -m pip install -e {ROOT}" in calls
    assert "Successfully installed image-alchemy" in launcher.log.read_text()
    assert (launcher.venv / ".image-alchemy-installed").is_file()


def test_later_starts_skip_the_install(launcher):
    assert launcher().returncode == 0
    done = launcher("project", "list")
    assert done.returncode == 0
    assert "First start" not in done.stdout
    assert launcher.calls() == [f"python {ROOT / 'main.py'} project list"]


def test_a_changed_pyproject_reinstalls(launcher):
    assert launcher().returncode == 0
    (launcher.venv / ".image-alchemy-installed").write_text("12345\n")
    done = launcher()
    assert "First start" in done.stdout
    assert f"python -m pip install -e {ROOT}" in launcher.calls()


def test_a_failed_install_says_what_to_do_and_retries_next_time(launcher):
    done = launcher(FAKE_PIP_FAIL="1")
    assert done.returncode == 1
    assert "Image Alchemy could not be installed: pip could not install the app" in done.stderr
    assert "What to do: check the internet connection" in done.stderr and str(launcher.log) in done.stderr
    assert "ERROR: no network" in launcher.log.read_text()
    assert not (launcher.venv / ".image-alchemy-installed").exists()
    assert not any(line.startswith("python " + str(ROOT / "main.py")) for line in launcher.calls())
    again = launcher()
    assert again.returncode == 0 and "APP" in again.stdout


def test_no_suitable_python_is_explained(launcher):
    done = launcher(FAKE_OLD="1")
    assert done.returncode == 1
    assert "no Python 3.10 or newer was found" in done.stderr and "install Python 3.10+" in done.stderr
    assert not launcher.venv.exists()


def test_dry_run_says_what_it_would_do_and_changes_nothing(launcher):
    done = launcher("--dry-run", "--demo")
    assert done.returncode == 0, done.stderr
    assert "python:  python3" in done.stdout and "install: needed" in done.stdout
    assert f"start:   {launcher.venv}/bin/python {ROOT / 'main.py'} --demo" in done.stdout
    assert not launcher.venv.exists() and not launcher.log.exists()
    assert launcher().returncode == 0
    assert "install: not needed" in launcher("--dry-run").stdout


def test_install_desktop_writes_absolute_paths(launcher, tmp_path):
    done = launcher("--install-desktop", XDG_DATA_HOME=str(tmp_path / "share"))
    assert done.returncode == 0, done.stderr
    entry = (tmp_path / "share" / "applications" / "image-alchemy.desktop").read_text()
    assert f'Exec="{LAUNCH}"' in entry and f"Icon={ROOT / 'resources' / 'icons' / 'app.png'}" in entry


def test_other_launchers_call_the_same_logic():
    command = (ROOT / "packaging" / "launchers" / "Image Alchemy.command").read_text()
    assert 'launch.sh" "$@"' in command
    assert os.access(ROOT / "packaging" / "launchers" / "Image Alchemy.command", os.X_OK)
    bat = (ROOT / "packaging" / "launchers" / "launch.bat").read_text()
    assert "--dry-run" in bat and r"logs\install.log" in bat and "What to do" in bat
