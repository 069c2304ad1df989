"""The frozen app's locked build inputs (packaging/locks/, made by packaging/lock.py): every
requirement pinned with hashes, every dependency of the app present, the caps kept; build.sh
refuses to write a lock that did not pass the frozen self-test."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "packaging"))
import lock  # noqa: E402

LOCK_FILES = sorted(lock.LOCKS.glob("*-py*.txt"))
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a uv/pip-compile lock."""
    pins: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        match = REQUIREMENT.match(line)
        if match:
            current = _normal(match[1])
            pins[current] = (match[2], [])
        elif line.strip().startswith("--hash=sha256:") and current:
            pins[current][1].append(line.strip().removeprefix("--hash=sha256:").rstrip(" \\"))
        elif line.strip() and not line.startswith((" ", "#")):
            raise AssertionError(f"{path.name}: not a pinned requirement: {line}")
    return pins


def test_there_is_a_lock_for_each_platform_we_ship():
    names = {path.name for path in LOCK_FILES}
    assert {"linux-x86_64-py311.txt", "windows-x86_64-py311.txt", "macos-arm64-py311.txt"} <= names


@pytest.mark.parametrize("path", LOCK_FILES, ids=lambda path: path.name)
def test_every_locked_requirement_is_pinned_with_hashes(path):
    pins = _pins(path)
    assert len(pins) > 40
    unhashed = [name for name, (_, hashes) in pins.items() if not hashes]
    assert unhashed == []
    assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for _, hashes in pins.values() for digest in hashes)


@pytest.mark.parametrize("path", LOCK_FILES, ids=lambda path: path.name)
def test_a_lock_holds_every_dependency_of_the_app_and_the_builder(path):
    from packaging.requirements import Requirement

    declared = [Requirement(spec) for spec in importlib.metadata.requires("image-alchemy") or []]
    wanted = [req for req in declared if req.marker is None or req.marker.evaluate({"extra": "packaging"})]
    names = {_normal(req.name) for req in wanted}
    assert {"torch", "diffusers", "pyinstaller"} <= names
    assert names - set(_pins(path)) == set()


@pytest.mark.parametrize("path", LOCK_FILES, ids=lambda path: path.name)
def test_a_lock_keeps_the_caps_of_constraints_txt(path):
    from packaging.requirements import Requirement

    pins = _pins(path)
    for line in lock.CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            cap = Requirement(line)
            assert cap.specifier.contains(pins[_normal(cap.name)][0]), f"{path.name}: {cap} broken"


def test_the_resolver_is_asked_for_hashes_for_the_platform_with_the_caps():
    linux = lock.compile_command(lock.PLATFORMS["linux-x86_64"], Path("out.txt"), (3, 11))
    assert linux[1:5] == ["-m", "uv", "pip", "compile"]
    assert "--generate-hashes" in linux and "--upgrade" in linux
    assert linux[linux.index("--python-platform") + 1] == "x86_64-manylinux_2_28"
    assert linux[linux.index("--python-version") + 1] == "3.11"
    assert linux[linux.index("--constraint") + 1] == str(lock.CONSTRAINTS)
    assert "--index" not in linux  # PyPI only
    kept = lock.compile_command(lock.PLATFORMS["linux-x86_64"], Path("out.txt"), (3, 11), keep_pins=True)
    assert "--upgrade" not in kept  # a new dependency joins without moving the tested pins
    cpu = lock.compile_command(lock.PLATFORMS["linux-x86_64-cpu"], Path("out.txt"), (3, 11))
    assert cpu[cpu.index("--index") + 1] == "pytorch=https://download.pytorch.org/whl/cpu"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the CPU-only lock is Linux's")
def test_a_missing_lock_says_how_to_make_one(monkeypatch, tmp_path):
    monkeypatch.setattr(lock, "LOCKS", tmp_path / "locks")
    monkeypatch.setattr(lock, "ROOT", tmp_path)
    with pytest.raises(lock.LockError, match=r"--cpu --relock where https://download.pytorch.org/whl/cpu"):
        lock.existing_lock(cpu=True)


@pytest.mark.parametrize("args, said", [
    (["--relock", "--no-self-test"], "writes a lock only after the frozen self-test passes"),
    (["--relock", "--no-venv"], "cannot be combined with --no-venv"),
])
def test_build_refuses_a_lock_it_cannot_self_test(args, said):
    if sys.platform == "win32":
        pytest.skip("build.sh is the Linux and macOS script")
    done = subprocess.run(["bash", str(ROOT / "packaging" / "build.sh"), *args], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0 and said in done.stderr
