"""What the frozen app carries and what it leaves out: read by image_alchemy.spec and by the tests.

Plain Python (no PyInstaller import) so ``tests/test_packaging.py`` can check that the spec's data
list covers every file in ``resources/`` and every package the app imports lazily.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import importlib.util
import re
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (source relative to the repository, folder inside the bundle): paths.resources_dir() finds
# resources/ through sys._MEIPASS.
DATA_DIRS = (("resources", "resources"),)

# Packages imported by name at run time (diffusers' and transformers' lazy modules, the pipeline
# classes diffusers picks from model_index.json, segment_anything's builders): every submodule and
# data file is collected, because PyInstaller's import scan cannot see names resolved by string.
COLLECT_ALL = ("diffusers", "transformers", "peft", "accelerate", "segment_anything", "safetensors",
               "huggingface_hub", "tokenizers")

# Packages whose PyInstaller hook already collects what they load dynamically (torch's hook takes
# every submodule and library), or that load nothing by name: a static import is enough.
HOOKED = ("torch", "torchvision", "PySide6", "shiboken6", "numpy", "PIL", "platformdirs", "tqdm", "psutil",
          "prodigyopt", "bitsandbytes", "yaml", "regex", "packaging", "filelock", "fsspec",
          "httpx2", "psd_tools",  # the hub's HTTP client (download errors); the .psd writer
          "torchsde")  # the "DPM++ SDE Karras" sampler's noise

# Only these transformers model families are used (SDXL's CLIP text encoders; Grounding DINO with
# its Swin image and BERT text backbones; the auto classes that pick them). The other ~400
# families would only add build time and size.
TRANSFORMERS_MODELS = ("auto", "bert", "clip", "clip_vision", "dinov2", "grounding_dino", "swin", "vit")

# Libraries loaded by path at run time, which PyInstaller's link analysis cannot see: torchvision's
# operators (torch.ops.load_library("_C_stable.so"): nms, roi_align, image decoding) and NVRTC's
# builtins, which NVRTC opens by name when torch compiles a CUDA kernel at run time.
# (package, glob inside the package folder, destination folder inside the bundle)
RUNTIME_LIBRARIES = (
    ("torchvision", "*.so", "torchvision"), ("torchvision", "*.pyd", "torchvision"),
    ("torchvision", "*.dll", "torchvision"), ("torchvision", "*.dylib", "torchvision"),
    ("nvidia", "cu13/lib/libnvrtc-builtins.so.*", "nvidia/cu13/lib"),
    ("nvidia", "cuda_nvrtc/lib/libnvrtc-builtins.so.*", "nvidia/cuda_nvrtc/lib"),
)

# Distributions whose metadata is read at run time (version checks in transformers, diffusers and
# huggingface_hub). tests/gui/test_self_test.py records every lookup the self-test's journey makes
# and fails, naming the distribution, when one is missing here.
METADATA = ("diffusers", "transformers", "peft", "accelerate", "torch", "torchvision", "tqdm", "safetensors",
            "huggingface-hub", "tokenizers", "numpy", "Pillow", "regex", "requests", "filelock", "packaging",
            "pyyaml", "segment-anything", "platformdirs", "psutil", "httpx2", "httpcore2", "rich", "torchsde")

# Optional accelerators that transformers and diffusers use when importable, and the app never needs:
# `kernels` downloads compute kernels from the Hugging Face Hub at run time (the app downloads
# nothing unasked; transformers >= 5 depends on it and imports it whenever it is present, and its
# data files missing from the bundle broke training); flash-attn, xformers, deepspeed and torchao
# are CUDA builds the app does not call (it uses PyTorch's own scaled-dot-product attention). Left
# out, `find_spec` reports them absent and those libraries switch the feature off.
OPTIONAL_ACCELERATORS = ("kernels", "flash_attn", "xformers", "deepspeed", "torchao")

# Modules never used by the app: torch.compile's compiler backend (triton with its CUDA compiler,
# ~0.9 GB), notebooks, plotting, test runners, and what optional imports in transformers/diffusers
# would drag in from a crowded environment (scipy, pandas, cloud SDKs); those libraries test
# `find_spec` first, so a missing one just switches a feature off.
EXCLUDE_MODULES = ("triton", "tkinter", "matplotlib", "IPython", "jupyter", "notebook", "pytest", "_pytest",
                   "tensorboard", "torch.utils.tensorboard", "pandas", "scipy", "sklearn",
                   "botocore", "boto3", "awscli", "moto", "cfnlint", "jedi", "parso", "libcst",
                   *OPTIONAL_ACCELERATORS)

# Files collected by the hooks that the app never opens, as glob patterns on the path inside the
# bundle. Measured by packaging/build.sh (bench/RESULTS.md, "Frozen build").
EXCLUDE_FILES = (
    "*/tests/*", "*/test/*",                        # test suites shipped inside packages
    "torch/include/*", "*/include/*.h", "*.a", "*.lib", "*.pdb", "*.cmake", "*.pyi",   # build-time only
    "torch/bin/protoc*",                            # protobuf compiler
    "nvidia/*/include/*", "nvidia/*/bin/*",         # CUDA headers and compilers
    "*/libnvrtc.alt.so*", "*/libnvrtc-builtins.alt.so*",  # second copy of NVRTC (alternative build)
    "*/libcusolverMg.so*", "*/libnvblas.so*", "*/libcufftw.so*",  # multi-GPU solver, BLAS/FFTW shims
    "*/libnvperf_*", "*/libpcsamplingutil.so*", "*/libcheckpoint.so*",  # CUPTI profiler extras
    "PySide6/Qt/qml/*", "PySide6/Qt/lib/libQt6Quick*", "PySide6/Qt/lib/libQt6Qml*",  # QML is not used
)


def excluded(dest: str, patterns: Iterable[str] = EXCLUDE_FILES) -> bool:
    """True when a file at ``dest`` (path inside the bundle, any separator) is left out."""
    name = dest.replace("\\", "/")
    return any(fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch("/" + name, pattern) for pattern in patterns)


def keep_submodule(name: str) -> bool:
    """Filter for collect_submodules: no test packages; transformers' model families we use."""
    parts = name.split(".")
    if "tests" in parts or "testing_utils" in parts:
        return False
    if parts[:2] == ["transformers", "models"] and len(parts) > 2:
        return parts[2] in TRANSFORMERS_MODELS
    return True


def installed(distributions: Iterable[str]) -> list[str]:
    """The distributions present in this environment (optional ones may be missing)."""
    present = []
    for dist in distributions:
        try:
            importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        present.append(dist)
    return present


def available(packages: Iterable[str]) -> list[str]:
    return [name for name in packages if importlib.util.find_spec(name) is not None]


def runtime_libraries() -> list[tuple[str, str]]:
    """(file, destination folder) for RUNTIME_LIBRARIES present in this environment."""
    found = []
    for package, pattern, dest in RUNTIME_LIBRARIES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        for folder in spec.submodule_search_locations:
            found += [(str(path), dest) for path in sorted(Path(folder).glob(pattern))
                      if not excluded(f"{dest}/{path.name}")]
    return found


def data_dirs() -> list[tuple[str, str]]:
    return [(str(ROOT / source), dest) for source, dest in DATA_DIRS]


def _normal(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def data_file_rule(relative: str) -> str | None:
    """The rule that puts a package's data file in the bundle, or None. ``relative`` is its path
    inside site-packages ('/'-separated), e.g. 'transformers/models/clip/tokenizer.json'."""
    package = relative.split("/")[0]
    if excluded(relative) or package not in COLLECT_ALL or "tests" in relative.split("/")[1:-1]:
        return None
    return "COLLECT_ALL"


def metadata_rule(distribution: str) -> str | None:
    return "METADATA" if _normal(distribution) in {_normal(name) for name in METADATA} else None


def uncovered(files: Iterable[str], metadata: Iterable[str]) -> list[str]:
    """What a run read from installed packages that the bundle would lack: one line each, naming
    the package and the rule of this file that would add it."""
    lines = []
    for relative in sorted(files):
        if data_file_rule(relative) is None:
            package = relative.split("/")[0]
            lines.append(f"{package} reads {relative}, which the bundle lacks: add {package!r} to COLLECT_ALL in "
                         f"packaging/bundle_contents.py (or to OPTIONAL_ACCELERATORS if the app does not need it)")
    lines += [f"the metadata of {name!r} is looked up but not bundled: add {name!r} to METADATA in "
              f"packaging/bundle_contents.py" for name in sorted(metadata) if metadata_rule(name) is None]
    return lines
