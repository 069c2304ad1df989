"""Known answers for the scores, and preprocessing equal to transformers' own image processors."""

from __future__ import annotations

import numpy as np
import pytest
from eval_helpers import structured_image
from PIL import Image

from alchemy_engine.evaluation.metrics import EmbeddingCache, References, image_similarity, pairwise_mean
from alchemy_engine.evaluation.preprocess import ProcessorSpec, preprocess, resource_config

REAL_CONFIGS = ("dino-vits16", "clip-vit-large-patch14", "clip-vit-base-patch32", "dinov2-base", "dreambench-dino")


def test_an_image_against_itself_scores_one_on_every_metric(scorer):
    image = structured_image((160, 128), seed=3)
    scores = image_similarity(scorer, image, image)
    assert set(scores) == {"dino", "clip_i", "dinov2"}
    for value in scores.values():
        assert value == pytest.approx(1.0, abs=1e-5)


def test_a_shifted_copy_scores_lower_than_itself(scorer):
    image = structured_image((160, 128), seed=4)
    shifted = Image.fromarray(np.roll(np.asarray(image), 48, axis=1))
    same, moved = image_similarity(scorer, image, image), image_similarity(scorer, shifted, image)
    for metric in same:
        assert moved[metric] < same[metric] - 1e-6, metric


def test_clip_t_is_the_cosine_of_image_and_prompt_embeddings(scorer):
    image = structured_image((96, 96), seed=5)
    score = scorer.score([image], None, "a dog on the beach")[0]
    image_vec = scorer.clip.embed_images([image])[0]
    text_vec = scorer.clip.embed_texts(["a dog on the beach"])[0]
    assert set(score) == {"clip_t"}
    assert score["clip_t"] == pytest.approx(float(image_vec @ text_vec), abs=1e-6)
    assert -1.0 <= score["clip_t"] <= 1.0


@pytest.mark.parametrize("name", REAL_CONFIGS)
def test_preprocessing_equals_the_transformers_image_processor(name):
    from transformers import BitImageProcessor, CLIPImageProcessor, ViTImageProcessor

    config = resource_config(name)
    spec = ProcessorSpec.from_config(config)
    processor_class = {"CLIPImageProcessor": CLIPImageProcessor, "BitImageProcessor": BitImageProcessor,
                       "ViTImageProcessor": ViTImageProcessor}[spec.kind]
    processor = processor_class.from_dict(config)  # from the config file only: nothing downloaded
    rng = np.random.default_rng(0)
    for size in ((457, 300), (123, 97), (256, 512), (200, 200), (1024, 1024)):
        images = [Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))]
        expected = processor(images=images, return_tensors="pt")["pixel_values"]
        ours = preprocess(images, spec)
        assert ours.shape == expected.shape == (1, 3, 224, 224)
        assert (ours - expected).abs().max().item() <= 1e-5, (name, size)


def test_the_dino_score_uses_the_dreambench_protocol(scorer):
    spec = scorer.dino.spec
    assert spec.size == ("shortest_edge", 256) and spec.crop == (224, 224) and spec.resample == 3
    assert spec.mean == (0.485, 0.456, 0.406) and spec.std == (0.229, 0.224, 0.225)


def test_legacy_integer_sizes_read_as_transformers_reads_them():
    vit = ProcessorSpec.from_config(resource_config("dino-vits16"))
    clip = ProcessorSpec.from_config(resource_config("clip-vit-large-patch14"))
    assert vit.size == ("exact", (224, 224)) and vit.crop is None and vit.resample == 2
    assert clip.size == ("shortest_edge", 224) and clip.crop == (224, 224)


def test_reference_embeddings_are_cached_in_memory_and_on_disk(scorer, tmp_path):
    images = [structured_image((128, 128), seed=s) for s in range(3)]
    saved = scorer.cache
    try:
        scorer.cache = EmbeddingCache(tmp_path / "cache")
        first = scorer.references(images)
        assert scorer.cache.misses == 3 * len(scorer.encoders) and scorer.cache.hits == 0
        scorer.references(images)
        assert scorer.cache.hits == 3 * len(scorer.encoders)
        scorer.cache = EmbeddingCache(tmp_path / "cache")  # a new process: read back from disk
        again = scorer.references(images)
        assert scorer.cache.misses == 0
        for name in first.embeddings:
            assert np.allclose(first.embeddings[name].numpy(), again.embeddings[name].numpy())
    finally:
        scorer.cache = saved


def test_pairwise_mean_and_score_against_several_references(scorer):
    import torch

    vectors = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), dim=-1)
    assert pairwise_mean(vectors) == pytest.approx((0 + 2 * 0.70710678 * 2) / 6, abs=1e-6)
    assert pairwise_mean(vectors[:1]) is None
    a, b = structured_image((96, 96), seed=7), structured_image((96, 96), seed=8)
    refs = References(scorer.embed([a, b]), 2)
    mixed = scorer.score([a], refs)[0]
    to_a, to_b = image_similarity(scorer, a, a), image_similarity(scorer, a, b)
    for metric in mixed:
        assert mixed[metric] == pytest.approx((to_a[metric] + to_b[metric]) / 2, abs=1e-5)
