"""Subject-fidelity and prompt-agreement scores: DINO, CLIP-I, CLIP-T (and DINOv2).

The DreamBench protocol (DreamBooth, Ruiz et al. 2023): each metric is a cosine similarity of
L2-normalised embeddings, averaged over the reference photos (DINO, CLIP-I, DINOv2) or taken
against the prompt (CLIP-T):

* DINO: the CLS token of ``facebook/dino-vits16`` after resize 256 (bicubic), centre crop 224 and
  ImageNet normalisation;
* CLIP-I / CLIP-T: CLIP's projected image and text embeddings, each model's own preprocessing;
* DINOv2: the CLS token of ``facebook/dinov2-base``, its own preprocessing.

Use it like segment-anything's predictor: load a :class:`FidelityScorer` once, embed the
references once (:meth:`FidelityScorer.references`; cached in memory and on disk, keyed by the
pixels and the model), then each :meth:`FidelityScorer.score` costs one forward pass per image and
model. Everything runs batched under ``torch.no_grad`` in fp16/bf16 on a GPU, fp32 on the CPU.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from alchemy_engine.evaluation import encoders as eval_encoders
from alchemy_engine.evaluation.preprocess import ProcessorSpec, preprocess, resource_config

log = logging.getLogger(__name__)

BATCH = 16
DINO_PROTOCOL = "dreambench-dino"  # resources/eval/dreambench-dino.preprocessor_config.json


@dataclass
class Encoder:
    """One loaded image encoder (and, for CLIP, its text tower) with its preprocessing."""

    name: str
    family: str
    model: Any
    spec: ProcessorSpec
    device: Any
    dtype: Any
    fingerprint: str
    tokenizer: Any = None

    def embed_images(self, images: Sequence[Image.Image]):
        """L2-normalised float32 embeddings ``[N, D]`` on the CPU."""
        import torch

        out = []
        with torch.no_grad():
            for start in range(0, len(images), BATCH):
                pixels = preprocess(images[start:start + BATCH], self.spec).to(self.device, self.dtype)
                if self.family == "clip":
                    pooled = self.model.vision_model(pixel_values=pixels).pooler_output
                    vectors = self.model.visual_projection(pooled)
                else:  # DINO and DINOv2: the CLS token of the final (layer-normed) hidden states
                    vectors = self.model(pixel_values=pixels).last_hidden_state[:, 0]
                out.append(torch.nn.functional.normalize(vectors.float(), dim=-1).cpu())
        return torch.cat(out)

    def embed_texts(self, texts: Sequence[str]):
        import torch

        if self.family != "clip":
            raise ValueError(f"{self.name} has no text encoder")
        tokens = self.tokenizer(list(texts), padding="max_length", truncation=True,
                                max_length=self.tokenizer.model_max_length, return_tensors="pt")
        with torch.no_grad():
            pooled = self.model.text_model(input_ids=tokens.input_ids.to(self.device),
                                           attention_mask=tokens.attention_mask.to(self.device)).pooler_output
            vectors = self.model.text_projection(pooled)
        return torch.nn.functional.normalize(vectors.float(), dim=-1).cpu()


def load_encoder(name: str, folder: Path, device: str, dtype: Any) -> Encoder:
    family = eval_encoders.EVAL_MODELS[name].family
    model = eval_encoders.load_eval_model(name, folder, device, dtype)
    # DINO follows the benchmark protocol; CLIP and DINOv2 use the model's own processor config.
    config = resource_config(DINO_PROTOCOL) if family == "vit" else eval_encoders.preprocessor_config(folder)
    tokenizer = eval_encoders.load_clip_tokenizer(folder) if family == "clip" else None
    return Encoder(name, family, model, ProcessorSpec.from_config(config), device, dtype,
                   eval_encoders.encoder_folder_fingerprint(folder), tokenizer)


def content_key(image: Image.Image, extra: str = "") -> str:
    """A key for an image's pixels (and how it was cropped), for the reference cache."""
    array = np.asarray(image.convert("RGB"))
    digest = hashlib.sha256(f"{array.shape}|{extra}|".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()[:24]


class EmbeddingCache:
    """Embeddings by (model fingerprint, content key): in memory, and in ``folder`` if given."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder) if folder else None
        self._memory: dict[tuple[str, str], Any] = {}
        self.hits = 0
        self.misses = 0

    def _file(self, fingerprint: str, key: str) -> Path | None:
        return self.folder / fingerprint / f"{key}.safetensors" if self.folder else None

    def get(self, fingerprint: str, key: str):
        if (fingerprint, key) in self._memory:
            self.hits += 1
            return self._memory[(fingerprint, key)]
        file = self._file(fingerprint, key)
        if file is not None and file.is_file():
            from safetensors.torch import load_file

            vector = load_file(str(file))["embedding"]
            self._memory[(fingerprint, key)] = vector
            self.hits += 1
            return vector
        self.misses += 1
        return None

    def put(self, fingerprint: str, key: str, vector) -> None:
        self._memory[(fingerprint, key)] = vector
        file = self._file(fingerprint, key)
        if file is not None:
            from safetensors.torch import save_file

            from alchemy_engine.atomic import atomic_path

            with atomic_path(file) as tmp:
                save_file({"embedding": vector.contiguous()}, str(tmp))


@dataclass
class References:
    """Embeddings of the reference photos, per encoder: ``{name: [R, D]}``."""

    embeddings: dict[str, Any]
    count: int
    notes: list[str] = field(default_factory=list)


def _mean_cos(vectors, refs) -> list[float]:
    return (vectors @ refs.T).mean(dim=1).tolist()


class FidelityScorer:
    """The loaded encoders and the reference cache. ``clip`` names the CLIP model that was used."""

    def __init__(self, encoders: dict[str, Encoder], cache: EmbeddingCache | None = None) -> None:
        self.encoders = encoders
        self.cache = cache or EmbeddingCache()
        self.dino = encoders[eval_encoders.DINO]
        self.clip = next(e for e in encoders.values() if e.family == "clip")
        self.dinov2 = encoders.get(eval_encoders.DINOV2)

    @classmethod
    def load(cls, source: str | None = None, clip_model: str = eval_encoders.CLIP_L, dinov2: bool = False,
             device: str | None = None, cache_dir: Path | None = None) -> FidelityScorer:
        """Find and load DINO, ``clip_model`` (and DINOv2); :class:`EvalModelsMissing` if absent."""
        from alchemy_engine.models.device import device_policy

        if clip_model not in eval_encoders.CLIP_CHOICES:
            raise eval_encoders.ModelError(f"CLIP model must be one of {', '.join(eval_encoders.CLIP_CHOICES)}; "
                                         f"got {clip_model!r}")
        names = [eval_encoders.DINO, clip_model] + ([eval_encoders.DINOV2] if dinov2 else [])
        folders = eval_encoders.resolve_eval_models(names, source)
        policy = device_policy(device)
        return cls({name: load_encoder(name, folder, policy.device, policy.dtype) for name, folder in folders.items()},
                   EmbeddingCache(cache_dir))

    @property
    def model_names(self) -> dict[str, str]:
        """Which model made which score (recorded next to every score)."""
        out = {"dino": self.dino.name, "clip": self.clip.name}
        if self.dinov2 is not None:
            out["dinov2"] = self.dinov2.name
        return out

    def embed(self, images: Sequence[Image.Image], names: Sequence[str] | None = None) -> dict[str, Any]:
        """Embeddings by model name, for every encoder or only ``names``."""
        return {name: encoder.embed_images(images) for name, encoder in self.encoders.items()
                if names is None or name in names}

    def references(self, images: Sequence[Image.Image], keys: Sequence[str] | None = None) -> References:
        """Embeddings of ``images`` for every encoder, reusing the cache (``keys``: content keys)."""
        import torch

        keys = list(keys) if keys is not None else [content_key(im) for im in images]
        out = {}
        for name, encoder in self.encoders.items():
            vectors: list[Any] = [self.cache.get(encoder.fingerprint, k) for k in keys]
            todo = [i for i, v in enumerate(vectors) if v is None]
            if todo:
                fresh = encoder.embed_images([images[i] for i in todo])
                for i, vector in zip(todo, fresh):
                    vectors[i] = vector
                    self.cache.put(encoder.fingerprint, keys[i], vector)
            out[name] = torch.stack(vectors)
        return References(out, len(keys))

    def score(self, images: Sequence[Image.Image], refs: References | None,
              prompts: Sequence[str] | str | None = None, prefix: str = "",
              subject_only: bool = False) -> list[dict[str, float]]:
        """Per image: ``dino``, ``clip_i``, ``dinov2`` (vs. the mean over ``refs``) and ``clip_t``.
        ``subject_only`` skips CLIP (``dino`` and ``dinov2`` only: the subject-crop ranking score)."""
        names = [e.name for e in self.encoders.values() if e.family != "clip"] if subject_only else None
        embedded = self.embed(images, names)
        return self.score_embedded(embedded, refs, prompts, prefix)

    def score_embedded(self, embedded: dict[str, Any], refs: References | None,
                       prompts: Sequence[str] | str | None = None, prefix: str = "") -> list[dict[str, float]]:
        count = len(next(iter(embedded.values())))
        rows: list[dict[str, float]] = [{} for _ in range(count)]
        if refs is not None:
            columns = {"dino": self.dino.name, "clip_i": self.clip.name}
            if self.dinov2 is not None:
                columns["dinov2"] = self.dinov2.name
            for column, name in columns.items():
                if name not in embedded:
                    continue
                for row, value in zip(rows, _mean_cos(embedded[name], refs.embeddings[name])):
                    row[prefix + column] = value
        if prompts is not None and not prefix:
            texts = [prompts] * count if isinstance(prompts, str) else list(prompts)
            text_vectors = self.clip.embed_texts(texts)
            for row, value in zip(rows, (embedded[self.clip.name] * text_vectors).sum(dim=1).tolist()):
                row["clip_t"] = value
        return rows


def pairwise_mean(vectors) -> float | None:
    """Mean cosine similarity over distinct pairs of normalised ``vectors`` (None for fewer than 2)."""
    n = len(vectors)
    if n < 2:
        return None
    sims = vectors @ vectors.T
    return float((sims.sum() - sims.diagonal().sum()) / (n * (n - 1)))


def image_similarity(scorer: FidelityScorer, a: Image.Image, b: Image.Image) -> dict[str, float]:
    """Every image metric between two single images (a tool for tests and known-answer checks)."""
    refs = References(scorer.embed([b]), 1)
    return scorer.score([a], refs)[0]
