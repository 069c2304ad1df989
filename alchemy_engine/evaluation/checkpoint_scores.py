"""Scores per training checkpoint: which step makes the most faithful subject?

Every ``eval_every`` steps the trainer renders the same few DreamBench prompts (same seeds every
time, so the changes are the LoRA's) and this module scores them against the reference photos:
mean DINO, CLIP-I and CLIP-T (and DINOv2) per evaluated step, one row each in
``runs/<id>/scores.csv``, with a strip of the images in ``runs/<id>/eval/step-NNNNNN.png``. The best
step is the one with the highest DINO + CLIP-T: subject fidelity without forgetting the prompt
(DINO alone keeps rising as the LoRA overfits, while CLIP-T falls).

It knows nothing about training: the trainer hands it a ``render(index) -> image`` function.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from alchemy_engine.atomic import atomic_path, atomic_write_text
from alchemy_engine.evaluation import encoders as eval_encoders
from alchemy_engine.evaluation import prompts
from alchemy_engine.jobs import Progress, ProgressCallback, Stage

log = logging.getLogger(__name__)

SCORES_FILE = "scores.csv"
EVAL_DIR = "eval"
PROMPT_PREFIX = "eval-"
COLUMNS = ("step", "dino", "clip_i", "clip_t", "dinov2", "dino_model", "clip_model")


def eval_prompt_names(count: int, token: str, class_noun: str) -> dict[str, str]:
    """``{"eval-0": "a sks dog in the jungle", ...}``: the fixed prompts whose embeddings training caches."""
    return {f"{PROMPT_PREFIX}{i}": p for i, p in enumerate(prompts.preview_prompts(count, token, class_noun))}


def read_scores(csv_path: Path) -> list[dict[str, Any]]:
    """The rows of a ``scores.csv`` (numbers as floats, ``step`` as int); [] when there is none."""
    if not Path(csv_path).is_file():
        return []
    rows = []
    for raw in csv.DictReader(io.StringIO(Path(csv_path).read_text(encoding="utf-8"))):
        row: dict[str, Any] = {"step": int(raw["step"])}
        for key in ("dino", "clip_i", "clip_t", "dinov2"):
            row[key] = float(raw[key]) if raw.get(key) else None
        row.update(dino_model=raw.get("dino_model", ""), clip_model=raw.get("clip_model", ""))
        rows.append(row)
    return rows


def best_step(rows: list[dict[str, Any]]) -> int | None:
    """The evaluated step with the highest DINO + CLIP-T (the earliest on a tie)."""
    if not rows:
        return None
    return max(rows, key=lambda r: ((r["dino"] or 0.0) + (r["clip_t"] or 0.0), -r["step"]))["step"]


class CheckpointScores:
    """Holds the scorer and the reference embeddings for one run; :meth:`evaluate` is one row."""

    def __init__(self, run_dir: Path, project: Any, prompt_map: dict[str, str], *, source: str | None,
                 device: str | None, resumed_from: int | None) -> None:
        from alchemy_engine.evaluation.ranking import shared_scorer
        from alchemy_engine.evaluation.subject_crop import reference_images

        self.run_dir = Path(run_dir)
        self.csv_path = self.run_dir / SCORES_FILE
        self.token = project.token
        self.prompt_map = prompt_map
        self.scorer = shared_scorer(source, device=device)  # EvalModelsMissing: see create()
        refs, _ = reference_images(project, crop=False)
        self.refs = self.scorer.references([r.image for r in refs], [r.key for r in refs])
        kept = [r for r in read_scores(self.csv_path) if resumed_from is not None and r["step"] <= resumed_from]
        self.rows: list[dict[str, Any]] = kept
        self._write()

    @classmethod
    def create(cls, run_dir: Path, project: Any, prompt_map: dict[str, str], *, source: str | None,
               device: str | None, resumed_from: int | None, warnings: list[str]) -> CheckpointScores | None:
        """The scorer, or None with a warning when the evaluation models are missing (training goes on)."""
        try:
            return cls(run_dir, project, prompt_map, source=source, device=device, resumed_from=resumed_from)
        except eval_encoders.EvalModelsMissing as exc:
            log.warning("checkpoint scores skipped: %s", exc)
            warnings.append(f"checkpoint scores skipped: {exc}")
            return None

    def evaluate(self, step: int, total: int, render: Callable[[str], Image.Image],
                 progress: ProgressCallback) -> dict[str, Any]:
        """Render every fixed prompt (``render(name)``), score, append a row to ``scores.csv``."""
        names = list(self.prompt_map)
        images = []
        for i, name in enumerate(names):
            progress(Progress(Stage.EVALUATE, step=step, total=total, message=f"scoring prompt {i + 1}/{len(names)}"))
            images.append(render(name))
        texts = [prompts.without_token(self.prompt_map[n], self.token) for n in names]
        scores = self.scorer.score(images, self.refs, texts)
        row: dict[str, Any] = {"step": step}
        for key in ("dino", "clip_i", "clip_t", "dinov2"):
            values = [s[key] for s in scores if key in s]
            row[key] = sum(values) / len(values) if values else None
        models = self.scorer.model_names
        row.update(dino_model=models["dino"], clip_model=models["clip"])
        self.rows = [r for r in self.rows if r["step"] != step] + [row]
        self._write()
        strip = _strip(images)
        path = self.run_dir / EVAL_DIR / f"step-{step:06d}.png"
        with atomic_path(path) as tmp:
            strip.save(tmp, format="PNG")
        progress(Progress(Stage.EVALUATE, step=step, total=total, preview=strip, preview_path=path,
                          message=f"DINO {row['dino']:.3f}, CLIP-T {row['clip_t']:.3f} (best step "
                                  f"{best_step(self.rows)})"))
        return row

    @property
    def best_step(self) -> int | None:
        return best_step(self.rows)

    def _write(self) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(COLUMNS)
        for row in sorted(self.rows, key=lambda r: r["step"]):
            writer.writerow([_cell(row.get(c)) for c in COLUMNS])
        atomic_write_text(self.csv_path, buffer.getvalue())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.6f}" if isinstance(value, float) else str(value)


def _strip(images: list[Image.Image], height: int = 256) -> Image.Image:
    thumbs = [im.convert("RGB").resize((max(1, round(im.width * height / im.height)), height)) for im in images]
    strip = Image.new("RGB", (sum(t.width for t in thumbs), height), "white")
    x = 0
    for thumb in thumbs:
        strip.paste(thumb, (x, 0))
        x += thumb.width
    return strip
