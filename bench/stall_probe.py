"""Attribute UI stalls to code: a watchdog thread samples every thread's Python stack while the UI
heartbeat is late (``python bench/ui_bench.py --attribute``).

When the watchdog runs, it holds the GIL, so the main thread is then either inside a long handler
(its stack says which) or waiting for the GIL that another thread holds. A watchdog that wakes much
later than it asked to was itself kept off the GIL: the other threads' stacks right after such a
gap show what held it (the frame that just returned from a long C call).
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)


def short_stack(frame, depth: int = 6) -> str:
    """The innermost ``depth`` frames, project files by relative path, libraries by package."""
    parts = []
    for entry in reversed(traceback.extract_stack(frame)):
        name = entry.filename
        if name.startswith(ROOT):
            name = name[len(ROOT) + 1:]
        elif "site-packages/" in name:
            name = name.split("site-packages/", 1)[1]
        else:
            name = Path(name).name
        parts.append(f"{name}:{entry.lineno} {entry.name}")
        if len(parts) == depth:
            break
    return " <- ".join(parts)


class StallProbe:
    def __init__(self, heartbeat, threshold_s: float = 0.03, period_s: float = 0.002) -> None:
        self.heartbeat = heartbeat
        self.threshold, self.period = threshold_s, period_s
        self.main_ident = threading.main_thread().ident
        self.samples: list[tuple[float, float, str, str]] = []  # (stall start, watchdog gap, thread, stack)
        self.collections: list[tuple[int, float]] = []  # (generation, seconds) of each cyclic GC run
        self._gc_started = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="stall-probe", daemon=True)

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._thread.start()

    def stop(self) -> None:
        gc.callbacks.remove(self._on_gc)
        self._stop.set()
        self._thread.join()

    def take(self) -> dict:
        """What was sampled since the last call, and what the collector tracks now."""
        tracked = Counter(type(o).__name__ for o in gc.get_objects())  # frozen objects are not listed
        taken = {"samples": self.samples, "collections": self.collections, "tracked": tracked,
                 "frozen": gc.get_freeze_count()}
        self.samples, self.collections = [], []
        return taken

    def _on_gc(self, phase: str, info: dict) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._gc_started = now
        else:
            self.collections.append((info["generation"], now - self._gc_started))

    def _watch(self) -> None:
        names = {}
        woke = time.perf_counter()
        while not self._stop.is_set():
            time.sleep(self.period)
            now = time.perf_counter()
            gap, woke = now - woke, now
            started = self.heartbeat.last
            if now - started - self.heartbeat.interval < self.threshold:
                continue
            names.update({t.ident: t.name for t in threading.enumerate()})
            for ident, frame in sys._current_frames().items():
                if ident == threading.get_ident():
                    continue
                who = "MAIN" if ident == self.main_ident else names.get(ident, str(ident))
                self.samples.append((started, gap, who, short_stack(frame)))


def report(taken: dict, top: int = 6) -> str:
    """The cyclic collector's runs (they hold the GIL throughout); per thread, the stacks seen most
    often during stalls; the stacks right after the watchdog's own longest waits for the GIL."""
    samples, collections, tracked = taken["samples"], taken["collections"], taken["tracked"]
    full = sorted((s for g, s in collections if g == 2), reverse=True)
    common = ", ".join(f"{name} {n}" for name, n in tracked.most_common(8))
    lines = [f"  GC after: {sum(tracked.values())} objects tracked ({common}), {taken['frozen']} frozen",
             f"  GC during: {len(collections)} collections, {sum(s for _, s in collections) * 1000:.0f} ms in all; "
             f"{len(full)} full, longest {', '.join(f'{s * 1000:.0f}' for s in full[:5]) or '-'} ms"]
    if not samples:
        return "\n".join(lines + ["  no stall over the threshold was sampled"])
    lines.append(f"  {len({s[0] for s in samples})} stalls, {len(samples)} thread samples")
    by_thread: dict[str, Counter] = {}
    for _, _, who, stack in samples:
        by_thread.setdefault(who, Counter())[stack] += 1
    for who, stacks in sorted(by_thread.items()):
        lines.append(f"  [{who}] most seen:")
        lines += [f"    {n:4d}× {stack}" for stack, n in stacks.most_common(top)]
    lines.append("  after the watchdog's longest waits (ms: thread: stack):")
    for _, gap, who, stack in sorted(samples, key=lambda s: -s[1])[:top * 2]:
        lines.append(f"    {gap * 1000:6.1f} {who}: {stack}")
    return "\n".join(lines)
