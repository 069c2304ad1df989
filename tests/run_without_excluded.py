"""Run ``main.py`` with the modules the frozen build leaves out made unimportable, as in the bundle:
``python tests/run_without_excluded.py --self-test``. (Not a test module; test_packaging runs it.)"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "packaging")]
import bundle_contents  # noqa: E402


def excluded(name: str) -> bool:
    return any(name == module or name.startswith(module + ".") for module in bundle_contents.EXCLUDE_MODULES)


class Excluded(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if excluded(name):
            raise ModuleNotFoundError(f"No module named {name!r} (left out of the frozen app)", name=name)
        return None


_find_spec = importlib.util.find_spec
# Optional-dependency probes see the module as absent, exactly as in the bundle.
importlib.util.find_spec = lambda name, package=None: None if excluded(name) else _find_spec(name, package)
sys.meta_path.insert(0, Excluded())

if __name__ == "__main__":
    import main

    sys.exit(main.main(sys.argv[1:]))
