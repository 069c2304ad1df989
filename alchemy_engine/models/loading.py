"""SDXL weights streamed tensor by tensor into the built models: single ``.safetensors`` files
(below) and diffusers folders (:func:`lazy_folder`).

diffusers' ``from_single_file`` reads the whole checkpoint into a state dict (6.9 GB for SDXL in
fp16), converts each component's share to diffusers names, then copies it into the built model:
the file's tensors and every built model are alive at once (a 20 GiB peak for full SDXL in fp32 on
a CPU). Here nothing is read until a weight is copied into its model:

* :class:`LazyCheckpoint` is the file as a ``dict`` whose values are read only when looked up
  (a tensor about to be cast is a view of its own bytes mapped alone, released with the view; any
  other is read into memory, so no more of the file counts towards the process's memory);
* each converter diffusers calls (UNet, VAE, both CLIPs) is first run over *meta* tensors with
  the file's shapes: an output that is the very same object as an input is a pure rename. The
  converter then runs once more with real data only for the inputs it transforms (the VAE's 1×1
  convolutions, OpenCLIP's fused q/k/v and its transposed projection) and meta placeholders for the
  renamed ones;
* diffusers' own ``load_model_dict_into_meta`` then assigns each weight to the model built with
  empty weights, cast to the run's dtype; a placeholder is read from the file just before that, so
  one tensor in the file's precision is alive at a time (none from an fp32 file into fp32 models:
  the tensor read becomes the parameter).

The values, their order and dtype handling are diffusers' own; only where each tensor comes from
changes (``tests/engine/test_models_single_file.py`` checks every parameter and buffer against a
plain ``from_single_file``). Were a converter to both rename an input and transform it, its
placeholders would be wrong, so that converter falls back to converting with real data.

Measured on demo:mid as a single file (212 MiB of fp32 models, ``bench/loading_bench.py``, figures
in ``bench/RESULTS.md``): the loading peak above the process's start is 1.00× the models' size from
an fp16 file (1.12× in one run of seven; diffusers' default: 1.49×) and 0.98× from an fp32 file
(default: 1.01×). For full SDXL from its 6.9 GB fp16 file into 13.9 GB of fp32 models on a CPU
that leaves ~0.4 GB above the models (the largest tensor and OpenCLIP's fused q/k/v, converted ahead of their assignment)
instead of the 5 GB UNet or the whole file. The alternative, a one-time conversion into a cached
diffusers folder that later loads memory-mapped, was measured too and not chosen: it costs the
file's size again on disk (6.9 GB; 113 MiB for demo:mid), its first load peaks like this path, and
its later loads peaked higher (1.14–1.30× from the fp16 folder: the mapped fp16 pages of the
component being built count as resident beside its fp32 copy, as much as the kernel keeps).

Full SDXL on the CPU, into 13.2 GiB of fp32 models (``loading_bench.py --measure``, alternating):
the 6.9 GB fp16 file peaks 1.00–1.02× above the process's start in 12.8–13.4 s (reading each tensor
into memory first: 1.04–1.07×, 16.8–17.2 s); a bf16 diffusers folder 1.01× in 15.5–17.2 s, where
diffusers' ``from_pretrained`` peaks 1.11–1.37× in 14.9–17.1 s.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from alchemy_engine.errors import ModelError

_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}


class LazyCheckpoint(dict):
    """A safetensors file as a ``dict`` of name → tensor, each read from disk when it is looked up.

    Keys are all there (``in``, ``keys()``, iteration, ``len`` work as usual); values are not kept:
    two lookups read twice, and dropping the returned tensor frees it.

    ``cast_to``: the precision the loader will cast floating tensors to. A tensor stored in another
    precision is then a view of the file mapped for that tensor alone (the cast is its copy, and
    the mapping goes with the view: 1.4× faster than reading it first for full SDXL's bf16 UNet);
    any other is read into memory of its own, since it may become a model's weight as it is."""

    def __init__(self, path: str | Path, cast_to: torch.dtype | None = None) -> None:
        path = Path(path)
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(length))
        header.pop("__metadata__", None)
        super().__init__((key, None) for key in header)
        self._entries = header
        self._start = 8 + length
        self._path = path
        self._cast_to = cast_to
        self._meta: dict[str, torch.Tensor] | None = None
        self._assigned: dict[str, torch.Tensor] = {}  # keys a loader renamed (diffusers' old attention names)

    def __setitem__(self, key: str, value: torch.Tensor) -> None:
        self._assigned[key] = value
        dict.__setitem__(self, key, None)

    def __delitem__(self, key: str) -> None:
        dict.__delitem__(self, key)
        self._assigned.pop(key, None)

    def read(self, key: str) -> torch.Tensor:
        if key in self._assigned:
            return self._assigned[key]
        entry = self._entries[key]
        begin, end = entry["data_offsets"]
        dtype = _DTYPES[entry["dtype"]]
        if end == begin:
            return torch.empty(entry["shape"], dtype=dtype)
        with self._path.open("rb") as fh:
            if self._cast_to is not None and dtype.is_floating_point and dtype != self._cast_to:
                data = self._mapped(fh, self._start + begin, end - begin, key)
            else:
                data = torch.empty(end - begin, dtype=torch.uint8)  # no zero-filled buffer first
                fh.seek(self._start + begin)
                self._check_length(key, end - begin, fh.readinto(data.numpy().data))
        return data.view(dtype).reshape(entry["shape"])

    def _mapped(self, fh: Any, offset: int, length: int, key: str) -> torch.Tensor:
        aligned = offset - offset % mmap.ALLOCATIONGRANULARITY
        self._check_length(key, length, min(length, os.fstat(fh.fileno()).st_size - offset))
        # copy-on-write: torch wants a writable buffer; nothing writes, so the pages stay the page cache's
        view = mmap.mmap(fh.fileno(), offset - aligned + length, offset=aligned, access=mmap.ACCESS_COPY)
        return torch.frombuffer(view, dtype=torch.uint8, offset=offset - aligned, count=length)

    def _check_length(self, key: str, want: int, got: int) -> None:
        if got != want:
            raise ModelError(f"{self._path} is cut short ({key} lacks {want - got} bytes); "
                             "download the file again or choose another model")

    def meta(self) -> dict[str, torch.Tensor]:
        """Every tensor as a meta tensor of its shape and dtype; the same objects on every call."""
        if self._meta is None:
            self._meta = {key: torch.empty(e["shape"], dtype=_DTYPES[e["dtype"]], device="meta")
                          for key, e in self._entries.items()}
        return self._meta

    def __getitem__(self, key: str) -> torch.Tensor:
        if not dict.__contains__(self, key):
            raise KeyError(key)
        return self.read(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self.read(key) if dict.__contains__(self, key) else default

    def pop(self, key: str, *default: Any) -> Any:
        if not dict.__contains__(self, key):
            if default:
                return default[0]
            raise KeyError(key)
        value = self.read(key)
        del self[key]
        return value

    def values(self) -> Iterator[torch.Tensor]:  # type: ignore[override]
        return (self.read(k) for k in list(dict.keys(self)))

    def items(self) -> Iterator[tuple[str, torch.Tensor]]:  # type: ignore[override]
        return ((k, self.read(k)) for k in list(dict.keys(self)))

    def copy(self) -> dict[str, torch.Tensor]:  # a real dict: whoever copies wants the tensors
        return dict(self.items())


class _PartlyMeta(LazyCheckpoint):
    """The checkpoint with the named keys answered by their meta placeholders, the rest read."""

    def __init__(self, checkpoint: LazyCheckpoint, placeholders: set[str]) -> None:
        dict.__init__(self, dict.fromkeys(dict.keys(checkpoint)))
        self._checkpoint, self._placeholders = checkpoint, placeholders

    def read(self, key: str) -> torch.Tensor:
        if key in self._placeholders:
            return self._checkpoint.meta()[key]
        return self._checkpoint.read(key)


class _Placeholders:
    """Meta tensors standing for a tensor of a file, by identity, until they are read."""

    def __init__(self) -> None:
        self._sources: dict[int, tuple[torch.Tensor, LazyCheckpoint, str]] = {}
        self.path: Path | None = None  # the file being loaded, for messages

    def add(self, checkpoint: LazyCheckpoint, key: str) -> None:
        tensor = checkpoint.meta()[key]
        self._sources[id(tensor)] = (tensor, checkpoint, key)

    def resolve(self, value: Any) -> Any:
        source = self._sources.get(id(value)) if isinstance(value, torch.Tensor) and value.is_meta else None
        if source is None or source[0] is not value:
            return value
        return source[1].read(source[2])

    def convert_streamed(self, convert: Callable[..., dict]) -> Callable[..., dict]:
        """``convert`` (a diffusers converter taking ``checkpoint``) returning placeholders for renames."""
        signature = inspect.signature(convert)

        @functools.wraps(convert)
        def run(*args: Any, **kwargs: Any) -> dict:
            bound = signature.bind(*args, **kwargs)
            checkpoint = bound.arguments.get("checkpoint")
            if not isinstance(checkpoint, LazyCheckpoint):
                return convert(*args, **kwargs)

            def with_checkpoint(view: dict) -> dict:
                bound.arguments["checkpoint"] = view
                return convert(*bound.args, **bound.kwargs)

            meta = checkpoint.meta()
            key_of = {id(tensor): key for key, tensor in meta.items()}
            traced = with_checkpoint(dict(meta))
            renamed = {out: key_of[id(v)] for out, v in traced.items()
                       if id(v) in key_of and meta[key_of[id(v)]] is v}
            converted = with_checkpoint(_PartlyMeta(checkpoint, set(renamed.values())))
            if any(isinstance(v, torch.Tensor) and v.is_meta for out, v in converted.items() if out not in renamed):
                return with_checkpoint(checkpoint)  # an input both renamed and transformed: real data throughout
            for key in renamed.values():
                self.add(checkpoint, key)
            return converted

        return run

    def load_streamed(self, load: Callable[..., Any]) -> Callable[..., Any]:
        """diffusers' ``load_model_dict_into_meta``, reading each placeholder just before it is assigned."""

        @functools.wraps(load)
        def run(model: Any, state_dict: dict, *args: Any, **kwargs: Any) -> Any:
            result = load(model, _Resolving(state_dict, self), *args, **kwargs)
            # built with empty weights, a model keeps a meta tensor for each weight the file lacks
            missing = [name for name, tensor in model.state_dict(keep_vars=True).items() if tensor.is_meta]
            if missing:
                raise ModelError(f"{self.path or 'the model file'} is incomplete: {type(model).__name__} lacks "
                                 f"{len(missing)} weights (first: {missing[0]}); download the file again "
                                 "or choose another model")
            return result

        return run


class _Resolving(dict):
    """A converted state dict whose placeholders are read from the file as ``items()`` reaches them."""

    def __init__(self, state_dict: dict, placeholders: _Placeholders) -> None:
        super().__init__(state_dict)
        self._placeholders = placeholders

    def __getitem__(self, key: str) -> Any:
        return self._placeholders.resolve(dict.__getitem__(self, key))

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def values(self) -> Iterator[Any]:  # type: ignore[override]
        return (self[k] for k in list(dict.keys(self)))

    def items(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        return ((k, self[k]) for k in list(dict.keys(self)))


@contextlib.contextmanager
def _patched(target: Any, name: str, value: Any) -> Iterator[None]:
    if isinstance(target, dict):
        original = target[name]
        target[name] = value
    else:
        original = getattr(target, name)
        setattr(target, name, value)
    try:
        yield
    finally:
        if isinstance(target, dict):
            target[name] = original
        else:
            setattr(target, name, original)


@contextlib.contextmanager
def lazy_single_file(cast_to: torch.dtype | None = None) -> Iterator[None]:
    """While active, diffusers' single-file pipeline loader streams the checkpoint (module docstring);
    ``cast_to``: the precision the models are built in (:class:`LazyCheckpoint`)."""
    from diffusers.loaders import single_file, single_file_model, single_file_utils

    placeholders = _Placeholders()
    original_load = single_file.load_single_file_checkpoint

    def load_checkpoint(pretrained_model_link_or_path, *args, **kwargs):
        path = Path(str(pretrained_model_link_or_path))
        if path.suffix == ".safetensors" and path.is_file():
            placeholders.path = path
            return LazyCheckpoint(path, cast_to)
        return original_load(pretrained_model_link_or_path, *args, **kwargs)

    mappings = single_file_model.SINGLE_FILE_LOADABLE_CLASSES
    with contextlib.ExitStack() as stack:
        stack.enter_context(_patched(single_file, "load_single_file_checkpoint", load_checkpoint))
        for cls in ("UNet2DConditionModel", "AutoencoderKL"):
            fn = mappings[cls]["checkpoint_mapping_fn"]
            stack.enter_context(_patched(mappings[cls], "checkpoint_mapping_fn", placeholders.convert_streamed(fn)))
        for name in ("convert_ldm_clip_checkpoint", "convert_open_clip_checkpoint"):
            fn = getattr(single_file_utils, name)
            stack.enter_context(_patched(single_file_utils, name, placeholders.convert_streamed(fn)))
        for module in (single_file_model, single_file_utils):
            fn = module.load_model_dict_into_meta
            stack.enter_context(_patched(module, "load_model_dict_into_meta", placeholders.load_streamed(fn)))
        yield


@contextlib.contextmanager
def lazy_folder(cast_to: torch.dtype | None = None) -> Iterator[None]:
    """While active, diffusers reads a model folder's ``.safetensors`` weights one tensor at a time.

    ``from_pretrained`` memory-maps each weights file and keeps the mapping until the model is
    built: every page of a half-precision file counts as resident beside the full-precision model
    being filled (full SDXL's bf16 folder into fp32: up to a 1.37× peak, the 4.8 GB UNet file on top).
    Read as :class:`LazyCheckpoint` instead, one tensor in the file's precision is alive at a time;
    the values and their handling are diffusers' own (``load_model_dict_into_meta``). The text
    encoders (transformers) are read with safetensors' ``pread`` backend, transformers' own choice
    on Windows, for the same reason (its mapping held the 1.4 GB OpenCLIP file on top)."""
    import transformers.modeling_utils as transformers_modeling
    from diffusers.models import model_loading_utils, modeling_utils

    def load_state_dict(checkpoint_file, disable_mmap: bool = False, map_location="cpu", _original=None):
        if (isinstance(checkpoint_file, (str, Path)) and str(checkpoint_file).endswith(".safetensors")
                and str(map_location) == "cpu"):
            return LazyCheckpoint(checkpoint_file, cast_to)
        return _original(checkpoint_file, disable_mmap=disable_mmap, map_location=map_location)

    with contextlib.ExitStack() as stack:
        for module in (modeling_utils, model_loading_utils):
            lazy = functools.partial(load_state_dict, _original=module.load_state_dict)
            stack.enter_context(_patched(module, "load_state_dict", lazy))
        stack.enter_context(_patched(transformers_modeling, "safe_open",
                                     functools.partial(_read_not_mapped, transformers_modeling.safe_open)))
        yield


def _read_not_mapped(safe_open: Callable[..., Any], filename: Any, framework: str, device: Any = "cpu",
                     backend: str | None = None, **kwargs: Any) -> Any:
    if backend == "mmap" and str(device) == "cpu":
        backend = "pread"
    return safe_open(filename, framework=framework, device=device, **kwargs,
                     **({"backend": backend} if backend is not None else {}))
