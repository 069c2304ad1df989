"""The frozen app's contents (packaging/bundle_contents.py, read by image_alchemy.spec) cover what
the app loads: every file in resources/, every package imported inside functions or by name, and
the transformers model families the code names. (The build itself is packaging/build.sh, too slow
for every test run; .ci/run builds after the tests and runs the frozen --self-test.)"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "packaging"))
import bundle_contents as contents  # noqa: E402

OWN = ("alchemy_engine", "alchemy_gui")


def _sources() -> list[Path]:
    return [path for package in OWN for path in sorted((ROOT / package).rglob("*.py"))]


class LazyImports(ast.NodeVisitor):
    """Modules imported inside a function body, and string arguments of import_module(...)."""

    def __init__(self) -> None:
        self.depth = 0
        self.found: list[tuple[str, int, bool]] = []  # (module, line, imported by name)

    def _function(self, node) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node: ast.Import) -> None:
        if self.depth:
            self.found += [(alias.name, node.lineno, False) for alias in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if self.depth and node.level == 0 and node.module:
            self.found.append((node.module, node.lineno, False))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("import_module", "__import__") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                self.found.append((first.value, node.lineno, True))
        self.generic_visit(node)


def _module_level_strings(tree: ast.Module) -> list[str]:
    """Dotted names in module-level tuples (e.g. cli.COMMAND_MODULES, imported by name in a loop)."""
    names = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Tuple, ast.List)):
            names += [elt.value for elt in node.value.elts if isinstance(elt, ast.Constant)
                      and isinstance(elt.value, str) and elt.value.startswith(OWN)]
    return names


def _lazy_imports() -> list[tuple[str, str]]:
    found = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        visitor = LazyImports()
        visitor.visit(tree)
        where = str(path.relative_to(ROOT))
        found += [(module, f"{where}:{line}") for module, line, _ in visitor.found]
        found += [(module, where) for module in _module_level_strings(tree)]
    return found


def test_the_walk_finds_the_known_lazy_imports():
    modules = {module for module, _ in _lazy_imports()}
    assert {"torch", "diffusers", "segment_anything", "transformers", "PySide6.QtWidgets"} <= modules
    assert "alchemy_engine.cli.train_cmd" in modules  # imported by name from cli.COMMAND_MODULES


def test_every_lazily_imported_package_is_collected():
    collected = set(contents.COLLECT_ALL) | set(contents.HOOKED) | set(OWN)
    missing = sorted({f"{module} ({where})" for module, where in _lazy_imports()
                      if module.split(".")[0] not in collected and module.split(".")[0] not in sys.stdlib_module_names})
    assert missing == [], "add these packages to COLLECT_ALL (or HOOKED) in packaging/bundle_contents.py"


def test_own_modules_imported_by_name_exist_and_are_kept():
    for module, where in _lazy_imports():
        if module.startswith(OWN):
            assert importlib.util.find_spec(module) is not None, f"{where} imports a missing {module}"
            assert contents.keep_submodule(module), module


def test_every_resource_file_is_in_the_bundle():
    sources = [(Path(src), dest) for src, dest in contents.data_dirs()]
    files = [path for path in sorted((ROOT / "resources").rglob("*")) if path.is_file()]
    assert len(files) >= 10
    for path in files:
        dests = [Path(dest) / path.relative_to(src) for src, dest in sources if path.is_relative_to(src)]
        assert dests, f"{path.relative_to(ROOT)} is not in bundle_contents.DATA_DIRS"
        assert not any(contents.excluded(dest.as_posix()) for dest in dests), f"{path} is excluded"
        assert dests[0].parts[0] == "resources"  # paths.resources_dir() looks in _MEIPASS/resources


def test_transformers_classes_the_code_names_are_kept():
    transformers = pytest.importorskip("transformers")
    named = set()
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "transformers":
                named |= {alias.name for alias in node.names}
    assert {"CLIPTextModel", "GroundingDinoConfig"} <= named
    for name in sorted(named):
        module = f"transformers.{transformers._class_to_module[name]}"
        assert contents.keep_submodule(module), f"{name} lives in {module}, left out of the bundle"
    assert not contents.keep_submodule("transformers.models.llama.modeling_llama")
    assert not contents.keep_submodule("diffusers.tests.test_x")


@pytest.mark.parametrize("dest", [
    "torch/lib/libtorch_cuda.so", "torch/lib/libtorch_cpu.so", "torch/bin/torch_shm_manager",
    "nvidia/cu13/lib/libcublas.so.13", "nvidia/cu13/lib/libnvrtc.so.13", "nvidia/cudnn/lib/libcudnn.so.9",
    "PySide6/Qt/plugins/platforms/libqoffscreen.so", "PySide6/Qt/plugins/platforms/qwindows.dll",
    "diffusers/pipelines/stable_diffusion_xl/pipeline_stable_diffusion_xl.py",
    "transformers/models/clip/tokenization_clip.py", "resources/configs/sdxl-base-1.0/tokenizer/vocab.json",
])
def test_exclusions_keep_what_the_app_loads(dest):
    assert not contents.excluded(dest)


@pytest.mark.parametrize("dest", [
    "torch/include/ATen/Tensor.h", "nvidia/cu13/lib/libnvrtc.alt.so.13", "nvidia/cu13/lib/libcudart_static.a",
    "numpy/_core/tests/test_api.py", "nvidia/cu13/lib/libnvperf_host.so", "torch\\lib\\dnnl.lib",
])
def test_exclusions_drop_build_time_files(dest):
    assert contents.excluded(dest)


def test_spec_reads_its_lists_from_bundle_contents():
    spec = (ROOT / "packaging" / "image_alchemy.spec").read_text(encoding="utf-8")
    for use in ("contents.data_dirs()", "contents.COLLECT_ALL", "contents.keep_submodule",
                "contents.EXCLUDE_MODULES", "contents.excluded", "contents.METADATA"):
        assert use in spec


def test_ci_runs_the_readme_test_command_then_builds_and_self_tests_the_frozen_app():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = 'python3 -m pip install -e ".[test]" && python3 -m pytest'
    assert command in readme.split("## ")[0]
    lines = [line for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    tests = next(i for i, line in enumerate(lines) if line.startswith(command))
    assert lines[tests] in (command, f"{command} || exit 1")  # a test failure fails the run
    build = lines[tests + 1:]
    assert build == ["bash packaging/build.sh"]  # from the lock, with the self-test (its default)


def test_libraries_torchvision_loads_by_path_are_collected():
    spec = importlib.util.find_spec("torchvision")
    if spec is None:
        pytest.skip("torchvision is not installed")
    source = (Path(spec.origin).parent / "extension.py").read_text(encoding="utf-8")
    loaded = {node.args[0].value for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
              and getattr(node.func, "id", "") == "_load_library" and node.args
              and isinstance(node.args[0], ast.Constant)}
    assert loaded, "torchvision/extension.py no longer loads its operators with _load_library"
    collected = {Path(path).name.split(".")[0] for path, dest in contents.runtime_libraries() if dest == "torchvision"}
    assert loaded <= collected, f"torchvision loads {sorted(loaded)}; the bundle has {sorted(collected)}"
