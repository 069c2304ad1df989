"""Inference models kept loaded by a session are freed when training starts; heavy imports and
model loading keep the cyclic collector from stalling the process."""

from __future__ import annotations

import gc
import sys
import weakref
from types import SimpleNamespace

import pytest
import torch

from alchemy_engine.errors import AlchemyError
from alchemy_engine.insertion.session import InsertionSession
from alchemy_engine.models import resident
from alchemy_engine.training import TrainRequest
from alchemy_engine.training import run as train


def test_release_all_empties_every_live_session():
    session = InsertionSession()
    session.sam("demo", "cpu")
    assert session._sam
    assert resident.release_all() >= 1
    assert not session._sam


def test_training_frees_inference_models_first(monkeypatch):
    """A session's SAM is gone by the time training sizes its memory (the run stops there)."""
    session = InsertionSession()
    session.sam("demo", "cpu")
    held_when_sizing = []

    def size_memory(*args):
        held_when_sizing.append(bool(session._sam))
        raise AlchemyError("stop here")

    prepared = SimpleNamespace(request=TrainRequest(project="any", device="cpu"))
    monkeypatch.setattr("alchemy_engine.training.trainer.setup.prepare", lambda *args: prepared)
    monkeypatch.setattr("alchemy_engine.training.trainer._fit_memory", size_memory)
    with pytest.raises(AlchemyError, match="stop here"):
        train(TrainRequest(project="any"))
    assert held_when_sizing == [False]


@pytest.fixture
def unfrozen():
    """The tests below freeze this test process's heap: give it back to the collector afterwards."""
    yield
    gc.unfreeze()


def _tracked(obj) -> bool:
    """Whether the cyclic collector still walks ``obj`` (frozen objects are not listed)."""
    return any(o is obj for o in gc.get_objects())


def test_import_long_lived_imports_with_the_collector_paused_then_freezes(tmp_path, monkeypatch, unfrozen):
    (tmp_path / "uistall_probe_module.py").write_text("import gc\nCOLLECTOR_ON = gc.isenabled()\nTABLE = {'a': []}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    resident.import_long_lived("uistall_probe_module")
    module = sys.modules["uistall_probe_module"]
    assert module.COLLECTOR_ON is False and gc.isenabled()
    assert not _tracked(module.TABLE)  # frozen: full collections no longer walk it
    made_after = {"b": []}
    resident.import_long_lived("uistall_probe_module")  # nothing missing: nothing frozen again
    assert _tracked(made_after)


def test_collector_pause_ends_on_errors_and_keeps_a_disabled_collector_disabled():
    with pytest.raises(RuntimeError), resident.collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with resident.collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_sdxl_loads_with_the_collector_paused_shares_tokenizers_and_is_freed_without_it(unfrozen):
    """Freezing is safe only for objects without reference cycles: a loaded pipeline (alive when a
    later import freezes the heap) must still be freed by reference counting alone. A second load
    reuses the tokenizers (building one holds the GIL)."""
    from alchemy_engine.models.device import DevicePolicy
    from alchemy_engine.models.sdxl import _load, load_sdxl_pipeline

    seen = []

    def load(*args):
        seen.append(gc.isenabled())
        return _load(*args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("alchemy_engine.models.sdxl._load", load)
        pipe = load_sdxl_pipeline("demo", DevicePolicy("cpu", torch.float32, torch.float32))
    assert seen == [False] and gc.isenabled()
    again = load_sdxl_pipeline("demo", DevicePolicy("cpu", torch.float32, torch.float32))
    assert again.tokenizer is pipe.tokenizer and again.tokenizer_2 is pipe.tokenizer_2
    assert again.tokenizer is not again.tokenizer_2 and again.unet is not pipe.unet
    del again
    parts = [pipe.unet, pipe.vae, pipe.text_encoder, pipe.text_encoder_2, *pipe.unet.parameters()]
    refs = [weakref.ref(part) for part in parts]
    del parts, pipe
    gc.disable()
    try:
        assert [r for r in refs if r() is not None] == []
    finally:
        gc.enable()


_HEAP_HOLES = """
import gc, torch
from alchemy_engine.models import resident
from alchemy_engine.memory.peaks import rss_bytes
weights, pins = [], []
for _ in range(2048):
    weights.append(torch.ones(16 * 1024))  # 64 KB each, 128 MB in all: heap blocks
    pins.append(torch.ones(16))  # keeps each hole away from the heap's top, which free() trims
del weights
gc.collect()
held = rss_bytes()
resident.free_device_memory()
print((held - rss_bytes()) // 2**20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap")
def test_freed_model_memory_goes_back_to_the_system():
    """Freed blocks under glibc's mmap threshold (most of a model's weights) that sit between
    blocks still in use stay in its heap, counted as used, until trimmed (10 GB after a full-size
    CPU training run). A fresh process: this one's heap already has holes the pins would fill."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", _HEAP_HOLES], capture_output=True, text=True, check=True)
    assert int(out.stdout.split()[-1]) > 96, out.stdout


_CYCLE_WITH_A_FRAME = """
import sys
def _count():  # what trio does at import: a traceback kept in a cycle with its own frame
    try:
        raise ValueError
    except ValueError as exc:
        tb = exc.__traceback__
    return tb
_count()
"""


def test_an_import_that_leaves_a_frame_cycle_does_not_keep_the_callers_locals(tmp_path, monkeypatch, unfrozen):
    """The cycle is frozen with the heap and never collected; through f_back it would hold the frame
    that called import_long_lived, and a model loaded into that frame's locals with it."""
    (tmp_path / "frame_cycle_probe.py").write_text(_CYCLE_WITH_A_FRAME)
    monkeypatch.syspath_prepend(str(tmp_path))

    class Model:
        pass

    def load() -> weakref.ref:
        model = Model()
        resident.import_long_lived("frame_cycle_probe")
        return weakref.ref(model)

    gc.disable()
    try:
        assert load()() is None  # freed by reference counting as the frame returned
    finally:
        gc.enable()
