"""Fused self-attention q/k/v with LoRA: the same output as the unfused UNet, no extra memory."""

from __future__ import annotations

import torch

from alchemy_engine.models import fast_attention


def _unet_and_inputs():
    from alchemy_engine.models.demo import build_sdxl_components

    unet = build_sdxl_components("tiny")["unet"].eval()
    cfg = unet.config
    text_dim = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
    g = torch.Generator().manual_seed(0)
    inputs = (torch.randn(2, 4, 16, 16, generator=g), torch.tensor([10, 500]),
              torch.randn(2, 77, cfg.cross_attention_dim, generator=g))
    added = {"text_embeds": torch.randn(2, text_dim, generator=g), "time_ids": torch.randn(2, 6, generator=g)}
    return unet, inputs, added


def _add_lora(unet, name: str, seed: int) -> None:
    import warnings

    from peft import LoraConfig

    with warnings.catch_warnings():  # peft warns when a second adapter joins the first: intended here
        warnings.filterwarnings("ignore", message="Already found a `peft_config`")
        unet.add_adapter(LoraConfig(r=4, lora_alpha=8, target_modules=["to_q", "to_k", "to_v", "to_out.0"]),
                         adapter_name=name)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in unet.modules():
            if name in (getattr(mod, "lora_B", None) or {}):
                mod.lora_B[name].weight.copy_(torch.randn(mod.lora_B[name].weight.shape, generator=g) * 0.1)


@torch.no_grad()
def test_fused_qkv_with_two_loras_matches_the_unfused_unet():
    unet, inputs, added = _unet_and_inputs()
    _add_lora(unet, "subject", 1)
    _add_lora(unet, "style", 2)
    unet.set_adapters(["subject", "style"], weights=[1.0, 0.6])
    expected = unet(*inputs, added_cond_kwargs=added).sample
    params_before = sum(p.numel() for p in unet.parameters())
    storages_before = {p.untyped_storage().data_ptr() for p in unet.parameters()}
    fused = fast_attention.fuse_self_attention(unet)
    assert fused == sum(1 for name, _ in unet.attn_processors.items() if "attn1" in name)
    assert all(fast_attention._usable(m) for m in unet.modules() if hasattr(m, "_alchemy_qkv"))  # fused path
    got = unet(*inputs, added_cond_kwargs=added).sample
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert sum(p.numel() for p in unet.parameters()) == params_before
    assert len({p.untyped_storage().data_ptr() for p in unet.parameters()}) < len(storages_before)  # views
    unet.disable_lora()  # scene generation: LoRA off
    plain = unet(*inputs, added_cond_kwargs=added).sample
    unet.set_attn_processor(fast_attention.AttnProcessor2_0())
    torch.testing.assert_close(plain, unet(*inputs, added_cond_kwargs=added).sample, rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_a_lora_loaded_after_fusing_is_applied():
    unet, inputs, added = _unet_and_inputs()
    fast_attention.fuse_self_attention(unet)
    _add_lora(unet, "late", 3)
    assert all(fast_attention._usable(m) for m in unet.modules() if hasattr(m, "_alchemy_qkv"))
    got = unet(*inputs, added_cond_kwargs=added).sample
    unet.set_attn_processor(fast_attention.AttnProcessor2_0())
    torch.testing.assert_close(got, unet(*inputs, added_cond_kwargs=added).sample, rtol=1e-4, atol=1e-5)
