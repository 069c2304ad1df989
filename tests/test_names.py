"""One meaning per module name, and every package says what it owns (CONTRIBUTING.md, "Names").

A module name used in two places must play the same role in each: these are the roles, and
CONTRIBUTING.md names each one. A new file whose name is taken by a module of another meaning
fails here: rename it to say what it is.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("alchemy_engine", "alchemy_gui")
# name -> the one role it has wherever it appears
SHARED_NAMES = {
    "request.py": "a stage's request and result dataclasses",
    "jobs.py": "the job protocol (engine) and each GUI area's job functions run on the job list",
    "state.py": "a GUI area's view-model",
    "panel.py": "a GUI area's widget",
    "form.py": "a GUI area's settings form over a request's fields",
    "sdxl.py": "SDXL: loading it (models/) and its demo version (models/demo/)",
    "detector.py": "Grounding DINO: loading it (models/) and its demo version (models/demo/)",
}


def _modules() -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = defaultdict(list)
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path.name not in ("__init__.py", "__main__.py"):
                found[path.name].append(path.relative_to(ROOT))
    return found


def test_a_module_name_has_one_meaning_across_the_tree():
    repeated = {name: paths for name, paths in _modules().items() if len(paths) > 1}
    unexplained = {name: [str(p) for p in paths] for name, paths in repeated.items() if name not in SHARED_NAMES}
    assert not unexplained, f"same module name, different meanings: rename one of each {unexplained}"


def test_contributing_names_each_shared_role():
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    missing = [name for name in SHARED_NAMES if f"`{name}`" not in text]
    assert not missing, f"CONTRIBUTING.md's map does not say what {missing} mean"


def test_every_package_says_what_it_owns():
    silent = []
    for package in PACKAGES:
        for init in (ROOT / package).rglob("__init__.py"):
            docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
            if not docstring or len(docstring.split()) < 8:
                silent.append(str(init.relative_to(ROOT)))
    assert not silent, f"packages without a docstring saying what they own: {silent}"
