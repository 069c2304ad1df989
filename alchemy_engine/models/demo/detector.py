"""A tiny random Grounding DINO of transformers' real classes, with a small hand-written WordPiece
vocabulary: it goes through exactly the same processor and post-processing code as the real one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_WORDS = (
    "a an the of on in at with and or to from by near under over behind next its his her their "
    "dog dogs cat cats person people man woman child boy girl baby face head hand hair eye "
    "mug cup bottle glass bowl plate chair table sofa couch bed car bike bicycle bus truck "
    "boat plane bird horse cow sheep bear toy ball teddy shoe bag hat shirt dress book phone "
    "laptop lamp vase plant flower tree grass sky cloud sun sea water beach sand rock mountain "
    "snow road street city house room kitchen garden park field forest wall floor window door "
    "red green blue yellow black white brown gray grey orange pink purple small big large old "
    "young sitting standing lying running photo picture object thing subject animal"
).split()
_CHARS = list(".,!?;:'\"-()[]/&+*#@$%0123456789abcdefghijklmnopqrstuvwxyz")



def _tiny_config() -> Any:
    from transformers import BertConfig, GroundingDinoConfig, SwinConfig

    backbone = SwinConfig(image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1],
                          num_heads=[1, 2, 2, 4], window_size=4, drop_path_rate=0.0,
                          out_features=["stage2", "stage3", "stage4"])
    text = BertConfig(vocab_size=len(_vocabulary()), hidden_size=32, num_hidden_layers=1,
                      num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    return GroundingDinoConfig(
        backbone_config=backbone, text_config=text, num_queries=16, d_model=32,
        encoder_layers=1, decoder_layers=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_n_points=2,
        decoder_n_points=2, max_text_len=64, num_feature_levels=4, fusion_droppath=0.0,
    )


def _vocabulary() -> list[str]:
    seen: dict[str, None] = {}
    for token in _SPECIAL + _WORDS + _CHARS + [f"##{c}" for c in _CHARS if c.isalnum()]:
        seen.setdefault(token, None)
    return list(seen)


def save_tiny_grounding_dino(folder: Path, seed: int = 0) -> None:
    """Write a tiny random Grounding DINO (model + processor, about 1 MB) into ``folder``, offline."""
    import torch
    from transformers import (
        BertTokenizer,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = GroundingDinoForObjectDetection(_tiny_config()).eval()
    vocab = {token: index for index, token in enumerate(_vocabulary())}
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=64)
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 128, "longest_edge": 192})
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    model.save_pretrained(folder, safe_serialization=True)
