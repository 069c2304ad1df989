"""Where evaluation models are found, and the DreamBench prompt sets."""

from __future__ import annotations

import shutil

import pytest

from alchemy_engine.evaluation import encoders as eval_encoders
from alchemy_engine.evaluation import prompts
from alchemy_engine.evaluation.demo_encoders import demo_eval_dir


def test_models_in_the_eval_folder_are_found_and_missing_ones_named(alchemy_home):
    with pytest.raises(eval_encoders.EvalModelsMissing) as missing:
        eval_encoders.resolve_eval_models([eval_encoders.DINO, eval_encoders.CLIP_B])
    message = str(missing.value)
    assert "dino-vits16, clip-vit-base-patch32 not found" in message
    assert str(alchemy_home / "models" / "eval" / "dino-vits16") in message and "openai/clip-vit-base-patch32" in message
    target = eval_encoders.eval_models_dir() / eval_encoders.DINO
    shutil.copytree(demo_eval_dir(eval_encoders.DINO), target)
    assert eval_encoders.find_eval_model(eval_encoders.DINO) == target
    rows = {r["name"]: r for r in eval_encoders.eval_inventory()["models"]}
    assert rows["dino-vits16"]["path"] == str(target) and rows["dinov2-base"]["path"] is None
    (target / "model.safetensors").unlink()  # a folder without weights is not a model
    assert eval_encoders.find_eval_model(eval_encoders.DINO) is None


def test_models_in_the_hugging_face_cache_are_found_offline(alchemy_home, tmp_path, monkeypatch):
    snapshot = tmp_path / "hf_cache" / "models--facebook--dino-vits16" / "snapshots" / "abc123"
    shutil.copytree(demo_eval_dir(eval_encoders.DINO), snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    assert eval_encoders.find_eval_model(eval_encoders.DINO) == snapshot


def test_dreambench_prompt_sets():
    assert len(prompts.OBJECT_PROMPTS) == len(prompts.LIVE_PROMPTS) == 25
    assert len(set(prompts.OBJECT_PROMPTS) & set(prompts.LIVE_PROMPTS)) == 15
    assert prompts.prompt_set("auto", "sks", "dog")[10] == "a sks dog wearing a red hat"
    assert prompts.prompt_set("auto", "sks", "mug")[10] == "a sks mug with a wheat field in the background"
    assert prompts.without_token("a sks dog in the jungle", "sks") == "a dog in the jungle"
    assert prompts.without_token("a red sks dog", "sks") == "a red dog"
    assert prompts.class_prompt("owl") == "an owl"
    assert len(set(prompts.preview_prompts(8, "sks", "dog"))) == 8


def test_checkpoint_scores_are_skipped_with_a_warning_without_models(tmp_path):
    from eval_helpers import make_project

    from alchemy_engine.evaluation.checkpoint_scores import CheckpointScores, best_step, eval_prompt_names

    project = make_project(tmp_path / "photos", count=1)
    warnings: list[str] = []
    names = eval_prompt_names(2, "sks", "dog")
    assert names == {"eval-0": "a sks dog in the jungle", "eval-1": "a sks dog on the beach"}
    scores = CheckpointScores.create(tmp_path / "run", project, names, source=None, device="cpu",
                                     resumed_from=None, warnings=warnings)
    assert scores is None and len(warnings) == 1 and "models/eval/dino-vits16" in warnings[0]
    rows = [{"step": 2, "dino": 0.5, "clip_t": 0.30}, {"step": 4, "dino": 0.7, "clip_t": 0.20},
            {"step": 6, "dino": 0.6, "clip_t": 0.31}]
    assert best_step(rows) == 6 and best_step([]) is None
