"""The engine's libraries load on a background thread once the window is shown (app.main)."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

from alchemy_engine import api
from alchemy_gui.common import warm_up


def test_warm_up_runs_off_the_ui_thread(monkeypatch):
    seen = []
    monkeypatch.setattr(api, "warm_up", lambda: seen.append(threading.current_thread()))
    thread = warm_up.start_warm_up()
    thread.join(10)
    assert seen and seen[0] is not threading.main_thread()
    assert not thread.daemon  # quitting mid-import must not tear down a half-loaded extension


def test_a_failed_warm_up_is_logged_and_left_to_the_first_job(monkeypatch, caplog):
    def broken():
        raise ImportError("libtorch_cpu.so: cannot open shared object file")

    monkeypatch.setattr(api, "warm_up", broken)
    with caplog.at_level(logging.ERROR, logger="alchemy_gui.common.warm_up"):
        warm_up.start_warm_up().join(10)
    assert "libtorch_cpu.so" in caplog.text


def test_engine_warm_up_imports_the_libraries_and_freezes_them():
    code = (
        "import gc, sys\n"
        "from alchemy_engine import api\n"
        "assert 'torch' not in sys.modules\n"
        "api.warm_up()\n"
        "assert {'torch', 'diffusers', 'peft', 'alchemy_engine.training.trainer'} <= set(sys.modules)\n"
        "assert gc.isenabled() and gc.get_freeze_count() > 100_000, gc.get_freeze_count()\n"
        "from alchemy_engine.models import sdxl\n"
        "built = dict(sdxl._TOKENIZERS)\n"
        "assert len(built) == 2\n"
        "again = sdxl.shared_tokenizers(api.sdxl_config_dir())\n"
        "assert {id(t) for t in again.values()} == {id(t) for t in built.values()}\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
