"""What a self-test failure says when the frozen app lacks part of a package: the package, and the
rule in packaging/bundle_contents.py that would put it in the bundle.

A maintainer reads this after a build, so the hint names the spec's own lists (COLLECT_ALL,
METADATA, OPTIONAL_ACCELERATORS) rather than PyInstaller options.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
import sysconfig
import traceback
from collections.abc import Iterator, Sequence

CONTENTS = "packaging/bundle_contents.py"
OWN = ("alchemy_engine", "alchemy_gui")


def package_roots() -> list[str]:
    """Where installed packages live: the bundle's folder when frozen, else site-packages."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return [os.path.realpath(frozen)]
    paths = sysconfig.get_paths()
    return sorted({os.path.realpath(paths["purelib"]), os.path.realpath(paths["platlib"])})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _raising_package(exc: BaseException, roots: Sequence[str]) -> str | None:
    """The installed package whose code raised ``exc`` (innermost frame), if any."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        path = os.path.realpath(frame.filename)
        for root in roots:
            if path.startswith(root + os.sep):
                package = path[len(root) + 1:].split(os.sep)[0]
                if package.endswith((".py", ".pyc")):
                    package = package.rsplit(".", 1)[0]
                return None if package in OWN else package
    return None


def hint(exc: BaseException, roots: Sequence[str] | None = None) -> str | None:
    """One line naming what the bundle lacks, or None when the failure is not of that kind."""
    roots = package_roots() if roots is None else roots
    for error in _chain(exc):
        if isinstance(error, importlib.metadata.PackageNotFoundError):
            return (f"the bundle lacks the package metadata of {error.name!r}: add it to METADATA in {CONTENTS}")
        if isinstance(error, ModuleNotFoundError) and error.name:
            top = error.name.split(".")[0]
            return (f"the bundle lacks the module {error.name!r}: add {top!r} to COLLECT_ALL in {CONTENTS} "
                    f"(or take it out of EXCLUDE_MODULES there)")
        if isinstance(error, OSError):
            package = _raising_package(error, roots)
            if package:
                return (f"package {package!r} could not read its own files: add {package!r} to COLLECT_ALL in "
                        f"{CONTENTS} (its data files), or to OPTIONAL_ACCELERATORS there if the app does not need it")
    return None
