"""After a run: each phase's measured peak next to its estimate, in the log, the progress stream and
``runs/<id>/memory.json`` (host RAM and device memory separately), so the estimate is checked by
every run that uses it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alchemy_engine.atomic import atomic_write_json
from alchemy_engine.jobs import Progress, ProgressCallback, Stage
from alchemy_engine.memory.peaks import MIB, PhasePeaks

log = logging.getLogger(__name__)

MEMORY_FILE = "memory.json"


def compare(peaks: PhasePeaks, estimate: Any) -> dict[str, dict[str, Any]]:
    """Phase → measured and estimated MiB (host and device) and estimate / measured ratios."""
    estimated = getattr(estimate, "phases", {}) or {}
    out: dict[str, dict[str, Any]] = {}
    for name, measured in peaks.to_dict().items():
        row: dict[str, Any] = dict(measured)
        guess = estimated.get(name, {})
        for where in ("host", "device"):
            value = guess.get(f"{where}_bytes")
            row[f"{where}_estimate_mib"] = None if value is None else round(value / MIB, 1)
            if value is not None and measured[f"{where}_mib"]:
                row[f"{where}_ratio"] = round(value / MIB / measured[f"{where}_mib"], 3)
        out[name] = row
    return out


def record(run_dir: Path, peaks: PhasePeaks, estimate: Any, progress: ProgressCallback) -> str:
    """Write ``memory.json``, log and report the peaks; returns the one-line summary."""
    table = compare(peaks, estimate)
    summary = peaks.summary()
    ratios = [f"{name} ×{row['host_ratio']:.2f}" for name, row in table.items() if row.get("host_ratio")]
    if ratios:
        summary += " (estimate / measured RAM: " + ", ".join(ratios) + ")"
    atomic_write_json(Path(run_dir) / MEMORY_FILE, {"phases": table, "estimate": estimate.to_dict()})
    log.info("%s", summary)
    progress(Progress(Stage.NOTE, message=summary, run_id=Path(run_dir).name))
    return summary
