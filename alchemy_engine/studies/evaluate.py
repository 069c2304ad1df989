"""The ``evaluate`` job: score a run's LoRA the way DreamBench does (``run(request, progress, cancel)``).

Generation mode (the benchmark): for each prompt of the set ("a sks dog in the jungle" …),
``per_prompt`` images with seeds ``seed, seed+1, …``; each scored with DINO, CLIP-I (against every
reference photo, averaged) and CLIP-T (against the prompt without the token). Then the two
failures the paper sets out to avoid, as DreamBooth measured them, with DINO:

* PRES (prior preservation, lower is better): mean DINO similarity between the references and
  ``class_images`` images of the plain class prompt ("a dog") made *with* the LoRA;
* DIV (diversity, higher is better): 1 − mean pairwise DINO similarity among the images of one
  prompt (different seeds), averaged over the prompts.

With ``baseline`` the same is done with the LoRA off (prompts without the token) so both sit
next to the base model's own values. Insertion mode (``insert_into``): each scene of the folder
gets ``per_prompt`` insertions, scored on the subject crop and on the whole image.

Writes ``images/``, ``scores.csv``, ``summary.json`` and ``contact_sheet.png`` into ``out``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from alchemy_engine.evaluation import prompts, report
from alchemy_engine.evaluation.metrics import EmbeddingCache, FidelityScorer, References, pairwise_mean
from alchemy_engine.evaluation.ranking import InsertionRanker, shared_scorer
from alchemy_engine.evaluation.request import EvaluateRequest, EvaluateResult
from alchemy_engine.evaluation.subject_crop import reference_images
from alchemy_engine.jobs import CancelToken, Progress, ProgressCallback, Stage, no_progress

SCENE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


@dataclasses.dataclass
class _Job:
    request: EvaluateRequest
    project: Any
    lora: Path
    token: str
    class_noun: str
    scorer: FidelityScorer
    progress: ProgressCallback
    cancel: CancelToken
    out: Path
    notes: list[str] = dataclasses.field(default_factory=list)
    done: int = 0
    total: int = 0


def run(request: EvaluateRequest, progress: ProgressCallback = no_progress, cancel: CancelToken | None = None,
        session: Any = None) -> EvaluateResult:
    from alchemy_engine.insertion.service import find_lora
    from alchemy_engine.insertion.session import default_session
    from alchemy_engine.models.lora_files import read_metadata
    from alchemy_engine.project import open_project

    request.validate()
    project = open_project(request.project)
    lora = find_lora(project, request.run, request.lora)
    progress(Progress(Stage.LOAD, message="loading the evaluation models"))
    scorer = shared_scorer(request.eval_models, request.clip_model, request.dinov2, request.device)
    if scorer.cache.folder != project.cache_dir / "evaluation":
        scorer.cache = EmbeddingCache(project.cache_dir / "evaluation")
    meta = read_metadata(lora)
    out = Path(request.out).expanduser().resolve()
    (out / "images").mkdir(parents=True, exist_ok=True)
    job = _Job(request, project, lora, meta.get("token") or project.token,
               meta.get("class_noun") or project.class_noun, scorer, progress, cancel or CancelToken(), out)
    session = session or default_session()
    if request.insert_into is not None:
        summary, rows, groups = _insertion_mode(job, session)
    else:
        with session.lock:
            summary, rows, groups = _generation_mode(job, session)
    summary = {**_header(job), **summary, "notes": job.notes}
    paths = (report.write_scores_csv(rows, out / "scores.csv"), report.write_summary(summary, out / "summary.json"),
             report.contact_sheet(groups, out / "contact_sheet.png"))
    return EvaluateResult(out_dir=out, scores_csv=paths[0], summary_path=paths[1], contact_sheet=paths[2],
                          summary=summary, notes=tuple(job.notes))


def _header(job: _Job) -> dict[str, Any]:
    req, scorer = job.request, job.scorer
    preprocessing = {e.name: e.spec.describe() for e in scorer.encoders.values()}
    return {"project": job.project.name, "lora": str(job.lora), "run": job.lora.parent.name,
            "token": job.token, "class_noun": job.class_noun, "model": req.model, "mode":
            "insert" if req.insert_into else "generate", "prompts": req.prompts, "per_prompt": req.per_prompt,
            "resolution": req.resolution, "steps": req.steps, "guidance": req.guidance, "seed": req.seed,
            "lora_scale": req.lora_scale, "models": scorer.model_names, "preprocessing": preprocessing,
            "paper_table_1": report.PAPER_TABLE_1}


def _references(job: _Job) -> References:
    refs, notes = reference_images(job.project, crop=False)
    job.notes.extend(notes)
    return job.scorer.references([r.image for r in refs], [r.key for r in refs])


# --- generation mode --------------------------------------------------------------------------------

def _generate(job: _Job, loaded: Any, prompt: str, seeds: list[int], stem: str) -> tuple[list[Path], list[Image.Image]]:
    from alchemy_engine.insertion.inpaint import Sampling, step_callback, text_to_image
    from alchemy_engine.insertion.metadata import save_png
    from alchemy_engine.models.prediction import cfg_rescale

    req = job.request
    rescale = cfg_rescale(req.guidance_rescale, loaded.base.scheduler.config)
    files, images = [], []
    for seed in seeds:
        job.cancel.raise_if_cancelled()
        callback = step_callback(job.progress, job.cancel, Stage.GENERATE, 0, req.steps,
                                 message=f"image {job.done + 1}/{job.total}: {prompt}")
        image = text_to_image(loaded.base, (req.resolution, req.resolution),
                              Sampling(prompt, req.negative_prompt, req.steps, req.guidance, seed,
                                       sampler=req.sampler, guidance_rescale=rescale), callback)
        files.append(save_png(image, job.out / "images" / f"{stem}-s{seed}.png"))
        images.append(image)
        job.done += 1
        job.progress(Progress(Stage.EVALUATE, step=job.done, total=job.total, message=f"{stem}-s{seed}.png",
                              preview=image, preview_path=files[-1]))
    return files, images


def _score_set(job: _Job, loaded: Any, refs: References, prompt_list: list[str], seeds: list[int], label: str,
               texts: list[str]) -> tuple[list[dict[str, Any]], list[tuple[str, list[Path]]], list[float]]:
    rows, groups, similarities = [], [], []
    for i, (prompt, text) in enumerate(zip(prompt_list, texts)):
        files, images = _generate(job, loaded, prompt, seeds, f"{label}-p{i:02d}")
        embedded = job.scorer.embed(images)
        scores = job.scorer.score_embedded(embedded, refs, [text] * len(images))
        rows += [{"set": label, "prompt_index": i, "prompt": prompt, "seed": s, "file": f.name, **sc}
                 for s, f, sc in zip(seeds, files, scores)]
        groups.append((f"{label}: {prompt}", files))
        pair = pairwise_mean(embedded[job.scorer.dino.name])
        if pair is not None:
            similarities.append(pair)
    return rows, groups, similarities


def _generation_mode(job: _Job, session: Any) -> tuple[dict[str, Any], list[dict], list]:
    req = job.request
    prompt_list = prompts.prompt_set(req.prompts, job.token, job.class_noun)
    if req.max_prompts:
        prompt_list = prompt_list[:req.max_prompts]
    seeds = [req.seed + k for k in range(req.per_prompt)]
    class_seeds = [req.seed + k for k in range(req.class_images)]
    passes = 2 if req.baseline else 1
    job.total = passes * (len(prompt_list) * len(seeds) + len(class_seeds))
    job.progress(Progress(Stage.LOAD, message="loading SDXL"))
    loaded = session.sdxl(req.model, req.device, prediction=req.prediction_type)
    refs = _references(job)
    texts = [prompts.without_token(p, job.token) for p in prompt_list]
    summary: dict[str, Any] = {"prompt_list": prompt_list}
    all_rows, all_groups = [], []
    for base in ([False, True] if req.baseline else [False]):
        if base:
            session.lora_off(loaded)
        else:
            session.use_lora(loaded, job.lora, req.lora_scale)
        label = "base" if base else "subject"
        rows, groups, sims = _score_set(job, loaded, refs, texts if base else prompt_list, seeds, label, texts)
        suffix = "_base" if base else ""
        mean_sim = report.mean(sims) if sims else None
        summary[f"div{suffix}"] = round(1 - mean_sim, 6) if mean_sim is not None else None
        if class_seeds:
            class_rows, class_groups, _ = _score_set(job, loaded, refs, [prompts.class_prompt(job.class_noun)],
                                                     class_seeds, f"class{suffix}",
                                                     [prompts.class_prompt(job.class_noun)])
            summary[f"pres{suffix}"] = report.means(class_rows).get("dino")
            rows, groups = rows + class_rows, groups + class_groups
        if base:
            summary["mean_base"] = report.means([r for r in rows if r["set"] == "base"])
        else:
            subject = [r for r in rows if r["set"] == "subject"]
            summary.update(mean=report.means(subject), per_prompt=report.per_prompt(subject))
        all_rows += rows
        all_groups += groups
    if req.baseline:
        session.use_lora(loaded, job.lora, req.lora_scale)
    return summary, all_rows, all_groups


# --- insertion mode ----------------------------------------------------------------------------------

def _scenes(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir()
                  if p.suffix.lower() in SCENE_SUFFIXES and not p.name.lower().endswith(".mask.png"))


def _insertion_mode(job: _Job, session: Any) -> tuple[dict[str, Any], list[dict], list]:
    from alchemy_engine import insertion

    req = job.request
    assert req.insert_into is not None  # only called in insertion mode
    scenes = _scenes(req.insert_into)
    if not scenes:
        from alchemy_engine.errors import InvalidRequest

        raise InvalidRequest(f"{req.insert_into} holds no scene images ({', '.join(SCENE_SUFFIXES)})")
    def insert_request(scene: Path, **changes: Any) -> Any:
        mask = scene.with_name(scene.stem + ".mask.png")
        locate = insertion.LocateOptions(mask=mask if mask.is_file() else None, sam=req.sam, detector=req.detector,
                                         grow=8, feather=8.0)
        return insertion.InsertRequest(
            project=str(job.project.root), scene=scene, out=job.out / "images", lora=job.lora, model=req.model,
            device=req.device, locate=locate, negative_prompt=req.negative_prompt, steps=req.steps,
            guidance=req.guidance, lora_scale=req.lora_scale, seed=req.seed, variations=req.per_prompt,
            sampler=req.sampler, guidance_rescale=req.guidance_rescale, prediction_type=req.prediction_type, **changes)

    if req.ip_ab:  # reference guidance off and on, same seeds (studies/reference_ab.py)
        from alchemy_engine.studies.reference_ab import run_ab

        summary, rows, groups = run_ab(job, session, scenes, insert_request)
        return {"scenes": [s.name for s in scenes], **summary}, rows, groups
    ranker = InsertionRanker(job.scorer, job.project, job.token)
    job.notes.extend(ranker.notes)
    rows, groups = [], []
    guided = {} if req.ip_adapter is None else dict(ip_adapter=req.ip_adapter, ip_scale=req.ip_scale)
    for i, scene in enumerate(scenes):
        one = insert_request(scene, **guided)
        job.progress(Progress(Stage.EVALUATE, step=i, total=len(scenes), message=f"inserting into {scene.name}"))
        result = insertion.run(one, job.progress, job.cancel, session)
        with Image.open(result.mask) as mask_file:
            alpha = np.asarray(mask_file.convert("L")) > 0
        for file, seed in zip(result.outputs, result.seeds):
            with Image.open(file) as image:
                scores = ranker.score(image.convert("RGB"), alpha, result.prompt)
            scores.pop("models", None)
            scores.pop("subject_box", None)
            rows.append({"set": "insert", "prompt_index": i, "prompt": f"{scene.name}: {result.prompt}", "seed": seed,
                         "file": Path(file).name, **scores})
        groups.append((f"{scene.name}: {result.prompt}", list(result.outputs)))
        job.notes.extend(n for n in result.notes if n not in job.notes)
    return {"scenes": [s.name for s in scenes], "mean": report.means(rows), "per_prompt": report.per_prompt(rows),
            "pres": None, "div": None}, rows, groups
