"""The engine's surface: every request, job, result and lookup a front-end needs, in one place.

The CLI and the GUI import this module (plus :mod:`~alchemy_engine.errors` and
:mod:`~alchemy_engine.jobs`) and nothing else of the engine; an import contract in
``pyproject.toml`` holds them to it. Jobs have the shape ``run(request, progress, cancel) -> result``
(see :mod:`alchemy_engine.jobs`). Importing this module is cheap: torch loads when a job runs.
"""

from __future__ import annotations

from alchemy_engine.app_config import load_app_settings, save_app_settings, system_info
from alchemy_engine.evaluation import EvaluateRequest, EvaluateResult
from alchemy_engine.evaluation.encoders import eval_inventory
from alchemy_engine.evaluation.report import table_text as fidelity_table
from alchemy_engine.fields import (
    MODEL_HELP,
    SEED_MAX,
    FieldInfo,
    defaults,
    field_info,
    field_infos,
    random_seed,
    value_problem,
)
from alchemy_engine.image_files import load_rgb
from alchemy_engine.insertion import (
    InsertionSession,
    InsertRequest,
    InsertResult,
    LocateOptions,
    SceneRequest,
    SceneResult,
    SegmentRequest,
    SegmentResult,
    make_scene,
    segment,
)
from alchemy_engine.insertion import run as insert
from alchemy_engine.insertion.inpaint import insertion_prompt
from alchemy_engine.insertion.layered_export import (
    LAYER_NAMES,
    export_layers,
    export_output_layers,
    read_ora_layers,
)
from alchemy_engine.insertion.masks import read_mask, save_mask, to_mask
from alchemy_engine.insertion.outputs import (
    OutputInfo,
    SavedScene,
    list_outputs,
    load_scene_mask,
    read_output_parameters,
    save_scene_mask,
    trash_output,
)
from alchemy_engine.insertion.reference_masking import AutoMaskRequest, AutoMaskResult, auto_mask, import_mask
from alchemy_engine.insertion.request import DEFAULT_NEGATIVE, MASK_MODES, SDXL_RESOLUTIONS
from alchemy_engine.insertion.scene import load_scene
from alchemy_engine.jobs import CancelToken, JobRequest, Progress, ProgressCallback, Stage, no_progress
from alchemy_engine.memory.footprints import JobFootprint, MemoryBudget, fits_together, memory_budget
from alchemy_engine.models.catalogue import CatalogueModel, catalogue_status, load_catalogue
from alchemy_engine.models.download import DownloadRequest, DownloadResult, download_models
from alchemy_engine.models.folders import (
    DetectedFolder,
    add_model_folder,
    detect_installs,
    list_model_folders,
    remove_model_folder,
)
from alchemy_engine.models.gpu_count import nvidia_gpu_count
from alchemy_engine.models.inventory import (
    default_detector,
    default_sam,
    find_models,
    find_sdxl_sources,
    resolve_sdxl,
)
from alchemy_engine.models.ip_adapter_files import IpAdapterInfo, inspect_ip_adapter
from alchemy_engine.models.lora_files import LoraInfo, inspect_lora, require_sdxl_lora
from alchemy_engine.models.prediction import PREDICTION_CHOICES, NoiseSchedule
from alchemy_engine.models.prediction import detect as model_prediction
from alchemy_engine.models.probe import CheckpointInfo, probe_checkpoint, require_sdxl_checkpoint
from alchemy_engine.models.scanner import ScannedModel, ScanRequest, ScanResult, scan_models
from alchemy_engine.models.sources import ModelEntry, ModelInventory, SdxlSource
from alchemy_engine.paths import (
    CACHE_ENV,
    HOME_ENV,
    config_dir,
    data_root,
    demo_mode,
    logs_dir,
    models_dir,
    projects_dir,
    resources_dir,
    sdxl_config_dir,
    set_demo_mode,
)
from alchemy_engine.presets import (
    NOT_IN_PRESETS,
    PRESET_KINDS,
    Preset,
    check_preset_values,
    delete_preset,
    list_presets,
    refused_presets,
    save_preset,
)
from alchemy_engine.project import (
    ImportReport,
    Project,
    ProjectSummary,
    ReferencePhoto,
    RefusedPhoto,
    TrashedProject,
    create_project,
    delete_project,
    list_projects,
    list_trash,
    load_workspace_settings,
    open_project,
    rename_project,
    restore_project,
    save_workspace_settings,
    trash_dir,
)
from alchemy_engine.project.run_history import (
    delete_run,
    describe_run,
    read_loss_curve,
    rename_run,
    run_samples,
    run_settings,
)
from alchemy_engine.project.runs import LORA_FILE, RunInfo, list_runs, list_runs_job, lora_runs, read_run
from alchemy_engine.studies.evaluate import run as evaluate
from alchemy_engine.studies.job_memory import job_footprints
from alchemy_engine.training import TrainRequest, TrainResult, estimate_memory, launch_gpus
from alchemy_engine.training import run as train
from alchemy_engine.training.launch import relaunch as launch_training
from alchemy_engine.training.request import LR_SCHEDULERS, MIXED_PRECISION, OPTIMIZERS
from alchemy_engine.training.world import from_environment as training_world


def warm_up() -> None:
    """Import what every job needs (torch, diffusers, transformers, peft, the trainer) ahead of the
    first job, with the cyclic collector kept off those objects (see ``resident.import_long_lived``),
    and build the two CLIP tokenizers every SDXL model shares.

    The window calls this on a thread once it is shown: torch's import holds the GIL for about half
    a second in C code, and paying that while the artist looks at the project list beats paying it
    in the middle of their first training run or insertion, which also starts sooner."""
    from alchemy_engine.models.resident import SDXL_LIBRARIES, import_long_lived
    from alchemy_engine.models.sdxl import shared_tokenizers

    import_long_lived("alchemy_engine.training.trainer", *SDXL_LIBRARIES)
    shared_tokenizers(sdxl_config_dir())  # what every SDXL load reuses (see there)


def eval_models_available(source: str | None = None) -> bool:
    """Whether insertion ranking can run (the GUI turns --rank on by default when it can)."""
    from alchemy_engine.evaluation.ranking import eval_models_available as available

    return available(source)


def export_checkpoint_lora(project, run_id: str, step: int):
    """Write ``runs/<id>/exports/step-N/lora.safetensors`` and ``lora_kohya.safetensors`` from the
    kept checkpoint at ``step``; returns ``(lora_path, kohya_path)``."""
    from alchemy_engine.training.checkpoint_export import export_checkpoint_lora as export

    return export(project, run_id, step)


def read_scores(run_dir) -> list[dict]:
    """A run folder's ``scores.csv`` as rows (step, dino, clip_i, clip_t, ...); [] when there is none."""
    from pathlib import Path

    from alchemy_engine.evaluation.checkpoint_scores import SCORES_FILE
    from alchemy_engine.evaluation.checkpoint_scores import read_scores as read

    return read(Path(run_dir) / SCORES_FILE)


def best_scored_step(rows: list[dict]) -> int | None:
    """The step of :func:`read_scores` rows with the highest DINO + CLIP-T (what training reports)."""
    from alchemy_engine.evaluation.checkpoint_scores import best_step

    return best_step(rows)


def kept_checkpoint_steps(run_dir) -> list[int]:
    """Steps of a run folder's kept checkpoints, oldest first (each can be exported)."""
    from pathlib import Path

    from alchemy_engine.project.runs import CHECKPOINT_PREFIX, CHECKPOINT_STATE_FILE, CHECKPOINTS_DIR

    folder = Path(run_dir) / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    steps = [int(p.name[len(CHECKPOINT_PREFIX):]) for p in folder.iterdir()
             if p.name.startswith(CHECKPOINT_PREFIX) and p.name[len(CHECKPOINT_PREFIX):].isdigit()
             and (p / CHECKPOINT_STATE_FILE).is_file()]
    return sorted(steps)


REQUESTS = (TrainRequest, InsertRequest, LocateOptions, SegmentRequest, SceneRequest, AutoMaskRequest,
            EvaluateRequest, ScanRequest, DownloadRequest)
"""Every request class of the engine (the field-agreement test walks their fields)."""

__all__ = [
    # jobs and their requests
    "REQUESTS", "CancelToken", "JobRequest", "Progress", "ProgressCallback", "Stage", "no_progress",
    "JobFootprint", "MemoryBudget", "fits_together", "job_footprints", "memory_budget",
    "TrainRequest", "TrainResult", "train", "estimate_memory", "LR_SCHEDULERS", "MIXED_PRECISION", "OPTIMIZERS",
    "launch_gpus", "launch_training", "training_world", "nvidia_gpu_count",
    "InsertRequest", "InsertResult", "LocateOptions", "SceneRequest", "SceneResult", "SegmentRequest",
    "SegmentResult", "InsertionSession", "insert", "make_scene", "segment", "DEFAULT_NEGATIVE", "MASK_MODES",
    "SDXL_RESOLUTIONS", "insertion_prompt",
    "AutoMaskRequest", "AutoMaskResult", "auto_mask", "import_mask",
    # insertion outputs and the scene being edited
    "OutputInfo", "SavedScene", "list_outputs", "load_scene_mask", "read_output_parameters", "save_scene_mask",
    "trash_output",
    # an insertion as layers for the artist's editor
    "LAYER_NAMES", "export_layers", "export_output_layers", "read_ora_layers",
    # request fields
    "MODEL_HELP", "SEED_MAX", "FieldInfo", "defaults", "field_info", "field_infos", "random_seed", "value_problem",
    # images and masks
    "load_rgb", "load_scene", "read_mask", "save_mask", "to_mask",
    # models
    "CheckpointInfo", "ModelEntry", "ModelInventory", "SdxlSource", "default_detector", "default_sam",
    "find_models", "find_sdxl_sources", "probe_checkpoint", "LoraInfo", "inspect_lora", "require_sdxl_lora",
    "IpAdapterInfo", "inspect_ip_adapter", "require_sdxl_checkpoint", "resolve_sdxl",
    "PREDICTION_CHOICES", "NoiseSchedule", "model_prediction",
    # model folders of other apps, scanned in place
    "DetectedFolder", "add_model_folder", "detect_installs", "list_model_folders", "remove_model_folder",
    "ScanRequest", "ScanResult", "ScannedModel", "scan_models",
    # the catalogue of models fetched on request
    "CatalogueModel", "catalogue_status", "load_catalogue", "DownloadRequest", "DownloadResult", "download_models",
    # projects and runs
    "ImportReport", "Project", "ProjectSummary", "ReferencePhoto", "RefusedPhoto", "create_project",
    "delete_project", "list_projects", "open_project", "rename_project",
    "TrashedProject", "list_trash", "restore_project", "trash_dir", "load_workspace_settings",
    "save_workspace_settings",
    "LORA_FILE", "RunInfo", "list_runs", "list_runs_job", "lora_runs", "read_run",
    "delete_run", "describe_run", "read_loss_curve", "rename_run", "run_samples", "run_settings",
    # places
    "CACHE_ENV", "HOME_ENV", "config_dir", "data_root", "demo_mode", "logs_dir", "models_dir", "projects_dir", "resources_dir",
    "sdxl_config_dir", "set_demo_mode",
    # the app's settings, presets and this computer
    "NOT_IN_PRESETS", "PRESET_KINDS", "Preset", "check_preset_values", "delete_preset", "list_presets",
    "refused_presets", "save_preset", "load_app_settings", "save_app_settings",
    "system_info",
    # fidelity scores
    "EvaluateRequest", "EvaluateResult", "evaluate", "eval_models_available",
    "export_checkpoint_lora", "read_scores", "best_scored_step", "kept_checkpoint_steps", "eval_inventory", "fidelity_table",
]
