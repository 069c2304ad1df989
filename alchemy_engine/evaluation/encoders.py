"""The evaluation encoders: which ones exist, where they are found, and loading them offline.

A registry of the four models the metrics use, by folder name:

* ``dino-vits16`` (facebook/dino-vits16, ``ViTModel``): the DINO subject score, PRES and DIV;
* ``clip-vit-large-patch14`` (default) / ``clip-vit-base-patch32`` (openai, ``CLIPModel``): CLIP-I
  and CLIP-T; papers differ in which one they use, so every score records it;
* ``dinov2-base`` (facebook/dinov2-base, ``Dinov2Model``): an optional extra subject score.

Where a model comes from, for ``source=None``: ``<data folder>/models/eval/<name>/`` (a folder
saved by transformers: ``config.json``, weights, ``preprocessor_config.json``; CLIP also its
tokenizer files), else the Hugging Face cache, looked up locally only. ``"demo"`` / ``"demo:mid"``
are the built-in random-weight versions; any other string is a folder holding ``<name>/``
sub-folders. Nothing is downloaded. Weights load as safetensors, or ``.bin`` with
``weights_only=True`` (tensors only, never code).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from alchemy_engine import paths
from alchemy_engine.errors import ModelError
from alchemy_engine.evaluation.encoder_registry import (  # noqa: F401 - re-exported for the metrics
    CLIP_B,
    CLIP_CHOICES,
    CLIP_L,
    DEMO_SOURCES,
    DINO,
    DINOV2,
    EVAL_MODELS,
    EvalModelSpec,
)

log = logging.getLogger(__name__)


class EvalModelsMissing(ModelError):
    """The evaluation models asked for are not on this computer (the message says where to put them)."""


def eval_models_dir() -> Path:
    return paths.models_dir() / "eval"


def where_to_put(names: list[str] | tuple[str, ...]) -> str:
    wanted = ", ".join(f"{EVAL_MODELS[n].repo_id} → {eval_models_dir() / n}" for n in names)
    return (f"put a local copy of each model (a folder saved by transformers: config.json, "
            f"model.safetensors, preprocessor_config.json; CLIP also its tokenizer files) here: {wanted}; "
            "or have them in the Hugging Face cache. `python main.py models` lists what was found; "
            "'demo' uses the built-in random-weight models")


def _is_model_folder(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(
        (folder / w).is_file() for w in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"))


def _hf_snapshot(repo_id: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    from alchemy_engine.models.inventory import hf_cache_dir

    found = try_to_load_from_cache(repo_id, "config.json", cache_dir=hf_cache_dir())
    if isinstance(found, str) and _is_model_folder(Path(found).parent):
        return Path(found).parent
    return None


def find_eval_model(name: str, source: str | None = None) -> Path | None:
    """The folder of evaluation model ``name`` from ``source`` (see the module docstring), or None."""
    if name not in EVAL_MODELS:
        raise ModelError(f"unknown evaluation model {name!r}; choose one of {', '.join(EVAL_MODELS)}")
    if source in DEMO_SOURCES:
        from alchemy_engine.evaluation.demo_encoders import demo_eval_dir

        return demo_eval_dir(name, "mid" if source == "demo:mid" else "tiny")
    if source is not None:
        folder = Path(source).expanduser() / name
        return folder if _is_model_folder(folder) else None
    local = eval_models_dir() / name
    if _is_model_folder(local):
        return local
    return _hf_snapshot(EVAL_MODELS[name].repo_id)


def resolve_eval_models(names: list[str], source: str | None = None) -> dict[str, Path]:
    """Every model in ``names``, or one :class:`EvalModelsMissing` naming all that are missing."""
    found = {name: find_eval_model(name, source) for name in names}
    missing = [name for name, folder in found.items() if folder is None]
    if missing:
        origin = f"in {source}" if source else "on this computer"
        raise EvalModelsMissing(f"evaluation model(s) {', '.join(missing)} not found {origin}: "
                                + where_to_put(missing))
    return {name: folder for name, folder in found.items() if folder is not None}


def eval_inventory() -> dict[str, Any]:
    """What ``models`` prints: each evaluation model, where it was found (or None), and its use."""
    rows = []
    for spec in EVAL_MODELS.values():
        folder = find_eval_model(spec.name)
        rows.append({"name": spec.name, "repo_id": spec.repo_id, "use": spec.use,
                     "path": str(folder) if folder else None, "put_in": str(eval_models_dir() / spec.name)})
    return {"folder": str(eval_models_dir()), "models": rows}


def encoder_folder_fingerprint(folder: Path) -> str:
    """A cheap id of a model folder (config text plus weight file sizes and times), for caches."""
    digest = hashlib.sha256()
    for child in sorted(Path(folder).iterdir()):
        if child.suffix in (".json", ".txt"):
            digest.update(child.name.encode() + child.read_bytes())
        elif child.is_file():
            stat = child.stat()
            digest.update(f"{child.name}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def load_eval_model(name: str, folder: Path, device: Any, dtype: Any) -> Any:
    """The transformers model of ``name`` from ``folder``, in eval mode on ``device``; offline only."""
    from transformers import CLIPModel, Dinov2Model, ViTModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    family = EVAL_MODELS[name].family
    options: dict[str, Any] = dict(local_files_only=True, weights_only=True)
    from alchemy_engine.models.resident import building_models

    try:
        with building_models():
            if family == "vit":
                model = ViTModel.from_pretrained(str(folder), add_pooling_layer=False, **options)
            elif family == "dinov2":
                model = Dinov2Model.from_pretrained(str(folder), **options)
            else:
                model = CLIPModel.from_pretrained(str(folder), **options)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the evaluation model {name} from {folder}: {exc}") from exc
    return model.to(device=device, dtype=dtype).eval()


def load_clip_tokenizer(folder: Path) -> Any:
    from transformers import CLIPTokenizer

    try:
        return CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the CLIP tokenizer from {folder} ({exc}); the folder needs "
                         "vocab.json and merges.txt") from exc


def preprocessor_config(folder: Path) -> dict[str, Any]:
    path = Path(folder) / "preprocessor_config.json"
    if not path.is_file():
        raise ModelError(f"{folder} has no preprocessor_config.json; copy it from the model's release")
    return json.loads(path.read_text(encoding="utf-8"))
