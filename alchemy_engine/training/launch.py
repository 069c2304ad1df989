"""``train --gpus N``: the command re-runs itself as N processes under ``torch.distributed.run``.

``--standalone`` picks a free port on this computer and reads no accelerate configuration; every
worker runs the same command line, finds its rank in the environment (``world.py``) and only rank
0 prints. A frozen app cannot run ``python -m``: it runs its own binary with ``--torchrun`` (handled
by ``main.py``), and torchrun starts the binary again (``--no-python``).

torchrun puts its workers in sessions of their own, so a Ctrl+C at the terminal reaches only this
launcher, which passes it on: the first stops every rank at the same step with a checkpoint, the
second terminates them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

TORCHRUN_FLAG = "--torchrun"
STOPPED = 130


def command(gpus: int, argv: list[str], module: str | None = None) -> list[str]:
    """The torchrun command line that runs ``argv`` as ``gpus`` processes: this program's arguments,
    or (``module``) a Python module's, e.g. the CLI's from inside the app."""
    launcher = ["--standalone", f"--nproc-per-node={gpus}"]
    if getattr(sys, "frozen", False):
        return [sys.executable, TORCHRUN_FLAG, *launcher, "--no-python", sys.executable, *argv]
    target = ["-m", module] if module else [str(Path(sys.argv[0]).resolve())]
    return [sys.executable, "-m", "torch.distributed.run", *launcher, *target, *argv]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    # a stopping rank finishes its step and writes a checkpoint before torchrun's 30 s would kill it
    env.setdefault("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", "600")
    if sys.platform == "win32":
        env.setdefault("USE_LIBUV", "0")  # torch ≥ 2.4's TCP store on Windows (pytorch #139990)
    return env


def interrupt(child: subprocess.Popen) -> None:
    """Ask torchrun to stop its workers at the next step (SIGINT, passed on to each); Windows has no
    SIGINT for another process group, so there the workers end without a checkpoint."""
    if sys.platform == "win32":
        child.terminate()
    else:
        child.send_signal(signal.SIGINT)


def relaunch(gpus: int, argv: list[str]) -> int:
    """Run ``argv`` as ``gpus`` processes and wait; returns the exit status (130 when stopped)."""
    posix = sys.platform != "win32"
    child = subprocess.Popen(command(gpus, argv), env=environment(), start_new_session=posix)
    stops = 0

    def on_interrupt(signum, frame):
        nonlocal stops
        stops += 1
        if stops == 1:
            print("\nstopping every process after this step (Ctrl+C again to abort)", file=sys.stderr, flush=True)
            interrupt(child)
        else:
            child.terminate()

    def on_terminate(signum, frame):  # the launcher's own end (a closed terminal, kill): end theirs too
        child.terminate()

    handlers = {signal.SIGINT: on_interrupt, signal.SIGTERM: on_terminate}
    if hasattr(signal, "SIGHUP"):
        handlers[signal.SIGHUP] = on_terminate
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        status = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return STOPPED if stops and status != 0 else status
