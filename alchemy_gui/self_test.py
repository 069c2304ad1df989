"""``ImageAlchemy --self-test``: the whole journey on the demo models, in a throw-away data folder.

It opens the main window and closes it, lists the models, creates a project from generated photos,
trains the demo SDXL for a few steps, segments with the demo SAM and detector, inserts with the
demo SDXL, and checks the bundled SDXL configs and tokenizers and the command line. One line per
check; the exit status is 0 only if every check passed. It runs the same way from source
(``python main.py --self-test``) and in the frozen app, where it proves that PyInstaller collected
everything the app loads lazily.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from alchemy_engine import api
from alchemy_engine.api import create_project, find_models
from alchemy_gui import bundle_hint

PHOTO_SIZES = ((256, 256), (320, 256), (256, 320))
SCENE_SIZE = (128, 96)
SCENE_BOX = (32, 24, 96, 72)
CONFIG_FILES = (
    "model_index.json", "scheduler/scheduler_config.json", "unet/config.json", "vae/config.json",
    "text_encoder/config.json", "text_encoder_2/config.json",
    "tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/tokenizer_config.json",
    "tokenizer_2/vocab.json", "tokenizer_2/merges.txt", "tokenizer_2/tokenizer_config.json",
)
CLIP_VOCAB_SIZE = 49408


class CheckFailed(Exception):
    """A check ran but what it produced is wrong."""


@dataclass
class Context:
    """What the checks share: the scratch folder and what earlier checks made."""

    work: Path
    project: Any = None
    photos: list[Path] = field(default_factory=list)
    train: Any = None


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise CheckFailed(message)


def _safetensors_tensors(path: Path) -> int:
    """How many tensors a .safetensors file holds, from its JSON header (no ML import)."""
    with open(path, "rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        _require(0 < size < 100_000_000, f"{path.name} has no safetensors header")
        header = json.loads(handle.read(size))
    return len([key for key in header if key != "__metadata__"])


# --- the checks, in order; each returns the detail shown on its line ---------------------------

def check_resources(ctx: Context) -> str:
    config = api.sdxl_config_dir()
    missing = [name for name in CONFIG_FILES if not (config / name).is_file()]
    _require(not missing, f"missing in {config}: {', '.join(missing)}")
    for name in CONFIG_FILES:
        if name.endswith(".json"):
            json.loads((config / name).read_text(encoding="utf-8"))
    for tokenizer in ("tokenizer", "tokenizer_2"):
        vocab = json.loads((config / tokenizer / "vocab.json").read_text(encoding="utf-8"))
        _require(len(vocab) == CLIP_VOCAB_SIZE, f"{tokenizer}/vocab.json has {len(vocab)} entries, "
                                                f"not {CLIP_VOCAB_SIZE}")
    for name in ("style.qss", "icons/app.png"):
        _require((api.resources_dir() / name).is_file(), f"missing {api.resources_dir() / name}")
    return f"{len(CONFIG_FILES)} SDXL config and tokenizer files in {config}"


def check_window(ctx: Context) -> str:
    from PySide6.QtCore import QCoreApplication, QEventLoop

    from alchemy_gui.app import create_application
    from alchemy_gui.main_window import MainWindow

    app = create_application([sys.argv[0]])
    window = MainWindow()
    window.show()
    deadline = time.monotonic() + 60
    while window.jobs.busy or not window.isVisible():
        _require(time.monotonic() < deadline, "the window stayed busy for 60 s after opening")
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
    title = window.windowTitle()
    _require(window.close(), "the window refused to close")
    QCoreApplication.processEvents()
    return f"opened and closed '{title}' (Qt platform {app.platformName()})"


def check_models(ctx: Context) -> str:
    inventory = find_models()
    for group in ("sdxl", "sam", "detector"):
        names = [entry.name for entry in getattr(inventory, group)]
        _require("demo" in names, f"no demo {group} model in the inventory: {names}")
    return (f"{len(inventory.sdxl)} SDXL, {len(inventory.sam)} SAM, {len(inventory.detector)} detector "
            f"(models folder {api.models_dir()})")


def _photo(path: Path, size: tuple[int, int], seed: int) -> Path:
    """A coloured disc on a gradient, different for every seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    pixels = np.stack([xx / w, yy / h, np.full((h, w), rng.random())], axis=-1) * 255
    disc = (xx - w * rng.uniform(0.3, 0.7)) ** 2 + (yy - h * rng.uniform(0.3, 0.7)) ** 2 < (min(w, h) / 4) ** 2
    pixels[disc] = rng.integers(0, 255, 3)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def check_project(ctx: Context) -> str:
    folder = ctx.work / "photos"
    folder.mkdir()
    ctx.photos = [_photo(folder / f"photo{i}.png", size, seed=i) for i, size in enumerate(PHOTO_SIZES)]
    ctx.project = create_project("Self-test", class_noun="dog", images=ctx.photos)
    count = len(ctx.project.reference_photos())
    _require(count == len(ctx.photos), f"{count} of {len(ctx.photos)} photos were imported")
    return f"'{ctx.project.name}' with {count} photos in {ctx.project.root}"


def check_train(ctx: Context) -> str:
    _require(ctx.project is not None, "no project (the project check failed)")
    events: list[api.Progress] = []
    request = api.TrainRequest(project=str(ctx.project.root), model="demo", steps=3, resolution=64, rank=4,
                               learning_rate=1e-3, save_every=0, sample_every=0)
    ctx.train = api.train(request, events.append, api.CancelToken())
    for lora in (ctx.train.lora, ctx.train.lora_kohya):
        _require(Path(lora).is_file(), f"the run wrote no {Path(lora).name}")
        _require(_safetensors_tensors(Path(lora)) > 0, f"{Path(lora).name} holds no tensors")
    _require(ctx.train.steps == request.steps, f"trained {ctx.train.steps} of {request.steps} steps")
    return (f"{ctx.train.steps} steps on demo SDXL, loss {ctx.train.final_loss:.3f}, wrote "
            f"{Path(ctx.train.lora).name} and {Path(ctx.train.lora_kohya).name} ({len(events)} progress events)")


def check_segment(ctx: Context) -> str:
    _require(bool(ctx.photos), "no photos (the project check failed)")
    locate = api.LocateOptions(text="dog", sam="demo", detector="demo", box_threshold=0.0, text_threshold=0.0,
                               instance="all")
    request = api.SegmentRequest(image=ctx.photos[0], out=ctx.work / "segment" / "mask.png", locate=locate)
    result = api.segment(request, api.no_progress, api.CancelToken())
    _require(result.mask.is_file(), "no mask file was written")
    with Image.open(result.mask) as mask:
        _require(mask.size == PHOTO_SIZES[0] and mask.mode == "L",
                 f"the mask is {mask.mode} {mask.size}, not L {PHOTO_SIZES[0]}")
    _require(bool(result.detections), "the demo detector found nothing")
    return f"demo detector found {len(result.detections)} boxes, demo SAM wrote {result.mask.name}"


def check_insert(ctx: Context) -> str:
    _require(ctx.train is not None, "no trained LoRA (the train check failed)")
    folder = ctx.work / "insert"
    folder.mkdir()
    rng = np.random.default_rng(7)
    scene = folder / "scene.png"
    Image.fromarray(rng.integers(0, 256, (SCENE_SIZE[1], SCENE_SIZE[0], 3), dtype=np.uint8)).save(scene)
    box = np.zeros((SCENE_SIZE[1], SCENE_SIZE[0]), dtype=np.uint8)
    x0, y0, x1, y1 = SCENE_BOX
    box[y0:y1, x0:x1] = 255
    Image.fromarray(box, "L").save(folder / "box.png")
    request = api.InsertRequest(project=str(ctx.project.root), model="demo", scene=scene, out=folder / "out",
                                locate=api.LocateOptions(mask=folder / "box.png", grow=2, feather=2.0),
                                steps=2, seed=1, strength=0.9, work_pixels=128 * 128)
    result = api.insert(request, api.no_progress, api.CancelToken())
    _require(len(result.outputs) == 1 and result.outputs[0].is_file(), "no output picture was written")
    with Image.open(scene) as before_image, Image.open(result.outputs[0]) as after_image, \
            Image.open(result.mask) as alpha_image:
        before = np.asarray(before_image.convert("RGB"))
        after = np.asarray(after_image.convert("RGB"))
        outside = np.asarray(alpha_image) == 0
    _require(after.shape == before.shape, f"the output is {after.shape[1]}x{after.shape[0]}, not the scene's size")
    _require(bool(np.array_equal(after[outside], before[outside])), "pixels outside the mask changed")
    _require(bool((after[~outside] != before[~outside]).any()), "nothing inside the mask was repainted")
    return f"'{result.prompt}' with {Path(result.lora).name}: {result.outputs[0].name}, outside the mask unchanged"


def _cli_command() -> list[str]:
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, str(Path(__file__).resolve().parent.parent / "main.py")]


def check_cli(ctx: Context) -> str:
    command = _cli_command() + ["models", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    _require(done.returncode == 0, f"`models --json` exited {done.returncode}: "
                                   f"{(done.stderr.strip().splitlines() or [''])[-1]}")
    output = done.stdout.strip()
    if not output:  # a console-less build writes to its log instead
        output = (api.logs_dir() / "cli.log").read_text(encoding="utf-8").strip()
    inventory = json.loads(output.splitlines()[-1])
    _require("sdxl" in inventory, "`models --json` printed no inventory")
    return f"`{Path(command[0]).name} {' '.join(command[1:])}` answered with the model inventory"


CHECKS: tuple[tuple[str, Callable[[Context], str]], ...] = (
    ("resources", check_resources), ("window", check_window), ("models", check_models),
    ("project", check_project), ("train", check_train), ("segment", check_segment),
    ("insert", check_insert), ("cli", check_cli),
)


def run_checks(work: Path, say: Callable[[str], None] = print) -> list[str]:
    """Run every check; returns the names of those that failed."""
    ctx = Context(work=work)
    failed = []
    for name, check in CHECKS:
        start = time.perf_counter()
        trace = ""
        try:
            detail, ok = check(ctx), True
        except CheckFailed as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # noqa: BLE001 - shown: FAIL line + traceback
            detail, ok = f"{type(exc).__name__}: {exc}", False
            trace = "".join(traceback.format_exception(exc)).rstrip()
            missing = bundle_hint.hint(exc)
            if missing:
                detail += f"\n      hint: {missing}"
        seconds = time.perf_counter() - start
        say(f"{'PASS' if ok else 'FAIL'}  {name:<9} {seconds:6.1f} s  {detail}")
        if not ok:
            failed.append(name)
        if trace:
            say("      " + trace.replace("\n", "\n      "))
    return failed


def _isolate(work: Path) -> None:
    """A throw-away data folder, no network and no display needed."""
    os.environ.update({
        api.HOME_ENV: str(work / "home"), api.CACHE_ENV: str(work / "cache"),
        "HF_HUB_CACHE": str(work / "hf-cache"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    })
    no_display = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if sys.platform.startswith("linux") and no_display:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(argv: list[str]) -> int:
    """``--self-test [--keep]``: ``--keep`` leaves the scratch folder for a look afterwards."""
    unknown = [arg for arg in argv if arg != "--keep"]
    if unknown:
        print(f"error: --self-test takes only --keep, not {' '.join(unknown)}", file=sys.stderr)
        return 2
    from alchemy_gui.console import has_console, redirect_to_log

    if not has_console():
        redirect_to_log("self-test", ["--self-test", *argv])
    work = Path(tempfile.mkdtemp(prefix="image-alchemy-self-test-"))
    _isolate(work)
    print(f"Image Alchemy self-test ({'frozen app' if getattr(sys, 'frozen', False) else 'from source'}, "
          f"Python {sys.version.split()[0]}, scratch folder {work})", flush=True)
    start = time.perf_counter()
    failed = run_checks(work, lambda line: print(line, flush=True))
    total = time.perf_counter() - start
    if "--keep" in argv:
        print(f"kept the scratch folder {work}")
    else:
        try:
            shutil.rmtree(work)
        except OSError as exc:  # a file still open (Windows); the checks' verdict stands
            print(f"note: could not remove the scratch folder: {exc}")
    verdict = "all checks passed" if not failed else f"FAILED: {', '.join(failed)}"
    print(f"self-test: {len(CHECKS) - len(failed)}/{len(CHECKS)} passed in {total:.1f} s; {verdict}")
    return 0 if not failed else 1
