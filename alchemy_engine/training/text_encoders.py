"""Text-encoder LoRA: prompts stay token ids and are encoded every step, with gradients.

Same conditioning as ``StableDiffusionXLPipeline.encode_prompt`` (no clip skip): both CLIP
encoders' penultimate hidden states, concatenated, and the second encoder's pooled projection.
"""

from __future__ import annotations

import torch


def tokenize(pipe, prompt: str) -> dict[str, torch.Tensor]:
    out = {}
    for name in ("tokenizer", "tokenizer_2"):
        tokenizer = getattr(pipe, name)
        out[name] = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length,
                              truncation=True, return_tensors="pt").input_ids[0]
    return out


def encode(text_encoder, text_encoder_2, ids: torch.Tensor, ids_2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 77) token ids of each tokenizer -> (B, 77, D1 + D2) embeddings and (B, D_pooled)."""
    first = text_encoder(ids, output_hidden_states=True)
    second = text_encoder_2(ids_2, output_hidden_states=True)
    embeds = torch.cat([first.hidden_states[-2], second.hidden_states[-2]], dim=-1)
    return embeds, second[0]
