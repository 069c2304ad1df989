"""Run ``main.py`` with the modules the frozen build leaves out made unimportable, as in the bundle:
``python tests/run_without_excluded.py --self-test``. (Not a test module; test_packaging runs it.)

With ``ALCHEMY_RECORD_LOADS=FILE`` it also records what the run reads from installed packages
besides their code — data files opened and distribution metadata looked up — and writes them to
FILE as JSON, so a test can prove that the spec's rules put each one in the bundle.
"""

from __future__ import annotations

import importlib.abc
import importlib.metadata
import importlib.util
import json
import os
import site
import sys
import sysconfig
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


class LoadRecorder:
    """Package data files opened (an audit hook on "open") and metadata looked up (from_name)."""

    def __init__(self) -> None:
        roots = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
        self.roots = sorted({os.path.realpath(path) + os.sep for path in roots}, key=len, reverse=True)
        self.files: set[str] = set()
        self.metadata: set[str] = set()

    def start(self) -> None:
        sys.addaudithook(self._on_event)
        self._record_lookups(importlib.metadata)
        if _find_spec("importlib_metadata") is not None:  # the backport some libraries prefer
            import importlib_metadata

            self._record_lookups(importlib_metadata)

    def _record_lookups(self, module) -> None:
        found = module.Distribution.from_name.__func__

        def from_name(cls, name):
            dist = found(cls, name)  # raises PackageNotFoundError for an absent one: not recorded
            self.metadata.add(dist.metadata["Name"])
            return dist

        module.Distribution.from_name = classmethod(from_name)

    def _on_event(self, event: str, args: tuple) -> None:
        if event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        path = os.path.realpath(os.fsdecode(args[0]))
        for root in self.roots:
            if path.startswith(root):
                relative = path[len(root):].replace(os.sep, "/")
                if not relative.endswith((".py", ".pyc")) and ".dist-info/" not in relative:
                    self.files.add(relative)
                return

    def write(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as out:
            json.dump({"files": sorted(self.files), "metadata": sorted(self.metadata)}, out, indent=1)


if __name__ == "__main__":
    record = os.environ.pop("ALCHEMY_RECORD_LOADS", "")
    recorder = LoadRecorder()
    if record:
        recorder.start()
    import main

    status = main.main(sys.argv[1:])
    if record:
        recorder.write(record)
    sys.exit(status)
