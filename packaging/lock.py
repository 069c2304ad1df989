"""The frozen app's locked build inputs: one hashed requirements file per platform and Python.

    python packaging/lock.py path [--cpu]           the lock this machine builds from (or why none)
    python packaging/lock.py target [--cpu]         where this machine's lock belongs (--relock)
    python packaging/lock.py resolve [--cpu] --out FILE [--platform NAME] [--keep-pins]
                                                    re-resolve the newest allowed versions into FILE
                                                    (--keep-pins: keep FILE's versions where they
                                                    still fit, e.g. after adding a dependency)
    python packaging/lock.py stamp FILE             a fingerprint of FILE (build.sh remakes the
                                                    build environment when it changes)

packaging/build.sh and build.ps1 install with ``pip install --require-hashes -r LOCK``, so a bundle
built next month holds exactly what CI tested. ``--relock`` resolves into a candidate file, builds and
self-tests from it, and only then moves it into packaging/locks/. The resolver is uv
(``uv pip compile --generate-hashes``), which can resolve for another platform than the one it runs
on; caps on top of the project's own ranges live in packaging/locks/constraints.txt.
Plain Python without third-party imports (uv is run as ``python -m uv``); tests/test_lock.py checks it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ROOT / "packaging" / "locks"
CONSTRAINTS = LOCKS / "constraints.txt"
PYTORCH_INDEX = "https://download.pytorch.org/whl"


@dataclass(frozen=True)
class Platform:
    name: str
    target: str  # uv's --python-platform
    torch: str  # which PyTorch build the lock holds, for people
    torch_index: str = ""  # PyTorch's own index where PyPI's wheel is not the build we want
    macos: str = ""  # the oldest macOS the wheels may need (uv's MACOSX_DEPLOYMENT_TARGET)


PLATFORMS = {p.name: p for p in (
    # glibc 2.28 (Ubuntu 20.04, Debian 11, RHEL 8 and newer), as torch's wheel; this picks PySide6 6.9,
    # whose 6.10+ wheels need glibc 2.34.
    Platform("linux-x86_64", "x86_64-manylinux_2_28", "CUDA 13 (PyPI's default Linux wheel)"),
    Platform("linux-x86_64-cpu", "x86_64-manylinux_2_28", "CPU only", f"{PYTORCH_INDEX}/cpu"),
    Platform("windows-x86_64", "x86_64-pc-windows-msvc", "CPU only (PyPI's Windows wheel)"),
    Platform("macos-arm64", "aarch64-apple-darwin", "Metal (MPS)", macos="14.0"),  # torch 2.14's wheel
)}


class LockError(Exception):
    """Said to the maintainer in one line: what is wrong and what to run."""


def this_platform(cpu: bool = False) -> Platform:
    system, machine = platform.system(), platform.machine().lower()
    arch = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}.get(machine, machine)
    if system == "Linux" and arch == "x86_64":
        return PLATFORMS["linux-x86_64-cpu" if cpu else "linux-x86_64"]
    if system == "Windows" and arch == "x86_64":
        return PLATFORMS["windows-x86_64"]  # PyPI's Windows wheel is the CPU build already
    if system == "Darwin" and arch == "arm64":
        return PLATFORMS["macos-arm64"]
    raise LockError(f"no frozen build is made for {system} {machine}; the locks cover: {', '.join(PLATFORMS)}")


def python_tag(version: tuple[int, int] | None = None) -> str:
    major, minor = version or sys.version_info[:2]
    return f"py{major}{minor}"


def lock_path(plat: Platform, version: tuple[int, int] | None = None) -> Path:
    return LOCKS / f"{plat.name}-{python_tag(version)}.txt"


def existing_lock(cpu: bool = False) -> Path:
    plat = this_platform(cpu)
    path = lock_path(plat)
    if path.is_file():
        return path
    others = sorted(p.name for p in LOCKS.glob(f"{plat.name}-py*.txt"))
    flag = " --cpu" if cpu else ""
    hint = f" (there is {', '.join(others)}: build with that Python, e.g. PYTHON=python3.11)" if others else ""
    where = f" where {plat.torch_index} (its PyTorch) is reachable" if plat.torch_index else ""
    raise LockError(f"no lock for {plat.name} on Python {sys.version_info[0]}.{sys.version_info[1]} "
                    f"({path.relative_to(ROOT)}){hint}; make one with packaging/build.sh{flag} --relock{where}")


def compile_command(plat: Platform, out: Path, version: tuple[int, int] | None = None,
                    keep_pins: bool = False) -> list[str]:
    major, minor = version or sys.version_info[:2]
    command = [sys.executable, "-m", "uv", "pip", "compile", str(ROOT / "pyproject.toml"),
               "--extra", "packaging", "--generate-hashes", "--quiet", *([] if keep_pins else ["--upgrade"]),
               "--python-version", f"{major}.{minor}", "--python-platform", plat.target,
               "--constraint", str(CONSTRAINTS), "--output-file", str(out),
               "--custom-compile-command", f"packaging/build.sh --relock  ({plat.name}, Python {major}.{minor})"]
    if plat.torch_index:
        # Only torch and torchvision come from PyTorch's index; everything else from PyPI.
        command += ["--index", f"pytorch={plat.torch_index}", "--index-strategy", "unsafe-best-match"]
    extra = os.environ.get("PIP_CONSTRAINT", "")  # a machine-wide cap pip applies would refuse the lock
    command += [arg for path in extra.split() for arg in ("--constraint", path)]
    return command


def resolve(plat: Platform, out: Path, version: tuple[int, int] | None = None, keep_pins: bool = False) -> None:
    command = compile_command(plat, out, version, keep_pins)
    try:
        env = {**os.environ, "MACOSX_DEPLOYMENT_TARGET": plat.macos} if plat.macos else None
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    except OSError as exc:
        raise LockError(f"could not run uv: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"exit status {done.returncode}"
        if "No module named uv" in done.stderr:
            reason = f"uv is not installed: {sys.executable} -m pip install uv"
        raise LockError(f"could not resolve the {plat.name} lock: {reason}")
    major, minor = version or sys.version_info[:2]
    header = f"# Build inputs of the frozen app for {plat.name}, Python {major}.{minor}: PyTorch {plat.torch}.\n"
    out.write_text(header + out.read_text(encoding="utf-8"), encoding="utf-8")


def stamp(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="packaging/lock.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    path_cmd = sub.add_parser("path")
    path_cmd.add_argument("--cpu", action="store_true")
    target_cmd = sub.add_parser("target")
    target_cmd.add_argument("--cpu", action="store_true")
    resolve_cmd = sub.add_parser("resolve")
    resolve_cmd.add_argument("--cpu", action="store_true")
    resolve_cmd.add_argument("--out", type=Path, required=True)
    resolve_cmd.add_argument("--platform", choices=sorted(PLATFORMS), help="default: this machine's")
    resolve_cmd.add_argument("--keep-pins", action="store_true")
    stamp_cmd = sub.add_parser("stamp")
    stamp_cmd.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "path":
            print(existing_lock(args.cpu))
        elif args.command == "target":
            print(lock_path(this_platform(args.cpu)))
        elif args.command == "resolve":
            plat = PLATFORMS[args.platform] if args.platform else this_platform(args.cpu)
            resolve(plat, args.out, keep_pins=args.keep_pins)
            print(args.out)
        else:
            print(stamp(args.file))
    except LockError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
