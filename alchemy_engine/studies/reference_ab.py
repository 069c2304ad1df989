"""``evaluate --insert-into SCENES --ip-adapter FILE --ip-ab``: does reference guidance help this project?

Every scene is inserted twice with the same seeds, guidance off and on. Scoring against the photos
guidance was fed would be circular, so the photos are split: guidance sees the first part
(``ip_holdout`` is the share held out, at least one photo on each side), the scores compare with
the held-out rest only. Per (scene, seed) pair the on − off difference of subject DINO, DINO,
CLIP-I and CLIP-T, with a bootstrap 95 % interval of the mean; and a copy score: the highest DINO
between the inserted subject and any single guidance photo (guidance that pastes a reference's
pose and background raises it without the subject looking more like itself).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from alchemy_engine.errors import InvalidRequest
from alchemy_engine.evaluation import prompts, report, subject_crop
from alchemy_engine.jobs import Progress, Stage

METRICS = ("dino_subject", "dino", "clip_i", "clip_t", "copy")
BOOTSTRAP = 2000
MAX_GUIDANCE_PHOTOS = 4


def split_photos(project: Any, holdout: float) -> tuple[list[str], list[str]]:
    """``(guidance photos, held-out photos)`` by stored name; photos with masks guide first."""
    photos = sorted(project.reference_photos(), key=lambda p: (p.mask_path is None, p.name))
    if len(photos) < 2:
        raise InvalidRequest(f"the reference A/B needs at least 2 photos in project {project.name!r} (some guide, "
                             "the others are scored against); import more")
    held = min(len(photos) - 1, max(1, round(len(photos) * holdout)))
    guide = [p.name for p in photos[: len(photos) - held]][:MAX_GUIDANCE_PHOTOS]
    return guide, [p.name for p in photos[len(photos) - held:]]


def bootstrap_interval(values: list[float], seed: int = 0) -> dict[str, Any]:
    """Mean of ``values`` and a percentile-bootstrap 95 % interval of that mean."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return {"mean": None, "ci95": None, "pairs": 0}
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, (BOOTSTRAP, data.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": round(float(data.mean()), 6), "ci95": [round(float(low), 6), round(float(high), 6)],
            "pairs": int(data.size)}


class _Scorer:
    """Scores against the held-out photos, and the copy score against each guidance photo."""

    def __init__(self, scorer: Any, project: Any, token: str, guide: list[str], held: list[str]) -> None:
        self.scorer, self.token = scorer, token
        whole, _ = subject_crop.reference_images(project, crop=False)
        crops, self.notes = subject_crop.reference_images(project, crop=True)

        def refs(items: list, names: list[str]) -> Any:
            chosen = [r for r in items if r.source.name in names]
            return scorer.references([r.image for r in chosen], [r.key for r in chosen])

        self.whole, self.crops, self.guide = refs(whole, held), refs(crops, held), refs(crops, guide)

    def score(self, image: Image.Image, mask: np.ndarray, prompt: str) -> dict[str, Any]:
        row = dict(self.scorer.score([image], self.whole, prompts.without_token(prompt, self.token))[0])
        cropped = subject_crop.crop_to_mask(image, mask)
        if cropped is not None:
            embedded = self.scorer.embed([cropped[0]], [self.scorer.dino.name])[self.scorer.dino.name]
            row["dino_subject"] = float((embedded @ self.crops.embeddings[self.scorer.dino.name].T).mean())
            row["copy"] = float((embedded @ self.guide.embeddings[self.scorer.dino.name].T).max())
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}


def run_ab(job: Any, session: Any, scenes: list[Path], insert_request: Any) -> tuple[dict, list[dict], list]:
    """Both arms for every scene; ``insert_request(scene, **changes)`` builds one arm's request."""
    from alchemy_engine import insertion

    req = job.request
    guide, held = split_photos(job.project, req.ip_holdout)
    scorer = _Scorer(job.scorer, job.project, job.token, guide, held)
    job.notes.extend(scorer.notes)
    arms = {"ip_off": {}, "ip_on": dict(ip_adapter=req.ip_adapter, ip_scale=req.ip_scale, ip_photos=",".join(guide))}
    rows: list[dict] = []
    groups: list[tuple[str, list[Path]]] = []
    for i, scene in enumerate(scenes):
        files: list[Path] = []
        for arm, changes in arms.items():
            job.progress(Progress(Stage.EVALUATE, step=2 * i + len(files) // max(req.per_prompt, 1),
                                  total=2 * len(scenes), message=f"{scene.name}: guidance {arm[3:]}"))
            result = insertion.run(insert_request(scene, **changes), job.progress, job.cancel, session)
            with Image.open(result.mask) as mask_file:
                alpha = np.asarray(mask_file.convert("L")) > 0
            for file, seed in zip(result.outputs, result.seeds):
                with Image.open(file) as image:
                    scores = scorer.score(image.convert("RGB"), alpha, result.prompt)
                rows.append({"set": arm, "prompt_index": i, "prompt": f"{scene.name}: {result.prompt}",
                             "seed": seed, "file": Path(file).name, **scores})
            files += list(result.outputs)
            job.notes.extend(n for n in result.notes if n not in job.notes)
        groups.append((f"{scene.name}: guidance off (left) | on (right)", files))
    return _summary(req, guide, held, rows), rows, groups


def _summary(req: Any, guide: list[str], held: list[str], rows: list[dict]) -> dict[str, Any]:
    off = {(r["prompt_index"], r["seed"]): r for r in rows if r["set"] == "ip_off"}
    on = {(r["prompt_index"], r["seed"]): r for r in rows if r["set"] == "ip_on"}
    pairs = sorted(off.keys() & on.keys())
    deltas = {m: bootstrap_interval([on[k][m] - off[k][m] for k in pairs if m in on[k] and m in off[k]])
              for m in METRICS}
    arm_rows = {arm: [r for r in rows if r["set"] == arm] for arm in ("ip_off", "ip_on")}
    return {"ip_ab": {"adapter": str(req.ip_adapter), "scale": req.ip_scale, "guidance_photos": guide,
                      "scored_against": held, "pairs": len(pairs), "deltas": deltas,
                      "mean_off": report.means(arm_rows["ip_off"]), "mean_on": report.means(arm_rows["ip_on"])},
            "mean": report.means(arm_rows["ip_on"]), "per_prompt": report.per_prompt(rows), "pres": None, "div": None}
