"""Run a user-supplied training script (diffusers' ``train_dreambooth_lora_sdxl.py``) and time it.

Used by ``bench/train_bench.py --vs-reference``; not meant to be run by hand::

    python bench/reference_run.py RESULT.json SCRIPT.py --the-script's --own --arguments

The script runs in this process as ``__main__`` (``runpy``), unchanged. Each optimizer step is
timed by wrapping ``torch.optim.Optimizer.step`` of every optimizer class the script may use (one
call per training step, as in our trainer); the peak RSS and the timestamps go to RESULT.json at
exit, whether the script ends normally or not.
"""

from __future__ import annotations

import atexit
import functools
import json
import resource
import runpy
import sys
import time


def main() -> None:
    result_path, script, *args = sys.argv[1:]
    started = time.perf_counter()
    stamps: list[float] = []

    import torch

    def timed(step):
        @functools.wraps(step)
        def wrapper(self, *a, **kw):
            out = step(self, *a, **kw)
            if getattr(self, "_bench_outer", True):
                stamps.append(time.perf_counter())
            return out

        return wrapper

    for cls in {torch.optim.AdamW, torch.optim.Adam, torch.optim.SGD}:
        cls.step = timed(cls.step)

    def write() -> None:
        with open(result_path, "w") as fh:
            json.dump({"step_times": [b - a for a, b in zip(stamps, stamps[1:])], "steps": len(stamps),
                       "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                       "seconds": time.perf_counter() - started}, fh)

    atexit.register(write)
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
