"""Frozen UNet weights stored in half precision, computed in fp32 ("weight dtype" vs "train dtype").

SDXL checkpoints ship fp16 (or bf16) weights, so an fp32 UNet built from one holds values that
half precision represents exactly: storing its frozen ``nn.Linear`` / ``nn.Conv2d`` weights in that
half dtype and upcasting each one when it is used loses nothing (the upcast is exact) and halves
the UNet's weight memory (full SDXL: 10.27 → 5.14 GB). Norms, biases and embeddings (0.06 % of
SDXL's UNet) stay in compute precision.

:func:`store_frozen_weights` converts the layers in place: each becomes a :class:`HalfStoredLinear`
or :class:`HalfStoredConv2d` (still an ``nn.Linear`` / ``nn.Conv2d``, so peft wraps it as its LoRA
``base_layer`` as usual) that upcasts its weight for each call and keeps **only the half weight**
for the backward pass, upcasting it again there for the input's gradient: no fp32 copy of any
weight stays alive between forward and backward. A Linear does it with saved-tensor hooks around
``F.linear`` (autograd's own derivative runs, so the gradient is bit-identical for every input
layout; under ``torch.compile``, which cannot trace those hooks, an autograd function that matches
it up to float rounding); a Conv2d with an autograd function that calls autograd's own
``convolution_backward`` for the input only, and keeps not even the input (a frozen conv's
gradient does not need it).

The layers carry ``compute_dtype``, which peft reads (it would otherwise cast a new LoRA layer to
its base layer's dtype, rounding LoRA's initial values), so LoRA attached after the conversion
starts from the very same fp32 values as without it. The UNet's first parameter (``conv_in``,
11 k values in SDXL) stays in compute precision, so ``unet.dtype`` — which diffusers, the training
loop and the preview pipeline take the inputs' dtype from — still names the compute precision.

On the CPU every upcast goes into one buffer the UNet's layers share (:class:`UpcastScratch`), the
size of the largest weight: layers run one at a time, in the forward and in the backward, so one
fp32 weight is alive at any moment, as the memory estimate counts. A fresh tensor per upcast (two
or three per layer and step, up to 52 MB each in SDXL) costs the page faults of new memory every
time: the shared buffer made a full-size 512² CPU step 14 % faster (bench/RESULTS.md).

Gradient checkpointing (the recomputed forward reads the half weight again) and previews under
``no_grad`` (a plain upcast, nothing saved) work unchanged.
"""

from __future__ import annotations

import weakref
from typing import cast

import torch
import torch.nn.functional as F

HALF_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


class UpcastScratch:
    """The one buffer per device and dtype that a UNet's half-stored layers upcast their weights
    into, on the CPU (elsewhere each upcast is a fresh tensor: CUDA's caching allocator reuses its
    blocks already). Only one layer of a UNet runs at a time, in the forward or the backward —
    one thread drives it, as training does — so each upcast is used up before the next one
    overwrites the buffer. ``largest``: the most values it will hold (made that size at once)."""

    def __init__(self, largest: int = 0) -> None:
        self.largest = largest
        self._buffers: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def upcast(self, half: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        if half.device.type != "cpu" or torch.compiler.is_compiling():
            return half.to(dtype)
        key = (half.device, dtype)
        buffer = self._buffers.get(key)
        if buffer is None or buffer.numel() < half.numel():
            self._buffers.pop(key, None)  # freed before its larger successor is made
            self.largest = max(self.largest, half.numel())
            buffer = self._buffers[key] = torch.empty(self.largest, dtype=dtype, device=half.device)
        return buffer[:half.numel()].view(half.shape).copy_(half)


class _WeightUpcastOnUnpack:
    """Saved-tensor hooks for one Linear call: autograd keeps the half weight in place of the fp32
    upcast (the only tensor a frozen Linear saves — a view of the weight) and upcasts it again
    when backward unpacks it. Autograd's own linear derivative runs, so the input's gradient is the
    one an fp32 weight gives, bit for bit, whatever the input's layout."""

    def __init__(self, half: torch.Tensor, full: torch.Tensor, scratch: UpcastScratch) -> None:
        # autograd keeps both hooks as long as the saved tensor: a strong reference would keep the upcast
        root = full if full._base is None else full._base  # a scratch upcast is a view of the buffer
        self.half, self.full, self.root, self.dtype = half, weakref.ref(full), weakref.ref(root), full.dtype
        self.scratch = scratch

    def pack(self, tensor: torch.Tensor):
        full, root = self.full(), self.root()
        if full is not None and (tensor is full or (root is not None and tensor._base is root)):
            offset = tensor.storage_offset() - full.storage_offset()
            return (self.half, self.dtype, tensor.size(), tensor.stride(), offset, self.scratch)
        return tensor

    @staticmethod
    def unpack(packed):
        if isinstance(packed, tuple):
            half, dtype, size, stride, offset, scratch = packed
            full = scratch.upcast(half, dtype)
            return full.as_strided(size, stride, full.storage_offset() + offset)
        return packed


class _LinearFromHalf(torch.autograd.Function):
    """What a half-stored Linear runs inside ``torch.compile``, which cannot trace saved-tensor
    hooks: the same upcast, keeping the half weight only; its input gradient is ``grad @ weight``,
    equal to autograd's up to float rounding (autograd picks the matrix product's layout by the
    input's strides), as compiled runs are anyway."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(weight)
        return F.linear(x, weight.to(x.dtype), bias)

    @staticmethod
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        grad_x = grad.matmul(weight.to(grad.dtype)) if ctx.needs_input_grad[0] else None
        grad_bias = grad.flatten(0, -2).sum(0) if ctx.needs_input_grad[2] else None
        return grad_x, None, grad_bias


class _Conv2dFromHalf(torch.autograd.Function):
    """``F.conv2d`` with a half weight upcast to the input's dtype. Keeps the half weight and, for
    a contiguous input, only its shape: the weight is frozen, so its gradient (which needs the
    input) is never asked for, and the input's gradient is autograd's own call
    (``convolution_backward`` with ``output_mask`` = input only) on a stand-in of that shape, as
    ``torch.nn.grad.conv2d_input`` does. Other layouts (channels-last) keep the input, as fp32 does."""

    @staticmethod
    def forward(ctx, x, weight, bias, scratch, stride, padding, dilation, groups):
        plain = x.is_contiguous()
        ctx.save_for_backward(weight, None if plain else x)
        ctx.conv = (x.shape, bias.shape if bias is not None else None, stride, padding, dilation, groups)
        ctx.scratch = scratch
        return F.conv2d(x, scratch.upcast(weight, x.dtype), bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad):
        weight, x = ctx.saved_tensors
        shape, bias_shape, stride, padding, dilation, groups = ctx.conv
        if x is None:
            x = grad.new_empty(1).expand(shape)
        mask = [ctx.needs_input_grad[0], False, ctx.needs_input_grad[2]]
        grad_x, _, grad_bias = torch.ops.aten.convolution_backward(
            grad, x, ctx.scratch.upcast(weight, grad.dtype), bias_shape, stride, padding, dilation, False, [0, 0],
            groups, mask)
        return grad_x, None, grad_bias, None, None, None, None, None


def _tracked(x: torch.Tensor, bias: torch.Tensor | None) -> bool:
    return torch.is_grad_enabled() and (x.requires_grad or (bias is not None and bias.requires_grad))


class HalfStoredLinear(torch.nn.Linear):
    """An ``nn.Linear`` whose frozen weight is stored in half precision and computed in the input's."""

    compute_dtype: torch.dtype  # read by peft for the dtype of LoRA layers wrapping this one
    upcast_scratch: UpcastScratch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _tracked(x, self.bias):
            return F.linear(x, self.upcast_scratch.upcast(self.weight, x.dtype), self.bias)
        if torch.compiler.is_compiling():
            return _LinearFromHalf.apply(x, self.weight, self.bias)
        weight = self.upcast_scratch.upcast(self.weight, x.dtype)
        hooks = _WeightUpcastOnUnpack(self.weight, weight, self.upcast_scratch)
        with torch.autograd.graph.saved_tensors_hooks(hooks.pack, hooks.unpack):
            return F.linear(x, weight, self.bias)


class HalfStoredConv2d(torch.nn.Conv2d):
    """An ``nn.Conv2d`` (zero padding) whose frozen weight is stored in half precision."""

    compute_dtype: torch.dtype
    upcast_scratch: UpcastScratch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _tracked(x, self.bias):
            return _Conv2dFromHalf.apply(x, self.weight, self.bias, self.upcast_scratch, self.stride, self.padding,
                                         self.dilation, self.groups)
        return F.conv2d(x, self.upcast_scratch.upcast(self.weight, x.dtype), self.bias, self.stride, self.padding,
                        self.dilation, self.groups)


_HALF_CLASSES = {torch.nn.Linear: HalfStoredLinear, torch.nn.Conv2d: HalfStoredConv2d}


def storable_layers(unet: torch.nn.Module) -> list[torch.nn.Linear | torch.nn.Conv2d]:
    """The layers whose weights half storage converts: every frozen, floating ``nn.Linear`` and
    zero-padded ``nn.Conv2d`` (exactly those classes or ours), except the owner of the first
    parameter (see the module docstring). The memory estimate counts the same layers."""
    first = next((p for p in unet.parameters() if p.is_floating_point()), None)
    layers: list[torch.nn.Linear | torch.nn.Conv2d] = []
    for module in unet.modules():
        if not isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)) or (
                type(module) not in _HALF_CLASSES and type(module) not in _HALF_CLASSES.values()):
            continue
        weight = module.weight
        if weight is first or weight.requires_grad or not weight.is_floating_point():
            continue
        if isinstance(module, torch.nn.Conv2d) and (module.padding_mode != "zeros" or isinstance(module.padding, str)):
            continue
        layers.append(module)
    return layers


def store_frozen_weights(unet: torch.nn.Module, storage: torch.dtype,
                         compute: torch.dtype = torch.float32) -> int:
    """Store ``unet``'s frozen Linear/Conv2d weights (:func:`storable_layers`) in ``storage``,
    computing in ``compute``.

    In place, one layer at a time (each old weight is freed as the next is converted); works before
    or after LoRA is attached, on any device, and again (a no-op for converted layers). Returns the
    bytes the weights no longer take. The layers share one :class:`UpcastScratch`."""
    layers = storable_layers(unet)
    shared = [m.upcast_scratch for m in layers if isinstance(m, (HalfStoredLinear, HalfStoredConv2d))]
    scratch = shared[0] if shared else UpcastScratch()
    scratch.largest = max([scratch.largest] + [module.weight.numel() for module in layers])
    return sum(store_layer(module, storage, compute, scratch) for module in layers)


def store_layer(module: torch.nn.Linear | torch.nn.Conv2d, storage: torch.dtype,
                compute: torch.dtype = torch.float32, scratch: UpcastScratch | None = None) -> int:
    """One frozen ``nn.Linear`` / ``nn.Conv2d`` to half storage, upcasting into ``scratch`` (its
    own if None); returns the bytes saved."""
    weight, saved = module.weight, 0
    if weight.dtype != storage:
        saved = weight.numel() * (weight.element_size() - torch.finfo(storage).bits // 8)
        module.weight = torch.nn.Parameter(weight.detach().to(storage), requires_grad=False)
    module.__class__ = _HALF_CLASSES.get(type(module), type(module))
    half = cast(HalfStoredLinear | HalfStoredConv2d, module)
    half.compute_dtype = compute
    half.upcast_scratch = scratch or getattr(half, "upcast_scratch", None) or UpcastScratch()
    return saved


def finish_half_loaded(unet: torch.nn.Module, storage: torch.dtype, compute: torch.dtype) -> None:
    """A UNet loaded entirely in ``storage`` (so its fp32 copy never exists): every tensor that
    half storage does not keep — norms, biases, embeddings, the first convolution — back to
    ``compute``, then the rest stored as half (:func:`store_frozen_weights`)."""
    unet.requires_grad_(False)
    kept = {id(module.weight) for module in storable_layers(unet)}
    for module in unet.modules():
        for name, param in list(module.named_parameters(recurse=False)):
            if id(param) not in kept and param.is_floating_point() and param.dtype != compute:
                setattr(module, name, torch.nn.Parameter(param.detach().to(compute), requires_grad=False))
        for name, buffer in list(module.named_buffers(recurse=False)):
            if buffer.is_floating_point() and buffer.dtype != compute:
                setattr(module, name, buffer.to(compute))
    store_frozen_weights(unet, storage, compute)


def store_as_asked(unet: torch.nn.Module, weight_dtype: str, compute: torch.dtype) -> int:
    """Apply a resolved ``TrainRequest.weight_dtype`` to the training UNet (before it moves to the
    device, so only the half weights travel); returns the bytes saved (0: nothing to do). The base
    weights are frozen here (as ``lora_io.add_unet_lora`` freezes them anyway)."""
    storage = storage_dtype(weight_dtype, compute)
    if storage is None:
        return 0
    return store_frozen_weights(unet.requires_grad_(False), storage, compute)


def storage_dtype(name: str, compute: torch.dtype) -> torch.dtype | None:
    """The half dtype a resolved ``weight_dtype`` asks for, or None (the weights stay as loaded)."""
    dtype = HALF_DTYPES.get(name)
    return dtype if dtype is not None and dtype != compute else None
