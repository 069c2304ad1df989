"""Models that stay loaded between inference jobs, and freeing them before training.

Inference keeps SDXL, LoRAs, SAM and the detector loaded so a second insertion or click is quick;
training needs that memory back. Holders (``InsertionSession``) register themselves here, and the
trainer calls :func:`release_all` before it loads anything: neither side imports the other.
"""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Protocol


class ModelHolder(Protocol):
    def release(self) -> None: ...


_holders: weakref.WeakSet = weakref.WeakSet()
_lock = threading.Lock()


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
    """Collect dropped modules now and hand cached CUDA blocks back to the driver."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
