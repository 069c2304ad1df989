"""The activation traces behind both memory estimates: an SDXL UNet and one step's inputs on
PyTorch's ``meta`` device (shapes without memory), run forward once at the working size.

* training (:func:`activation_bytes`): under ``saved_tensors_hooks``, which see every tensor
  autograd keeps for the backward pass, with the LoRA-targeted projections marked trainable;
* inference (:func:`unet_peak`): under a dispatch mode that sees every tensor the forward creates
  and, through weak references, when it is freed — the most bytes alive at once.

Also the UNet's config of a source (:func:`unet_config`) and its parameter counts
(:func:`param_counts`). Used by ``memory/training.py`` and ``memory/inference.py``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import weakref
from pathlib import Path
from typing import Any

import torch

from alchemy_engine.models import half_weights
from alchemy_engine.models.lora_files import unet_lora_targets


def meta_unet(config_json: str, dtype: Any) -> Any:
    """The UNet of ``config_json`` on the meta device, in ``dtype``."""
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(json.loads(config_json))
    return torch.nn.Module.to(unet, dtype)  # ModelMixin.to would warn about fp32-only modules


def meta_unet_inputs(config: Any, rows: int, height: int, width: int, dtype: Any) -> dict[str, Any]:
    """The keyword arguments of one UNet call on ``rows`` latents of ``height × width`` (SDXL's
    pooled text embedding and six time ids as added conditions, 77 text tokens)."""
    text_dim = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
    return dict(sample=torch.empty(rows, config.in_channels, height, width, device="meta", dtype=dtype),
                timestep=torch.zeros(rows, device="meta", dtype=torch.long),
                encoder_hidden_states=torch.empty(rows, 77, config.cross_attention_dim, device="meta", dtype=dtype),
                added_cond_kwargs={"text_embeds": torch.empty(rows, text_dim, device="meta", dtype=dtype),
                                   "time_ids": torch.empty(rows, 6, device="meta", dtype=dtype)})


def unet_config(source) -> dict[str, Any]:
    """The UNet config of ``source``: its own, or SDXL's for a single file (or a config-only source)."""
    from alchemy_engine import paths

    configs = Path(getattr(source, "config_dir", None) or paths.sdxl_config_dir())
    folder = Path(source.path) / "unet" if Path(source.path).is_dir() else configs / "unet"
    return json.loads((folder / "config.json").read_text())


@functools.lru_cache(maxsize=8)
def param_counts(config_json: str, train_ff: bool) -> dict[str, int]:
    """Parameters of the UNet, LoRA parameters per unit of rank, and the weights storable in half."""
    unet = meta_unet(config_json, torch.float32)
    targets = unet_lora_targets(train_ff)
    per_rank = sum(m.in_features + m.out_features for name, m in unet.named_modules()
                   if isinstance(m, torch.nn.Linear) and name.endswith(targets))
    storable = [m.weight.numel() for m in half_weights.storable_layers(unet.requires_grad_(False))]
    return {"unet": sum(p.numel() for p in unet.parameters()), "lora_per_rank": per_rank,
            "storable": sum(storable), "largest_storable": max(storable, default=0)}


class _FusedAttention(torch.autograd.Function):
    """Stands in for SDPA on the meta device, keeping what fused kernels keep for backward."""

    @staticmethod
    def forward(ctx, q, k, v):
        out = torch.empty_like(q)
        ctx.save_for_backward(q, k, v, out)
        return out

    @staticmethod
    def backward(ctx, grad):  # pragma: no cover - never run: the trace has no backward
        q, k, v, _ = ctx.saved_tensors
        return torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)


@contextlib.contextmanager
def _fused_sdpa():
    original = torch.nn.functional.scaled_dot_product_attention
    torch.nn.functional.scaled_dot_product_attention = lambda q, k, v, *a, **kw: _FusedAttention.apply(q, k, v)
    try:
        yield
    finally:
        torch.nn.functional.scaled_dot_product_attention = original


@functools.lru_cache(maxsize=32)
def activation_bytes(config_json: str, batch: int, height: int, width: int, dtype_name: str,
                     checkpointing: bool, train_ff: bool, storage_name: str = "") -> dict[str, int]:
    """Bytes autograd keeps for one LoRA training forward at latent size ``height × width``
    (``storage_name``: the frozen weights' half storage dtype, whose layers keep less): ``saved``
    with or without ``checkpointing``, ``transient`` (the backward's largest temporaries) and
    ``forward``, what the whole forward saves without checkpointing."""
    from diffusers.models.attention import BasicTransformerBlock
    from diffusers.models.resnet import ResnetBlock2D

    dtype = getattr(torch, dtype_name.replace("torch.", ""))
    unet = meta_unet(config_json, dtype)
    unet.requires_grad_(False)
    targets = unet_lora_targets(train_ff)
    tracker = _SavedTracker()
    for name, module in unet.named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith(targets):
            module.weight.requires_grad_(True)
            if dtype != torch.float32:  # fp32 weights: no autocast, no cast copies
                module.register_forward_hook(tracker.lora_input)
    if storage_name:
        half_weights.store_frozen_weights(unet, getattr(torch, storage_name.replace("torch.", "")), dtype)
    tracker.seen.update(t.untyped_storage()._cdata for t in [*unet.parameters(), *unet.buffers()])  # not activations
    for module in unet.modules():
        if isinstance(module, (ResnetBlock2D, BasicTransformerBlock)):
            module.register_forward_pre_hook(tracker.enter)
            module.register_forward_hook(tracker.leave)
    args = meta_unet_inputs(unet.config, batch, height, width, dtype)
    with _fused_sdpa(), torch.autograd.graph.saved_tensors_hooks(tracker.pack, lambda t: t):
        unet(**args)
    return tracker.result(checkpointing)


class _SavedTracker:
    """Adds up unique saved tensors, split into checkpointing units and the rest."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.unit: int | None = None
        self.units: list[int] = []
        self.unit_inputs = 0
        self.outside = 0
        self.largest = 0

    def enter(self, module, args) -> None:
        if self.unit is None:
            self.unit = len(self.units)
            self.units.append(0)
            self.unit_inputs += sum(_nbytes(a) for a in args if isinstance(a, torch.Tensor))
            self._owner = module

    def leave(self, module, args, output) -> None:
        if self.unit is not None and module is self._owner:
            self.unit = None

    def lora_input(self, module, args, output) -> None:
        """peft casts a LoRA layer's input to the LoRA dtype; autocast then keeps its own copy."""
        self._add(_nbytes(args[0]))

    def _add(self, size: int) -> None:
        self.largest = max(self.largest, size)
        if self.unit is None:
            self.outside += size
        else:
            self.units[self.unit] += size

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        key = tensor.untyped_storage()._cdata
        if key not in self.seen:
            self.seen.add(key)
            self._add(_nbytes(tensor))
        return tensor

    def result(self, checkpointing: bool) -> dict[str, int]:
        in_units = sum(self.units)
        saved = self.outside + (self.unit_inputs + max(self.units, default=0) if checkpointing else in_units)
        return {"saved": saved, "transient": 3 * self.largest, "forward": self.outside + in_units}


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


class _LiveBytes:
    """Bytes of the tensors created under it that are still alive, and the most at once."""

    def __init__(self, ignored: set[int]) -> None:
        self.ignored = ignored  # storages of weights and inputs: not activations
        self.refs: dict[int, list[int]] = {}  # storage → [bytes, live tensors on it]
        self.live = 0
        self.peak = 0

    def track(self, tensor: Any) -> None:
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key in self.ignored:
            return
        entry = self.refs.get(key)
        if entry is None:
            entry = self.refs[key] = [storage.nbytes(), 0]
            self.live += entry[0]
            self.peak = max(self.peak, self.live)
        entry[1] += 1
        weakref.finalize(tensor, self._release, key)

    def _release(self, key: int) -> None:
        entry = self.refs[key]
        entry[1] -= 1
        if entry[1] == 0:
            self.live -= entry[0]
            del self.refs[key]


@contextlib.contextmanager
def _fused_attention():
    """SDPA as a fused kernel keeps it: just the output (no score matrix) on the meta device."""
    original = torch.nn.functional.scaled_dot_product_attention
    torch.nn.functional.scaled_dot_product_attention = lambda q, k, v, *a, **kw: torch.empty_like(q)
    try:
        yield
    finally:
        torch.nn.functional.scaled_dot_product_attention = original


@functools.lru_cache(maxsize=16)
def unet_peak(config_json: str, height: int, width: int, dtype_name: str, rows: int, fused: bool) -> int:
    """Peak activation bytes of one inference forward on ``rows`` latents of ``height × width``
    (``fused``: attention as SDPA's fused kernels keep it, on CUDA; elsewhere with the score matrix)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    dtype = getattr(torch, dtype_name.replace("torch.", ""))
    unet = meta_unet(config_json, dtype)
    args = meta_unet_inputs(unet.config, rows, height, width, dtype)
    ignored = {t.untyped_storage()._cdata for t in [*unet.parameters(), *unet.buffers(), *tree_leaves(args)]}
    live = _LiveBytes(ignored)

    class Watch(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for leaf in tree_leaves(out):
                if isinstance(leaf, torch.Tensor):
                    live.track(leaf)
            return out

    attention = _fused_attention() if fused else contextlib.nullcontext()
    with torch.no_grad(), attention, Watch():
        out = unet(**args)
    del out
    return live.peak  # rows = the rows one image takes (two with guidance)
