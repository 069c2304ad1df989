"""``torch.compile`` of the UNet, shared by training and insertion: when to, how, and falling back.

* :func:`decide` turns ``compile = auto | on | off`` into yes or no with a reason the user is shown.
  ``auto`` is on for CUDA only. On the CPU, Inductor's compile of the UNet's forward and backward
  takes minutes on a small machine, and the one measurement so far (``bench/compile_bench.py``,
  ``bench/RESULTS.md``) was taken on a heavily shared machine: until an idle measurement shows
  it repays that within a run, the CPU stays eager. Apple's MPS backend is not supported well
  enough by Inductor.
* :func:`compile_in_place` uses ``nn.Module.compile``: the module keeps its class, its parameter
  names and its state dict (so LoRA loading, checkpoints and exports see the same model), and only
  its ``__call__`` goes through the compiled graph. ``dynamic=False``: one graph per input shape
  (training bucket, insertion work size); the number of graphs per frame is bounded by
  :data:`RECOMPILE_LIMIT`, after which dynamo runs that frame eagerly.
* A compile failure must never stop a job: :data:`compile_errors` are what a failed compile raises;
  callers catch them around the first call, :func:`uncompile` and run the same call eagerly
  (genuine errors of the model then reappear from the eager run, unhidden).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

RECOMPILE_LIMIT = 16  # graphs per compiled frame: buckets of a training run, work sizes of a session


def decide(mode: str, device: Any) -> tuple[bool, str]:
    """Whether to compile on ``device`` (a ``torch.device`` or its name) and why."""
    kind = str(device).split(":")[0]
    if mode == "on":
        return True, "asked for"
    if mode == "off":
        return False, "asked for"
    if kind == "cuda":
        return True, "auto: on for NVIDIA GPUs, where compiled kernels repay the compile time within a run"
    return False, (f"auto: off on {kind}, where compiling takes minutes and did not repay them (on a CPU the "
                   "compiled step was slower; bench/compile_bench.py); --compile on forces it")


def compile_errors() -> tuple[type[BaseException], ...]:
    """What a failed compile raises: dynamo/inductor errors (missing C++ compiler, unsupported op),
    or a RuntimeError/AssertionError from inside them. Out-of-memory is re-raised by callers."""
    import torch._dynamo.exc

    return (torch._dynamo.exc.TorchDynamoException, RuntimeError, AssertionError, NotImplementedError,
            OSError, ImportError)


def describe_failure(exc: BaseException) -> str:
    """One readable line: the error type and its first two lines (dynamo puts the cause second)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()][:2]
    return f"{type(exc).__name__}: {' '.join(lines)}"[:240]


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def compile_in_place(module: Any) -> None:
    """``module.compile(dynamic=False)``; the call is lazy: the first forward compiles."""
    import torch._dynamo

    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    module.compile(dynamic=False)


def uncompile(module: Any) -> None:
    """Back to eager: the module's own forward is called again."""
    if getattr(module, "_compiled_call_impl", None) is not None:
        module._compiled_call_impl = None


def is_compiled(module: Any) -> bool:
    return getattr(module, "_compiled_call_impl", None) is not None


def graphs_compiled() -> int:
    """How many graphs dynamo has compiled in this process (a counter to take differences of)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])
