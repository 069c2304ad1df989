"""One instrument for both trainers in ``train_bench.py --vs-reference``: step times and the settings
each trainer really used, read from the objects it built rather than from its command line.

``install()`` (before the trainer builds anything) adds, process-wide:

* an optimizer step post-hook (``torch.optim.optimizer.register_optimizer_step_post_hook``): a
  timestamp after every ``optimizer.step()``, so the steady-state step of either trainer is the
  interval between consecutive updates, everything else in its loop included; on the first step,
  the optimizer's class and hyper-parameters and the number and dtype of the trained weights;
* a one-shot wrapper of ``UNet2DConditionModel.forward``: on the first real (not meta-device) call,
  the latent and text shapes, gradient checkpointing, the LoRA config and the UNet's dtype; then
  the original ``forward`` is put back, so later steps run unwrapped;
* a wrapper of the tokenizers' ``__call__`` that notes each distinct prompt text.

``Probe.result()`` is JSON-ready: ``step_times`` (seconds between consecutive updates), ``steps`` and
``settings``.
"""

from __future__ import annotations

import functools
import time
from typing import Any


class Probe:
    def __init__(self) -> None:
        self.stamps: list[float] = []
        self.settings: dict[str, Any] = {}
        self.prompts: list[str] = []

    def result(self) -> dict[str, Any]:
        settings = dict(self.settings, prompts=self.prompts)
        return {"step_times": [b - a for a, b in zip(self.stamps, self.stamps[1:])], "steps": len(self.stamps),
                "settings": settings}

    def on_step(self, optimizer, args, kwargs) -> None:
        self.stamps.append(time.perf_counter())
        if len(self.stamps) == 1:
            params = [p for group in optimizer.param_groups for p in group["params"]]
            group = optimizer.param_groups[0]
            self.settings["optimizer"] = {
                "class": type(optimizer).__name__,
                **{k: _plain(group[k]) for k in ("lr", "betas", "eps", "weight_decay") if k in group},
                "trained_params": sum(p.numel() for p in params),
                "trained_dtype": str(params[0].dtype).removeprefix("torch.") if params else None}

    def on_unet(self, unet, sample, encoder_hidden_states) -> None:
        peft = getattr(unet, "peft_config", {}) or {}
        config = next(iter(peft.values()), None)
        self.settings["unet"] = {
            "latents": list(sample.shape), "text_embeds": list(encoder_hidden_states.shape),
            "dtype": str(unet.dtype).removeprefix("torch."),
            "gradient_checkpointing": bool(unet.is_gradient_checkpointing),
            "lora": None if config is None else {
                "r": config.r, "alpha": config.lora_alpha, "init": str(config.init_lora_weights),
                "targets": sorted(config.target_modules)}}

    def on_tokenize(self, text) -> None:
        for prompt in [text] if isinstance(text, str) else list(text or []):
            if isinstance(prompt, str) and prompt not in self.prompts:
                self.prompts.append(prompt)


def _plain(value):
    return list(value) if isinstance(value, tuple) else float(value) if hasattr(value, "item") else value


def install() -> Probe:
    from diffusers import UNet2DConditionModel
    from torch.optim.optimizer import register_optimizer_step_post_hook
    from transformers import PreTrainedTokenizerBase

    probe = Probe()
    register_optimizer_step_post_hook(probe.on_step)

    original_forward = UNet2DConditionModel.forward

    @functools.wraps(original_forward)
    def first_forward(self, sample, timestep, encoder_hidden_states, *args, **kwargs):
        if sample.device.type != "meta":  # ours sizes its memory estimate on a meta-device UNet first
            UNet2DConditionModel.forward = original_forward  # one look is enough: later steps run unwrapped
            probe.on_unet(self, sample, encoder_hidden_states)
        return original_forward(self, sample, timestep, encoder_hidden_states, *args, **kwargs)

    UNet2DConditionModel.forward = first_forward

    original_call = PreTrainedTokenizerBase.__call__

    @functools.wraps(original_call)
    def noting_call(self, text=None, *args, **kwargs):
        probe.on_tokenize(text)
        return original_call(self, text, *args, **kwargs)

    PreTrainedTokenizerBase.__call__ = noting_call
    return probe
