"""Single ``.safetensors`` SDXL files, loaded without the whole file in memory next to the models.

diffusers' ``from_single_file`` reads the whole checkpoint into a state dict (6.9 GB for SDXL in
fp16), then converts and builds each component from it: the file's tensors and every built model
are alive at once (a 20 GiB peak for full SDXL in fp32 on a CPU). :class:`LazyCheckpoint` hands
the converters a dict whose values are read from the file only when asked for, with ordinary
reads (no memory map, so nothing of the file counts towards the process's memory). Each
component's converter takes its own tensors, the component is built from them in the run's dtype,
and they are dropped before the next component: the peak is the built models plus the largest
component in the file's precision.

Measured on demo:mid as a single file (212 MiB of fp32 models; ``bench/RESULTS.md``): loading
peak above the process's start 1.44× the models' size from an fp16 file (diffusers' default:
1.67×), 1.16× from an fp32 file (default: 1.20× once every weight has been touched). What remains
above 1× is the largest component (the UNet) in the file's precision while it is converted; for
full SDXL that is ~5 GB on top of ~14 GB of fp32 models, against the whole 6.9 GB file before.
Not done yet: streaming the UNet tensor by tensor into the built model (to reach ≤ 1.15× on fp16
files), and the alternative of a one-time conversion into a cached diffusers folder that later
loads memory-mapped (its first use peaks like this path; it costs the file's size again on disk).
"""

from __future__ import annotations

import contextlib
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}


class LazyCheckpoint(dict):
    """A safetensors file as a ``dict`` of name → tensor, each read from disk when it is looked up.

    Keys are all there (``in``, ``keys()``, iteration, ``len`` work as usual); values are not kept:
    two lookups read twice, and dropping the returned tensor frees it."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(length))
        header.pop("__metadata__", None)
        super().__init__((key, None) for key in header)
        self._entries = header
        self._start = 8 + length
        self._path = path

    def _read(self, key: str) -> torch.Tensor:
        entry = self._entries[key]
        begin, end = entry["data_offsets"]
        buffer = bytearray(end - begin)
        with self._path.open("rb") as fh:
            fh.seek(self._start + begin)
            fh.readinto(buffer)
        dtype = _DTYPES[entry["dtype"]]
        if not buffer:
            return torch.empty(entry["shape"], dtype=dtype)
        return torch.frombuffer(buffer, dtype=dtype).reshape(entry["shape"])

    def __getitem__(self, key: str) -> torch.Tensor:
        if not dict.__contains__(self, key):
            raise KeyError(key)
        return self._read(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self._read(key) if dict.__contains__(self, key) else default

    def pop(self, key: str, *default: Any) -> Any:
        if not dict.__contains__(self, key):
            if default:
                return default[0]
            raise KeyError(key)
        value = self._read(key)
        dict.pop(self, key)
        return value

    def values(self) -> Iterator[torch.Tensor]:  # type: ignore[override]
        return (self._read(k) for k in list(dict.keys(self)))

    def items(self) -> Iterator[tuple[str, torch.Tensor]]:  # type: ignore[override]
        return ((k, self._read(k)) for k in list(dict.keys(self)))

    def copy(self) -> dict[str, torch.Tensor]:  # a real dict: whoever copies wants the tensors
        return dict(self.items())


@contextlib.contextmanager
def lazy_single_file() -> Iterator[None]:
    """While active, diffusers' single-file pipeline loader reads the checkpoint lazily."""
    from diffusers.loaders import single_file

    original = single_file.load_single_file_checkpoint

    def load(pretrained_model_link_or_path, *args, **kwargs):
        path = Path(str(pretrained_model_link_or_path))
        if path.suffix == ".safetensors" and path.is_file():
            return LazyCheckpoint(path)
        return original(pretrained_model_link_or_path, *args, **kwargs)

    single_file.load_single_file_checkpoint = load
    try:
        yield
    finally:
        single_file.load_single_file_checkpoint = original
