"""The peak memory of each phase of a job (loading, caching, training…): host RAM and device memory.

Host RAM is the process's resident set. On Linux the kernel's high-water mark (``VmHWM``) is reset
at the start of each phase (``/proc/self/clear_refs``), so each phase's peak is exact; elsewhere a
sampling thread (every 20 ms, with psutil) records the largest resident set it sees. Device memory
is ``torch.cuda.max_memory_allocated`` with the peak reset at each phase (CUDA only).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
MIB = 1024 ** 2


def _status_kib(field: str) -> int | None:
    with contextlib.suppress(OSError, AttributeError, ValueError):
        match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
        return int(match.group(1)) if match else None
    return None


def rss_bytes() -> int | None:
    """The process's resident set size now."""
    kib = _status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    with contextlib.suppress(ImportError):
        import psutil

        return int(psutil.Process().memory_info().rss)
    return None


def _reset_high_water_mark() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


class _Sampler(threading.Thread):
    """Largest resident set seen, where the kernel keeps no resettable high-water mark."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="rss-peak-sampler")
        self.peak = rss_bytes() or 0
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_bytes() or 0)

    def stop(self) -> int:
        self._stop.set()
        self.join(timeout=1)
        return max(self.peak, rss_bytes() or 0)


class PhasePeaks:
    """``with peaks.phase("loading"): ...`` records that phase's host and device peaks (bytes)."""

    def __init__(self, device: Any = None) -> None:
        self.device = str(device) if device is not None else "cpu"
        self.phases: dict[str, dict[str, int | None]] = {}

    def _cuda(self) -> bool:
        if not self.device.startswith("cuda"):
            return False
        import torch

        return torch.cuda.is_available()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = rss_bytes()
        exact = _reset_high_water_mark()
        sampler = None if exact else _Sampler()
        if sampler is not None:
            sampler.start()
        if self._cuda():
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        try:
            yield
        finally:
            host: int | None
            if sampler is not None:
                host = sampler.stop()
            else:
                hwm = _status_kib("VmHWM")
                host = hwm * 1024 if hwm is not None else None
            device_peak = None
            if self._cuda():
                import torch

                torch.cuda.synchronize()
                device_peak = int(torch.cuda.max_memory_allocated())
            self.phases[name] = {"host_bytes": host, "device_bytes": device_peak, "host_start_bytes": start}

    def to_dict(self) -> dict[str, dict[str, float | None]]:
        """Phase → host and device peaks in MiB (``None``: not measurable here)."""
        return {name: {key.replace("_bytes", "_mib"): None if value is None else round(value / MIB, 1)
                       for key, value in v.items()} for name, v in self.phases.items()}

    def summary(self) -> str:
        parts = []
        for name, v in self.to_dict().items():
            text = f"{name} {v['host_mib']:.0f} MiB RAM" if v["host_mib"] is not None else f"{name} ? RAM"
            if v["device_mib"] is not None:
                text += f" / {v['device_mib']:.0f} MiB GPU"
            parts.append(text)
        return "peak memory: " + ", ".join(parts)
