"""Find SDXL, SAM and Grounding DINO weights on this computer; never download anything.

Where models come from, in the order ``resolve_sdxl(None)`` tries them:

1. ``models_dir()/sdxl/``: single ``.safetensors`` checkpoints and diffusers folders;
2. an existing Hugging Face cache holding a whole SDXL pipeline (``stabilityai/
   stable-diffusion-xl-base-1.0`` first), looked up with huggingface_hub's local-only calls;
3. nothing found: a :class:`ModelError` that says where to put the weights.

``"demo"`` (``"demo:mid"``) is the built-in random-weight SDXL, loaded like any diffusers folder.
Torch and diffusers are imported inside functions: importing this module is cheap.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alchemy_engine import paths
from alchemy_engine.errors import ModelError
from alchemy_engine.models.hf_cache import hf_cache_dir
from alchemy_engine.models.probe import EXPECTED_SDXL, PICKLE_SUFFIXES
from alchemy_engine.models.sources import (
    SDXL_REPO_ID,
    ModelEntry,
    ModelInventory,
    SdxlSource,
    sdxl_components_status,
)

log = logging.getLogger(__name__)

__all__ = ["default_detector", "default_sam", "detector_folder", "find_models", "find_sdxl_sources",
           "resolve_inpaint_model", "resolve_sdxl", "sam_checkpoint"]

WHERE_TO_PUT_SDXL = (
    "put an SDXL checkpoint (e.g. sd_xl_base_1.0.safetensors, RealVisXL, Juggernaut XL) or an SDXL "
    "diffusers folder into {folder}, or pass its path with --model; 'demo' runs the built-in "
    "random-weight model"
)


def _folder_source(folder: Path, kind: str, name: str) -> SdxlSource:
    variant, problems = sdxl_components_status(folder)
    if problems:
        raise ModelError(f"{folder} is not a usable SDXL diffusers folder: {'; '.join(problems)}. "
                         f"Expected a folder saved from {SDXL_REPO_ID} or an SDXL fine-tune.")
    return SdxlSource(kind, folder, name, variant)


# --- Hugging Face cache ------------------------------------------------------------------------

def hf_cached_snapshot(repo_id: str) -> Path | None:
    """The local snapshot folder of ``repo_id`` if its model_index.json is cached; no network."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "model_index.json", cache_dir=hf_cache_dir())
    return Path(found).parent if isinstance(found, str) else None


def _cached_repo_ids() -> list[str]:
    cache = hf_cache_dir()
    if not cache.is_dir():
        return []
    repos = [d.name[len("models--"):].replace("--", "/") for d in sorted(cache.glob("models--*--*"))]
    return sorted(repos, key=lambda r: r != SDXL_REPO_ID)


def _hf_sources() -> list[SdxlSource]:
    """Cached repos holding a complete SDXL pipeline; partial or other repos are skipped quietly."""
    sources = []
    for repo_id in _cached_repo_ids():
        snapshot = hf_cached_snapshot(repo_id)
        if snapshot is None:
            continue
        try:
            sources.append(_folder_source(snapshot, "hf_cache", repo_id))
        except ModelError as exc:
            log.debug("Hugging Face cache: %s is not a usable SDXL: %s", repo_id, exc)
    return sources


# --- resolving a spec --------------------------------------------------------------------------

def sdxl_dir() -> Path:
    return paths.models_dir() / "sdxl"


def _scan_sdxl_dir() -> tuple[list[SdxlSource], list[ModelEntry]]:
    """Usable models in ``models/sdxl`` and entries saying why the other model files are not."""
    sources: list[SdxlSource] = []
    rejected: list[ModelEntry] = []
    folder = sdxl_dir()
    for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
        is_file = entry.is_file() and entry.suffix.lower() in (".safetensors",) + tuple(PICKLE_SUFFIXES)
        if not is_file and not (entry.is_dir() and (entry / "model_index.json").is_file()):
            continue
        try:
            sources.append(_path_source(entry))
        except ModelError as exc:
            rejected.append(ModelEntry(entry.name, str(entry), "unusable", str(exc)))
    return sources, rejected


def _model_folder_sources() -> list[SdxlSource]:
    """SDXL checkpoints and diffusers folders in the user's model folders (ComfyUI, A1111, ...)."""
    from alchemy_engine.models.scanner import folder_models

    sources = []
    for model in folder_models("sdxl"):
        path = Path(model.path)
        if not path.is_dir():  # the scan read its header: an SDXL base with its VAE
            sources.append(SdxlSource("single_file", path, path.stem))
            continue
        try:
            sources.append(_folder_source(path, "diffusers", path.name))  # with its weight variant
        except ModelError as exc:  # changed since the scan
            log.info("model folder entry %s is no longer a usable SDXL: %s", path, exc)
    return sources


def find_sdxl_sources() -> list[SdxlSource]:
    """Every usable SDXL model on disk (not the demo), in the order ``resolve_sdxl(None)`` prefers:
    ``models/sdxl``, the model folders, then the Hugging Face cache (each path once)."""
    found: list[SdxlSource] = []
    for source in _scan_sdxl_dir()[0] + _model_folder_sources() + _hf_sources():
        if all(source.path != s.path for s in found):
            found.append(source)
    return found


def _demo_source(spec: str) -> SdxlSource:
    from alchemy_engine.models.demo import demo_sdxl_dir

    size = spec.partition(":")[2] or "tiny"
    if size == "vpred":  # one file with the v_pred / ztsnr markers, read with the tiny model's configs
        from alchemy_engine.models.demo import demo_sdxl_vpred_file

        return SdxlSource("single_file", demo_sdxl_vpred_file(), spec, config_dir=demo_sdxl_dir("tiny"))
    if size not in ("tiny", "mid"):
        raise ModelError(f"unknown demo model {spec!r}; use 'demo', 'demo:mid' or 'demo:vpred'")
    return SdxlSource("demo", demo_sdxl_dir(size), spec if size != "tiny" else "demo")


def _path_source(path: Path) -> SdxlSource:
    from alchemy_engine.models.probe import require_sdxl_checkpoint

    if path.is_dir():
        return _folder_source(path, "diffusers", path.name)
    require_sdxl_checkpoint(path)
    return SdxlSource("single_file", path, path.stem)


def resolve_sdxl(spec: str | Path | SdxlSource | None = None) -> SdxlSource:
    """Turn a user's choice into an :class:`SdxlSource`, or raise a ModelError that says why not.

    ``spec``: None (first model found; the demo model in demo mode), ``"demo"`` / ``"demo:mid"``, a path to a ``.safetensors``
    file or a diffusers folder, a file or folder name inside ``models/sdxl``, or a Hugging Face
    repo id that is already in the local cache.
    """
    if isinstance(spec, SdxlSource):
        return spec
    if (spec is None or str(spec).strip() == "") and paths.demo_mode():
        return _demo_source("demo")
    if spec is None or str(spec).strip() == "":
        found = find_sdxl_sources()
        if not found:
            raise ModelError("no SDXL model found; " + WHERE_TO_PUT_SDXL.format(folder=sdxl_dir()))
        return found[0]
    text = str(spec).strip()
    if text == "demo" or text.startswith("demo:"):
        return _demo_source(text)
    path = Path(text).expanduser()
    for candidate in (path, sdxl_dir() / text):
        if candidate.exists():
            return _path_source(candidate)
    for source in _model_folder_sources():  # a file name from a model folder, e.g. x.safetensors
        if text in (source.path.name, source.name):
            return _path_source(source.path)
    if text.count("/") == 1 and not text.startswith(("/", ".", "~")):
        snapshot = hf_cached_snapshot(text)
        if snapshot is None:
            raise ModelError(f"{text} is not in the local Hugging Face cache ({hf_cache_dir()}); the "
                             "app never downloads. Download it yourself, or "
                             + WHERE_TO_PUT_SDXL.format(folder=sdxl_dir()))
        return _folder_source(snapshot, "hf_cache", text)
    raise ModelError(f"SDXL model not found: {text}; expected {EXPECTED_SDXL}. "
                     + WHERE_TO_PUT_SDXL.format(folder=sdxl_dir()))


def resolve_inpaint_model(spec: str | Path) -> SdxlSource:
    """An SDXL inpainting model for insertion (``--inpaint-model``): ``"demo"``, a ``.safetensors``
    file or a diffusers folder, by path or by name inside ``models/sdxl``; checked from headers
    and configs only (``inpaint_unet.py``)."""
    from alchemy_engine.models.inpaint_unet import EXPECTED_INPAINT, check_inpaint_source

    text = str(spec).strip()
    if text == "demo":
        from alchemy_engine.models.demo import demo_sdxl_dir, demo_sdxl_inpaint_file

        return SdxlSource("single_file", demo_sdxl_inpaint_file(), "demo-inpaint", config_dir=demo_sdxl_dir("tiny"))
    for path in (Path(text).expanduser(), sdxl_dir() / text):
        if path.exists():
            kind = "diffusers" if path.is_dir() else "single_file"
            source = SdxlSource(kind, path, path.name if path.is_dir() else path.stem)
            check_inpaint_source(source)
            return source
    raise ModelError(f"inpainting model not found: {text}; expected {EXPECTED_INPAINT} (or 'demo')")


# --- SAM and the detector ----------------------------------------------------------------------

_SAM_PREFERENCE = ("vit_h", "vit_l", "vit_b")
WHERE_TO_PUT_SAM = ("put Meta's sam_vit_b_01ec64.pth (or vit_l / vit_h) in {folder}, pass --sam PATH, "
                    "or give a ready mask with --mask FILE")


def sam_dir() -> Path:
    return paths.models_dir() / "sam"


def detector_dir() -> Path:
    return paths.models_dir() / "detector"


def _sam_files() -> list[Path]:
    """SAM checkpoints in ``models/sam``, the larger variants first (by Meta's file names)."""
    files = sorted(sam_dir().glob("*.pth")) if sam_dir().is_dir() else []
    from alchemy_engine.models.scanner import folder_models

    files += [Path(m.path) for m in folder_models("sam") if Path(m.path) not in files]
    rank = {tag: i for i, tag in enumerate(_SAM_PREFERENCE)}
    return sorted(files, key=lambda f: min((rank[t] for t in rank if t in f.name), default=len(rank)))


def _detector_folders() -> list[tuple[Path, str | None]]:
    """Every sub-folder of ``models/detector`` with the reason it is unusable (None: usable)."""
    from alchemy_engine.models.detector import detector_folder_problem

    folder = detector_dir()
    subs = sorted(s for s in folder.iterdir() if s.is_dir()) if folder.is_dir() else []
    return [(sub, detector_folder_problem(sub)) for sub in subs]


def default_sam() -> str:
    """The SAM checkpoint used when none is named: ``demo`` in demo mode, else the best in models/sam."""
    if paths.demo_mode():
        return "demo"
    files = _sam_files()
    if not files:
        raise ModelError("clicks, boxes and automatic mode need a Segment Anything checkpoint: "
                         + WHERE_TO_PUT_SAM.format(folder=sam_dir()))
    return str(files[0])


def default_detector() -> str:
    """The detector folder used when none is named: ``demo`` in demo mode, else the first usable."""
    from alchemy_engine.models.detector import DETECTOR_HINT

    if paths.demo_mode():
        return "demo"
    for sub, problem in _detector_folders():
        if problem is None:
            return str(sub)
    raise ModelError(f"automatic mode needs a text detector and none is configured: {DETECTOR_HINT} "
                     f"(in {paths.models_dir()}), or pass --detector FOLDER. Or mark the subject "
                     "yourself with --point X,Y, --box X0,Y0,X1,Y1 or --mask FILE")


def sam_checkpoint(spec: str | Path | None) -> Path:
    """The ``.pth`` file behind a SAM choice: None (the default), ``demo``, or a path."""
    text = str(spec) if spec is not None else default_sam()
    if text == "demo":
        from alchemy_engine.models.demo import demo_sam_checkpoint

        return demo_sam_checkpoint()
    return Path(text).expanduser()


def detector_folder(spec: str | Path | None) -> Path:
    """The folder behind a detector choice: None (the default), ``demo``, or a path."""
    text = str(spec) if spec is not None else default_detector()
    if text == "demo":
        from alchemy_engine.models.demo import demo_detector_dir

        return demo_detector_dir()
    return Path(text).expanduser()


# --- inventory ---------------------------------------------------------------------------------

_DEMO_NOTE = "built-in random weights"


def _sam_entries(detect_variants: bool) -> list[ModelEntry]:
    entries = [ModelEntry("demo", "demo", "demo", _DEMO_NOTE)]
    for file in _sam_files():
        kind, note = "sam", ""
        if detect_variants:
            from alchemy_engine.models.sam import read_sam_variant

            try:
                kind = read_sam_variant(file).name
            except ModelError as exc:
                kind, note = "unusable", str(exc)
        location = "" if file.parent == sam_dir() else str(file.parent)
        entries.append(ModelEntry(file.stem, str(file), kind, note, location))
    return entries


def _detector_entries() -> list[ModelEntry]:
    entries = [ModelEntry("demo", "demo", "demo", _DEMO_NOTE)]
    folders = _detector_folders()
    entries += [ModelEntry(sub.name, str(sub), "grounding-dino") for sub, problem in folders if problem is None]
    entries += [ModelEntry(sub.name, str(sub), "unusable", problem) for sub, problem in folders if problem]
    return entries


def find_models(detect_sam_variants: bool = False) -> ModelInventory:
    """Everything on this computer; the demo models first, unusable model files last (kind
    ``"unusable"``, the note says why).

    SAM variants are read from the tensors only when ``detect_sam_variants`` (it loads each file).
    """
    sdxl = [ModelEntry("demo", "demo", "demo", _DEMO_NOTE),
            ModelEntry("demo:mid", "demo:mid", "demo", _DEMO_NOTE + ", benchmark size")]
    local, rejected = _scan_sdxl_dir()
    sdxl += [ModelEntry(s.name, str(s.path), s.kind, s.variant or "") for s in local]
    sdxl += [ModelEntry(s.name, str(s.path), s.kind, s.variant or "", _location(s.path))
             for s in find_sdxl_sources()[len(local):]]
    sdxl += rejected
    folders = {"sdxl": str(sdxl_dir()), "sam": str(sam_dir()), "detector": str(detector_dir()),
               "hf_cache": str(hf_cache_dir())}
    return ModelInventory(tuple(sdxl), tuple(_sam_entries(detect_sam_variants)),
                          tuple(_detector_entries()), folders)


def _location(path: Path) -> str:
    """The model folder (or the Hugging Face cache) a model was found under."""
    from alchemy_engine.models.folders import list_model_folders

    for folder in [*list_model_folders(), hf_cache_dir()]:
        if path.is_relative_to(folder):
            return str(folder)
    return str(path.parent)
# --- IP-Adapters (reference guidance) ------------------------------------------------------------

DEMO_IP_ADAPTERS = ("demo", "demo-plus")


def ip_adapter_file(spec: str, unet: object) -> tuple[Path, Path | None]:
    """The adapter file behind ``spec`` (a path, ``demo`` or ``demo-plus``: tiny random adapters
    fitting ``unet``) and, for the demo ones, their encoder folder (else None: found beside it)."""
    text = str(spec).strip()
    if text in DEMO_IP_ADAPTERS:
        from alchemy_engine.models.demo.ip_adapter import demo_clip_vision_dir, demo_ip_adapter
        from alchemy_engine.models.probe import SDXL_CONTEXT_DIM

        if int(unet.config.cross_attention_dim) == SDXL_CONTEXT_DIM:  # type: ignore[attr-defined]
            raise ModelError(f"'{text}' is a tiny random adapter for the demo model; with a real SDXL model "
                             "choose an IP-Adapter .safetensors file (h94's ip-adapter_sdxl_vit-h, …)")

        return demo_ip_adapter(unet, plus=text == "demo-plus"), demo_clip_vision_dir()
    path = Path(text).expanduser()
    if not path.is_file():
        raise ModelError(f"IP-Adapter file not found: {path}; give a .safetensors file, 'demo' or 'demo-plus'")
    return path, None
