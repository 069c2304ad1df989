"""Optimizers by name: AdamW (fused on CUDA and the CPU), 8-bit AdamW (bitsandbytes, CUDA only), Prodigy."""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import torch

from alchemy_engine.errors import InvalidRequest
from alchemy_engine.models.device import effective_optimizer

log = logging.getLogger(__name__)

BETAS = (0.9, 0.999)
EPS = 1e-8
FUSED_ADAMW_DEVICES = ("cuda", "cpu")


def create(request, params: list[dict[str, Any]], device: torch.device) -> torch.optim.Optimizer:
    name = effective_optimizer(request.optimizer, device)
    if name != request.optimizer:
        log.warning("8-bit AdamW needs bitsandbytes and a CUDA GPU; using AdamW")
    if name == "adamw8bit":
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(params, lr=request.learning_rate, betas=BETAS, eps=EPS,
                                   weight_decay=request.weight_decay)
    if name == "prodigy":
        if importlib.util.find_spec("prodigyopt") is None:
            raise InvalidRequest("the Prodigy optimizer needs the prodigyopt package "
                                 "(pip install prodigyopt, or the app's [prodigy] extra); or choose adamw")
        from prodigyopt import Prodigy

        # Prodigy finds its own step size: learning_rate is a multiplier, 1.0 being the usual value.
        return Prodigy(params, lr=request.learning_rate, weight_decay=request.weight_decay,
                       safeguard_warmup=True, use_bias_correction=True)
    # fused: one kernel for every LoRA tensor instead of a dozen ops each; on the CPU the step of
    # demo:mid's 272 LoRA tensors takes ~4 ms instead of ~22 ms (bench/RESULTS.md)
    return torch.optim.AdamW(params, lr=request.learning_rate, betas=BETAS, eps=EPS,
                             weight_decay=request.weight_decay, fused=device.type in FUSED_ADAMW_DEVICES)
