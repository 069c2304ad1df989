"""Run a user-supplied training script (diffusers' ``train_dreambooth_lora_sdxl.py``) and time it.

Used by ``bench/train_bench.py --vs-reference``; not meant to be run by hand::

    python bench/reference_run.py RESULT.json SCRIPT.py --the-script's --own --arguments

The script runs in this process as ``__main__`` (``runpy``), unchanged and without shims: the
version the harness supports (``bench/vs_reference.py``) runs as it is on the installed diffusers,
peft, transformers and accelerate, offline, on the CPU. Its steps, settings and prompts are read by
``bench/step_probe.py``, the same instrument our trainer's worker uses; the parsed arguments are
kept too (``argparse`` is wrapped to note the namespace the script gets). RESULT.json is written at
exit, whether the script ends normally or not, with the peak RSS.
"""

from __future__ import annotations

import argparse
import atexit
import json
import resource
import runpy
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    result_path, script, *args = sys.argv[1:]
    started = time.perf_counter()

    from step_probe import install

    probe = install()
    parsed: dict = {}
    original_parse = argparse.ArgumentParser.parse_args

    def noting_parse(self, *a, **kw):
        namespace = original_parse(self, *a, **kw)
        parsed.update({k: v for k, v in vars(namespace).items() if isinstance(v, (str, int, float, bool, type(None)))})
        return namespace

    argparse.ArgumentParser.parse_args = noting_parse  # type: ignore[method-assign]

    def write() -> None:
        with open(result_path, "w") as fh:
            json.dump({**probe.result(), "args": parsed,
                       "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                       "seconds": time.perf_counter() - started}, fh)

    atexit.register(write)
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
