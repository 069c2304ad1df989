"""Helpers for the several-process training tests: 2 CPU processes with gloo on the demo model."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from train_helpers import subprocess_env

MAIN = Path(__file__).resolve().parents[3] / "main.py"
QUICK = ["--model", "demo", "--json", "--resolution", "64", "--rank", "4", "--learning-rate", "1e-3",
         "--sample-every", "0", "--device", "cpu"]


def options(**settings) -> list[str]:
    """``steps=6, flip=True`` -> ``--steps 6 --flip``."""
    out = []
    for name, value in settings.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value is not False:
            out += [flag, str(value)]
    return out


def env_for(project, cache: Path) -> dict[str, str]:
    env = subprocess_env(Path(project.root).parents[1], cache)
    env["OMP_NUM_THREADS"] = "1"  # two processes on a shared CPU
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_workers(project, cache: Path, *args: str, size: int = 2, timeout: float = 300) -> list[subprocess.CompletedProcess]:
    """``main.py train PROJECT args`` as ``size`` ranks started directly (what torchrun's agent does:
    RANK, WORLD_SIZE and the rendezvous address in the environment), without the agent's start-up."""
    port = free_port()
    children = []
    for rank in range(size):
        env = dict(env_for(project, cache), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(size),
                   LOCAL_WORLD_SIZE=str(size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        children.append(subprocess.Popen([sys.executable, str(MAIN), "train", str(project.root), *QUICK, *args],
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    done = []
    try:
        for child in children:
            out, err = child.communicate(timeout=timeout)
            done.append(subprocess.CompletedProcess(child.args, child.returncode, out, err))
    finally:
        for child in children:
            child.kill()
    return done


def run_cli(project, cache: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(MAIN), "train", str(project.root), *QUICK, *args],
                          capture_output=True, text=True, env=env_for(project, cache), timeout=timeout)


def result_of(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def max_difference(a: Path, b: Path) -> float:
    first, second = load_file(str(a)), load_file(str(b))
    assert first.keys() == second.keys()
    return max(float((first[k] - second[k]).abs().max()) for k in first)


def assert_same_lora(a: Path, b: Path) -> None:
    first, second = load_file(str(a)), load_file(str(b))
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def worker_pids(launcher_pid: int) -> dict[int, int]:
    """rank -> pid of the workers below a launcher (Linux: /proc)."""
    found, todo = {}, [launcher_pid]
    while todo:
        pid = todo.pop()
        for task in Path(f"/proc/{pid}/task").glob("*"):
            children = (task / "children").read_text().split() if (task / "children").exists() else []
            todo += [int(c) for c in children]
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        ranks = [e[5:] for e in environ if e.startswith(b"RANK=")]
        if ranks and os.path.basename(Path(f"/proc/{pid}/exe").resolve()).startswith("python"):
            found[int(ranks[0])] = pid
    return found
