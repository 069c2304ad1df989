"""Everything decided before a model is loaded: the run folder, resume, device and precision.

A new run gets ``runs/<id>/train_request.json``. ``resume_run`` reopens that folder, takes the
saved request (the settings must not change halfway, or the result would not match an
uninterrupted run) and the newest complete checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from alchemy_engine.atomic import atomic_dir, atomic_write_json, write_file
from alchemy_engine.errors import InvalidRequest
from alchemy_engine.models.prediction import NoiseSchedule
from alchemy_engine.project.locks import check_run_free
from alchemy_engine.project.runs import CHANGES_FILE, REQUEST_FILE, new_run_id, remove_stale_staging
from alchemy_engine.safe_read import read_json
from alchemy_engine.training import checkpoints, inputs
from alchemy_engine.training.dataset import TrainImage
from alchemy_engine.training.request import TrainRequest, weight_dtype_conflict
from alchemy_engine.training.world import SINGLE, World

if TYPE_CHECKING:
    from alchemy_engine.models.device import DevicePolicy
    from alchemy_engine.models.sources import SdxlSource
    from alchemy_engine.project import Project

log = logging.getLogger(__name__)

_DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclasses.dataclass(frozen=True)
class SettingChange:
    """A setting the engine chose or changed on its own; reported to the user and saved with the run."""

    field: str
    asked: Any
    used: Any
    why: str

    def note(self) -> str:
        return f"{self.field}: {self.asked} → {self.used} ({self.why})"


@dataclasses.dataclass
class RunSetup:
    request: TrainRequest  # what will run: the user's request with the engine's changes applied
    project: Project
    run_dir: Path | None  # None until :func:`create_run_dir` (estimates need no folder)
    source: SdxlSource
    fingerprint: str
    policy: DevicePolicy  # with the run's precision
    images: list[TrainImage]
    checkpoint: Path | None
    warnings: list[str]
    changes: list[SettingChange] = dataclasses.field(default_factory=list)
    world: World = SINGLE  # the run's processes (world.py); rank 0 alone speaks and writes
    schedule: NoiseSchedule = dataclasses.field(default_factory=NoiseSchedule)  # what the model predicts

    @property
    def folder(self) -> Path:
        """The run folder; only after :func:`create_run_dir`."""
        if self.run_dir is None:
            raise RuntimeError("create_run_dir() makes the run folder before training")
        return self.run_dir

    def change(self, field: str, used: Any, why: str) -> None:
        """Apply ``field = used`` to the request and remember why."""
        self.changes.append(SettingChange(field, getattr(self.request, field), used, why))
        self.request = dataclasses.replace(self.request, **{field: used})

    def changes_record(self) -> dict[str, dict[str, Any]]:
        """What ``runs/<id>/settings_changed.json`` holds: the engine's own choices and why."""
        return {c.field: {"asked": c.asked, "used": c.used, "why": c.why} for c in self.changes}

    def record_changes(self) -> None:
        """Rewrite ``settings_changed.json`` after a change made once the run folder exists."""
        if self.run_dir is not None and self.changes:
            atomic_write_json(self.run_dir / CHANGES_FILE, self.changes_record())

    @property
    def device(self) -> torch.device:
        return torch.device(self.policy.device)

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return None if self.policy.dtype == torch.float32 else self.policy.dtype


def prepare(request: TrainRequest, world: World = SINGLE) -> RunSetup:
    """Validate the request, open the project, check the photos and the model; load no weights."""
    from alchemy_engine.image_files import load_rgb
    from alchemy_engine.models.inventory import resolve_sdxl
    from alchemy_engine.project import open_project

    request.validate()
    project = open_project(request.project)
    run_dir, checkpoint = None, None
    if request.resume_run:
        run_dir = find_run(project, request.resume_run)
        if world.is_main:  # rank 0 holds the run's lock while the others start
            check_run_free(run_dir)
        request = dataclasses.replace(saved_request(run_dir), resume_run=run_dir.name)
        request.validate()
        checkpoint = checkpoints.latest_checkpoint(run_dir)
        if checkpoint is None:
            raise InvalidRequest(f"run {run_dir.name} stopped before its first checkpoint, so there is "
                                 "nothing to resume; start a new run")
    images, warnings = inputs.reference_images(project, request, load_rgb)
    source = resolve_sdxl(request.model)
    run_setup = RunSetup(request=request, project=project, run_dir=run_dir, source=source,
                         fingerprint=source.fingerprint(), policy=precision_policy(request), images=images,
                         checkpoint=checkpoint, warnings=warnings, world=world)
    _engine_choices(run_setup)
    _prediction(run_setup)
    return run_setup


def _prediction(run_setup: RunSetup) -> None:
    """What the model predicts, from its markers or as asked: shown and saved with the run."""
    from alchemy_engine.models import prediction

    asked = run_setup.request.prediction_type
    run_setup.schedule = schedule = prediction.resolve(run_setup.source, asked)
    run_setup.changes.append(SettingChange("prediction_type", asked, schedule.prediction_type, schedule.describe()))
    note = prediction.conflict_note(run_setup.source, asked)
    if note:
        run_setup.warnings.append(note)


def _engine_choices(run_setup: RunSetup) -> None:
    """Settings that cannot run here as asked are changed, never silently (see SettingChange)."""
    from alchemy_engine.models.device import effective_optimizer

    request, policy = run_setup.request, run_setup.policy
    optimizer = effective_optimizer(request.optimizer, run_setup.device)
    if optimizer != request.optimizer:
        run_setup.change("optimizer", optimizer, "8-bit AdamW needs bitsandbytes and an NVIDIA GPU")
    if request.mixed_precision == "auto":
        used = {torch.float32: "no", torch.float16: "fp16", torch.bfloat16: "bf16"}[policy.dtype]
        run_setup.changes.append(SettingChange("mixed_precision", "auto", used,
                                               f"the best precision on {policy.device}"))
    _check_weight_dtype(run_setup)


def _check_weight_dtype(run_setup: RunSetup) -> None:
    """Half weight storage needs fp32 compute; asked for on a model that is not stored in that
    half precision, it rounds the weights: allowed, with a warning."""
    from alchemy_engine.models.half_weights import DTYPE_NAMES
    from alchemy_engine.models.sources import stored_unet_dtype

    request, compute = run_setup.request, DTYPE_NAMES[run_setup.policy.dtype]
    conflict = weight_dtype_conflict(request.weight_dtype, compute)
    if conflict:
        raise InvalidRequest(conflict)
    if compute == "fp32" and request.weight_dtype in ("fp16", "bf16"):
        stored, why = stored_unet_dtype(run_setup.source)
        if stored != request.weight_dtype:
            run_setup.warnings.append(f"weight_dtype {request.weight_dtype}: {why}, so storing them in "
                                      f"{request.weight_dtype} rounds them (the trained LoRA fits a slightly "
                                      "different base); weight_dtype auto stores in half precision only when "
                                      "that is lossless")


def saved_request(run_dir: Path) -> TrainRequest:
    """The run's own ``train_request.json``; a damaged one is a message, not a traceback."""
    def damaged(detail: str) -> InvalidRequest:
        return InvalidRequest(f"run {run_dir.name} cannot be resumed: its {REQUEST_FILE} is damaged "
                              f"({detail}). Start a new run.")

    data = read_json(run_dir / REQUEST_FILE, what="training request", damaged=damaged, error=InvalidRequest)
    try:
        return TrainRequest.from_dict(data)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise damaged(str(exc)[:200]) from exc


def find_run(project, ref: str) -> Path:
    candidate = Path(ref).expanduser()
    run_dir = candidate if candidate.is_dir() else Path(project.runs_dir) / ref
    if not (run_dir / REQUEST_FILE).is_file():
        runs = sorted(p.name for p in Path(project.runs_dir).glob("*") if (p / REQUEST_FILE).is_file())
        raise InvalidRequest(f"no training run {ref!r} in project {project.name!r} "
                             f"(runs: {', '.join(runs[-5:]) or 'none'})")
    return run_dir.resolve()


def precision_policy(request: TrainRequest):
    """The device policy, with ``mixed_precision`` overriding its dtype when set."""
    from alchemy_engine.models.device import DevicePolicy, device_policy

    policy = device_policy(request.device)
    if request.mixed_precision == "auto":
        return policy
    dtype = _DTYPES[request.mixed_precision]
    if policy.device == "cpu" and dtype == torch.float16:
        raise InvalidRequest("fp16 training is not supported on the CPU; use mixed_precision 'no' or 'bf16'")
    vae_dtype = torch.float32 if dtype == torch.float16 else dtype
    return DevicePolicy(policy.device, dtype, vae_dtype)


def create_run_dir(setup: RunSetup) -> Path:
    """A new ``runs/<id>/`` with the request saved in it, created whole (one rename), so no empty
    or half-made run folder is ever seen. Resumed runs keep theirs."""
    if setup.run_dir is None:
        remove_stale_staging(setup.project.runs_dir)
        final = Path(setup.project.runs_dir) / new_run_id()
        text = setup.request.to_json() + "\n"
        with atomic_dir(final, then="start the training again") as staging:
            write_file(staging / REQUEST_FILE, lambda p: p.write_text(text, encoding="utf-8"),
                       shown_as=final / REQUEST_FILE, then="start the training again")
            if setup.changes:
                atomic_write_json(staging / CHANGES_FILE, setup.changes_record(), then="start the training again")
        setup.run_dir = final
    return setup.run_dir
