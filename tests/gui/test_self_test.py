"""``main.py --self-test`` from source, the check runner's verdicts, and ``--demo``."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from alchemy_gui import self_test

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging"))
import bundle_contents as contents  # noqa: E402


def _main_module():
    spec = importlib.util.spec_from_file_location("alchemy_main", ROOT / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_self_test_from_source_passes_every_check_without_the_modules_the_bundle_leaves_out(tmp_path):
    """The whole journey, with packaging/bundle_contents.EXCLUDE_MODULES unimportable as in the
    frozen app: an exclusion that the app needs fails here, not only after a 10-minute build. The
    run also records every package data file it opens and every distribution's metadata it looks
    up; the spec's rules must put each one in the bundle."""
    loads = tmp_path / "loads.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGE_ALCHEMY_")}
    env["ALCHEMY_RECORD_LOADS"] = str(loads)
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "run_without_excluded.py"), "--self-test"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    read = json.loads(loads.read_text(encoding="utf-8"))
    assert {"transformers", "torch"} <= set(read["metadata"])  # the recorder saw the lookups
    assert contents.uncovered(read["files"], read["metadata"]) == []
    lines = done.stdout.splitlines()
    passed = [line.split()[1] for line in lines if line.startswith("PASS")]
    assert passed == [name for name, _ in self_test.CHECKS]
    assert f"{len(passed)}/{len(passed)} passed" in lines[-1]
    scratch = lines[0].rsplit("scratch folder ", 1)[1].rstrip(")")
    assert not Path(scratch).exists()  # the throw-away data folder is gone


def test_a_failing_check_fails_the_run_and_the_others_still_run(monkeypatch, tmp_path, capsys):
    def wrong(ctx):
        raise self_test.CheckFailed("the mask is empty")

    def crash(ctx):
        raise ValueError("boom")

    checks = (("good", lambda ctx: "fine"), ("wrong", wrong), ("crash", crash), ("after", lambda ctx: "ran"))
    monkeypatch.setattr(self_test, "CHECKS", checks)
    monkeypatch.setattr(self_test, "_isolate", lambda work: None)
    assert self_test.main([]) == 1
    out = capsys.readouterr().out.splitlines()
    status = {line.split()[1]: line.split()[0] for line in out if line.startswith(("PASS", "FAIL"))}
    assert status == {"good": "PASS", "wrong": "FAIL", "crash": "FAIL", "after": "PASS"}
    assert any("the mask is empty" in line for line in out)
    assert any("Traceback" in line for line in out)  # an unexpected error shows where it happened
    assert out[-1].endswith("FAILED: wrong, crash")


def test_self_test_refuses_unknown_options(capsys):
    assert self_test.main(["--fast"]) == 2
    assert "error: --self-test takes only --keep" in capsys.readouterr().err


def test_demo_sets_the_demo_switch_then_opens_the_window(monkeypatch):
    import alchemy_gui.app
    from alchemy_engine import paths

    monkeypatch.delenv(paths.DEMO_ENV, raising=False)
    seen = []
    monkeypatch.setattr(alchemy_gui.app, "main", lambda: seen.append(paths.demo_mode()) or 0)
    main = _main_module()
    assert main.main(["--demo"]) == 0 and seen == [True]
    monkeypatch.setenv(paths.DEMO_ENV, "0")
    assert not paths.demo_mode()
    assert main.main(["--demo", "train"]) == 2
