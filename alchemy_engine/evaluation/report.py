"""What an evaluation writes: ``scores.csv`` (one row per image), ``summary.json`` (means,
per-prompt means, PRES, DIV, the models used) and a contact sheet; and the paper's Table 1.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from alchemy_engine.atomic import atomic_path, atomic_write_json, atomic_write_text

METRICS = ("dino", "clip_i", "clip_t", "dinov2", "dino_subject", "dinov2_subject")
CSV_COLUMNS = ("set", "prompt_index", "prompt", "seed", "file") + METRICS
# Image-Alchemy (arXiv 2505.10743) Table 1, DreamBench, as printed there; DINO / CLIP-I / CLIP-T.
PAPER_TABLE_1 = {
    "Image-Alchemy (paper)": {"dino": 0.789, "clip_i": 0.557, "clip_t": 0.334},
    "DreamBooth (paper)": {"dino": 0.668, "clip_i": 0.803, "clip_t": 0.305},
}
THUMB = 160


def mean(values: list[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def means(rows: list[dict[str, Any]]) -> dict[str, float]:
    out = {}
    for metric in METRICS:
        value = mean([r[metric] for r in rows if metric in r])
        if value is not None:
            out[metric] = round(value, 6)
    return out


def per_prompt(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["prompt_index"]].append(row)
    return [{"prompt_index": i, "prompt": g[0]["prompt"], "images": len(g), **means(g)}
            for i, g in sorted(groups.items())]


def write_scores_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else (f"{row[c]:.6f}" if isinstance(row[c], float) else row[c])
                         for c in CSV_COLUMNS])
    atomic_write_text(path, buffer.getvalue())
    return path


def write_summary(summary: dict[str, Any], path: Path) -> Path:
    atomic_write_json(path, summary)
    return path


def contact_sheet(groups: list[tuple[str, list[Path]]], path: Path, thumb: int = THUMB) -> Path:
    """One row per prompt (its label above), its images side by side, as a PNG."""
    label_h = 18
    columns = max((len(files) for _, files in groups), default=1) or 1
    sheet = Image.new("RGB", (columns * thumb, max(1, len(groups)) * (thumb + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (label, files) in enumerate(groups):
        top = row * (thumb + label_h)
        draw.text((4, top + 3), label[:100], fill="black")
        for col, file in enumerate(files):
            with Image.open(file) as opened:
                image = opened.convert("RGB")
            image.thumbnail((thumb, thumb))
            sheet.paste(image, (col * thumb + (thumb - image.width) // 2, top + label_h))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path


def table_text(summary: dict[str, Any]) -> str:
    """Our means beside the paper's Table 1 (different prompts, seeds and models: a reference only)."""
    rows = {"this run": summary.get("mean", {})} | PAPER_TABLE_1
    lines = [f"{'':<24}{'DINO':>8}{'CLIP-I':>8}{'CLIP-T':>8}"]
    for name, values in rows.items():
        cells = "".join(f"{values[k]:>8.3f}" if values.get(k) is not None else f"{'—':>8}"
                        for k in ("dino", "clip_i", "clip_t"))
        lines.append(f"{name:<24}{cells}")
    models = summary.get("models", {})
    lines.append(f"(this run: {models.get('dino', '?')}, {models.get('clip', '?')}; the paper's numbers are "
                 "from its own Table 1 on DreamBench)")
    for key, label in (("pres", "PRES (lower is better)"), ("div", "DIV (higher is better)")):
        if summary.get(key) is not None:
            base = summary.get(f"{key}_base")
            lines.append(f"{label}: {summary[key]:.3f}" + (f"  (base model: {base:.3f})" if base is not None else ""))
    return "\n".join(lines)
