"""The rules that say what the frozen app carries (packaging/bundle_contents.py) and the hint a
failing frozen self-test prints (alchemy_gui/bundle_hint.py): both name the package and the rule."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alchemy_gui import bundle_hint

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "packaging"))
import bundle_contents as contents  # noqa: E402


def test_data_files_of_collected_packages_are_covered_and_others_named():
    assert contents.data_file_rule("transformers/models/clip/tokenizer_config.json") == "COLLECT_ALL"
    assert contents.data_file_rule("diffusers/tests/fixtures/x.json") is None  # test data is left out
    assert contents.data_file_rule("kernels/_internals/python_depends.json") is None
    lines = contents.uncovered(["kernels/_internals/python_depends.json",
                                "transformers/models/clip/tokenizer_config.json"], [])
    assert len(lines) == 1 and "'kernels'" in lines[0] and "COLLECT_ALL" in lines[0]


def test_metadata_lookups_match_the_list_whatever_the_spelling():
    assert contents.uncovered([], ["huggingface_hub", "PyYAML", "Pillow"]) == []
    lines = contents.uncovered([], ["kernels"])
    assert lines == ["the metadata of 'kernels' is looked up but not bundled: add 'kernels' to METADATA "
                     "in packaging/bundle_contents.py"]


def test_optional_accelerators_are_left_out_of_the_bundle():
    assert "kernels" in contents.EXCLUDE_MODULES
    assert set(contents.OPTIONAL_ACCELERATORS) <= set(contents.EXCLUDE_MODULES)
    assert not set(contents.OPTIONAL_ACCELERATORS) & set(contents.COLLECT_ALL)


def _raise_from_package(tmp_path: Path, package: str, body: str) -> BaseException:
    """Run ``body`` inside a module of an installed-looking package under tmp_path; return what it raised."""
    folder = tmp_path / package / "_internals"
    folder.mkdir(parents=True)
    source = folder / "deps.py"
    source.write_text(f"def load():\n    {body}\n", encoding="utf-8")
    namespace: dict = {}
    exec(compile(source.read_text(encoding="utf-8"), str(source), "exec"), namespace)
    with pytest.raises(BaseException) as caught:
        namespace["load"]()
    return caught.value


def test_a_package_that_cannot_read_its_data_is_named_with_the_rule(tmp_path):
    exc = _raise_from_package(tmp_path, "kernels", "raise FileNotFoundError('Cannot load dependency data')")
    said = bundle_hint.hint(exc, roots=[str(tmp_path.resolve())])
    assert said is not None and "'kernels'" in said and "COLLECT_ALL" in said and "OPTIONAL_ACCELERATORS" in said


def test_the_hint_follows_the_chain_to_the_cause(tmp_path):
    cause = _raise_from_package(tmp_path, "kernels", "raise FileNotFoundError('x')")
    try:
        raise RuntimeError("training failed") from cause
    except RuntimeError as wrapped:
        said = bundle_hint.hint(wrapped, roots=[str(tmp_path.resolve())])
    assert said is not None and "'kernels'" in said


def test_missing_modules_and_metadata_name_their_rules(tmp_path):
    module = ModuleNotFoundError("No module named 'torchsde.brownian'", name="torchsde.brownian")
    assert "add 'torchsde' to COLLECT_ALL" in bundle_hint.hint(module, roots=[str(tmp_path)])
    metadata = importlib.metadata.PackageNotFoundError("httpx2")
    assert "metadata of 'httpx2'" in bundle_hint.hint(metadata, roots=[str(tmp_path)])
    assert "METADATA" in bundle_hint.hint(metadata, roots=[str(tmp_path)])


def test_other_failures_get_no_hint(tmp_path):
    assert bundle_hint.hint(ValueError("the mask is empty"), roots=[str(tmp_path)]) is None
    own = FileNotFoundError("photo.png")  # raised by our own code or a caller, not by a package's files
    assert bundle_hint.hint(own, roots=[str(tmp_path)]) is None


def test_the_engine_turns_hub_kernels_off_unless_the_user_chose():
    """transformers 5 refuses to load any model when `kernels` (left out of the bundle) is missing
    and Hub kernels are on; the engine turns them off before any model loads."""
    probe = "import os, alchemy_engine; print(os.environ['USE_HUB_KERNELS'])"
    env = {k: v for k, v in os.environ.items() if k != "USE_HUB_KERNELS"}
    assert subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "NO"
    chosen = subprocess.run([sys.executable, "-c", probe], env={**env, "USE_HUB_KERNELS": "YES"},
                            capture_output=True, text=True, check=True)
    assert chosen.stdout.strip() == "YES"
