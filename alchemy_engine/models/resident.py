"""Models that stay loaded between inference jobs, and freeing them before training.

Inference keeps SDXL, LoRAs, SAM and the detector loaded so a second insertion or click is quick;
training needs that memory back. Holders (``InsertionSession``) register themselves here, and the
trainer calls :func:`release_all` before it loads anything: neither side imports the other.

:func:`import_long_lived` keeps Python's cyclic collector from stalling the process: see there.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import importlib
import sys
import threading
import weakref
from collections.abc import Iterator
from typing import Protocol


class ModelHolder(Protocol):
    def release(self) -> None: ...


_holders: weakref.WeakSet = weakref.WeakSet()
_lock = threading.Lock()

# What loading an SDXL pipeline imports: diffusers loads these lazily, and they pull in torch._dynamo,
# torch.distributed, sympy, scipy, peft (about 3,000 modules, 330 k objects).
SDXL_LIBRARIES = (
    "torch",
    "diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl",
    "diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl_img2img",
    "diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl_inpaint",
    "diffusers.models.unets.unet_2d_condition",
    "diffusers.models.autoencoders.autoencoder_kl",
    "diffusers.guiders",
    "transformers.models.clip.modeling_clip",
    "transformers.models.clip.tokenization_clip",
    "peft",
)


def import_long_lived(*modules: str) -> None:
    """Import ``modules`` with the automatic cyclic collector paused, then freeze every live object.

    torch, diffusers and transformers leave about 500 k objects behind, and a full collection walks
    them all while holding the GIL: 0.3-0.8 s (measured, ``bench/RESULTS.md``) during which no other
    thread runs, the GUI's included. The collector runs a full pass each time the heap grows by a
    quarter (several times during these imports) and :func:`free_device_memory` runs one on purpose.
    Frozen objects (``gc.freeze``) are skipped by every later pass, so those take milliseconds.

    Call it before a job loads its models: what is alive then is long-lived (modules, classes,
    library caches). Frozen objects are still freed by reference counting; only a reference cycle
    among them would never be collected, so no model that is about to be dropped should be alive
    (models without cycles, like a loaded SDXL pipeline, are freed as usual). Does nothing once all
    ``modules`` are imported.
    """
    missing = [name for name in modules if name not in sys.modules]
    if not missing:
        return
    failures: list[BaseException] = []
    # On a thread of their own: garbage cycles an import leaves behind are frozen below and never
    # collected, and one holding a frame (trio keeps a traceback from its import) would keep the whole
    # calling stack alive through f_back: the caller's frame, and the model it then loads into a local.
    importer = threading.Thread(target=_import_all, args=(missing, failures), name="import-long-lived")
    with collector_paused():
        try:
            importer.start()
            importer.join()
        finally:
            gc.freeze()
    if failures:
        raise failures[0]


def _import_all(names: list[str], failures: list[BaseException]) -> None:
    try:
        for name in names:
            importlib.import_module(name)
    except BaseException as exc:  # noqa: BLE001 - handed to the calling thread, which raises it
        failures.append(exc)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic cyclic collection inside (imports, model loading). Loading SDXL makes tens of
    thousands of short-lived containers (each CLIP tokenizer's 48 k merges are lists) that reference
    counting frees anyway; a full pass that meets them holds the GIL for 60-140 ms. Two jobs may
    load at once (the GUI's model lane): the collector comes back when the last pause ends."""
    global _pauses, _enable_after
    with _pause_lock:
        if _pauses == 0:
            _enable_after = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _enable_after:
                gc.enable()


_pause_lock = threading.Lock()
_pauses = 0
_enable_after = False
_BUILD_LOCK = threading.RLock()


@contextlib.contextmanager
def building_models() -> Iterator[None]:
    """Hold while building or loading models, or attaching LoRA layers: diffusers and transformers
    build models under accelerate's ``init_empty_weights``, which patches ``torch.nn.Module`` for
    the whole process, so a model built on another thread meanwhile got meta tensors ("Cannot copy
    out of meta tensor", seen with a SAM click beside a training run). Two jobs that run side by
    side (the GUI's model lane) load one after the other; the collector is paused meanwhile."""
    with _BUILD_LOCK, collector_paused():
        yield


def register(holder: ModelHolder) -> None:
    with _lock:
        _holders.add(holder)


def release_all() -> int:
    """Ask every live holder to drop its models, then free the device cache; returns the count."""
    with _lock:
        holders = list(_holders)
    for holder in holders:
        holder.release()
    free_device_memory()
    return len(holders)


def free_device_memory() -> None:
    """Collect dropped modules now, hand cached CUDA blocks back to the driver and freed host
    memory back to the system."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    _trim_host_heap()


def _trim_host_heap() -> None:
    """glibc keeps freed blocks below its adaptive mmap threshold (up to 32 MB: most of a model's
    weights) in its heap, so after a job the system still counts the models as used (10 GB after a
    full-size CPU training run, until the next job reuses it). ``malloc_trim`` hands them back."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None  # macOS and Windows allocators return freed memory themselves
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl): it has no malloc_trim
        return None
    return libc if hasattr(libc, "malloc_trim") else None
