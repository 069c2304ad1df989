"""The engine's libraries load on a background thread once the window is shown (app.main)."""

from __future__ import annotations

import logging
import subprocess
import sys

from alchemy_engine import api
from alchemy_gui.common import warm_up


def test_a_failed_warm_up_is_logged_and_left_to_the_first_job(monkeypatch, caplog):
    def broken():
        raise ImportError("libtorch_cpu.so: cannot open shared object file")

    monkeypatch.setattr(api, "warm_up", broken)
    with caplog.at_level(logging.ERROR, logger="alchemy_gui.common.warm_up"):
        warm_up.start_warm_up().join(10)
    assert "libtorch_cpu.so" in caplog.text


def test_the_warm_up_imports_the_libraries_on_its_own_thread_and_freezes_them():
    """The real warm-up, started as app.main starts it, in a fresh process: torch is imported off
    the UI thread, the heap is frozen and the tokenizers are built once."""
    code = (
        "import gc, sys, threading\n"
        "returned = threading.Event()  # set once start_warm_up() has returned to the UI thread\n"
        "seen = {}\n"
        "class Watch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' and not seen:  # torch's import waits for the caller to get on\n"
        "            seen.update(thread=threading.current_thread(), after_return=returned.wait(30))\n"
        "sys.meta_path.insert(0, Watch())\n"
        "from alchemy_gui.common.warm_up import start_warm_up\n"
        "from alchemy_engine import api\n"
        "assert 'torch' not in sys.modules\n"
        "thread = start_warm_up()\n"
        "returned.set()\n"
        "assert not thread.daemon  # quitting mid-import must not tear down a half-loaded extension\n"
        "thread.join(240)\n"
        "assert seen['after_return'] and seen['thread'] is not threading.main_thread(), seen\n"
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
