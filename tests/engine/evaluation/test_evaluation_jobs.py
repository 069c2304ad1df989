"""Scores where the user meets them: train --eval-every, insert --rank, evaluate; and no models."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from eval_helpers import box_mask, structured_image, write_png
from PIL import Image

from alchemy_engine.cli import main
from alchemy_engine.insertion.metadata import RESULT_KEY, read_png_text


def _last_json(capsys) -> dict:
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    return json.loads(lines[-1])


def test_train_eval_every_writes_one_row_per_evaluated_step(trained):
    _, _, result, events = trained
    assert result.scores_csv == result.run_dir / "scores.csv"
    with open(result.scores_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [2, 4]
    for row in rows:
        for metric in ("dino", "clip_i", "clip_t"):
            assert -1.0 <= float(row[metric]) <= 1.0
        assert row["dino_model"] == "dino-vits16" and row["clip_model"] == "clip-vit-large-patch14"
    assert result.best_step in (2, 4)
    assert (result.run_dir / "eval" / "step-000004.png").is_file()
    scored = [e for e in events if e.stage == "evaluate" and e.preview is not None]
    assert [e.step for e in scored] == [2, 4] and "DINO" in scored[-1].message
    assert result.to_dict()["scores_csv"] == str(result.scores_csv)


@pytest.mark.parametrize("batch_size", ["1", "2"])  # ranking is the same with variations in batches
def test_insert_rank_orders_three_outputs_with_scores_in_the_png(trained_home, tmp_path, capsys, batch_size):
    scene = write_png(tmp_path / "scene.png", np.asarray(structured_image((96, 64), seed=11)))
    mask = write_png(tmp_path / "m.png", box_mask((96, 64), (20, 10, 60, 50)))
    code = main(["insert", "Rex", "--scene", str(scene), "--mask", str(mask), "--model", "demo", "--steps", "2",
                 "--seed", "5", "-n", "3", "--work-size", "128", "--out", str(tmp_path / "out"), "--rank",
                 "--eval-models", "demo", "--batch-size", batch_size, "--json"])
    assert code == 0
    result = _last_json(capsys)
    assert len(result["outputs"]) == len(result["scores"]) == 3 and sorted(result["seeds"]) == [5, 6, 7]
    ranked = [s["dino_subject"] for s in result["scores"]]
    assert ranked == sorted(ranked, reverse=True)
    for path, seed, scores in zip(result["outputs"], result["seeds"], result["scores"]):
        stored = json.loads(read_png_text(path)[RESULT_KEY])["scores"]
        assert stored == scores and f"-{seed}" in path
        assert {"dino", "clip_i", "clip_t", "dino_subject", "subject_box"} <= set(scores)
        assert scores["models"] == {"dino": "dino-vits16", "clip": "clip-vit-large-patch14"}


def test_missing_eval_models_skip_ranking_with_one_clear_note(trained_home, tmp_path, capsys):
    scene = write_png(tmp_path / "scene.png", np.asarray(structured_image((64, 64), seed=12)))
    mask = write_png(tmp_path / "m.png", box_mask((64, 64), (10, 10, 40, 40)))
    code = main(["insert", "Rex", "--scene", str(scene), "--mask", str(mask), "--model", "demo", "--steps", "2",
                 "-n", "2", "--work-size", "128", "--out", str(tmp_path / "out"), "--rank", "--json"])
    assert code == 0
    result = _last_json(capsys)
    assert len(result["outputs"]) == 2 and result["scores"] == []
    skipped = [n for n in result["notes"] if n.startswith("ranking skipped")]
    assert len(skipped) == 1 and "models/eval/dino-vits16" in skipped[0] and "facebook/dino-vits16" in skipped[0]
    assert "scores" not in json.loads(read_png_text(result["outputs"][0])[RESULT_KEY])


def test_evaluate_on_demo_models_writes_summary_scores_and_contact_sheet(trained_home, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# two prompts\na {token} {class_noun} in the snow\n\na red {token} {class_noun}\n")
    out = tmp_path / "eval"
    code = main(["evaluate", "Rex", "--model", "demo", "--eval-models", "demo", "--prompts", str(prompts),
                 "--per-prompt", "2", "--class-images", "2", "--resolution", "64", "--steps", "2",
                 "--out", str(out), "--json"])
    assert code == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert "DreamBooth (paper)" in captured.err and "PRES (lower is better)" in captured.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["prompt_list"] == ["a sks dog in the snow", "a red sks dog"]
    assert {"dino", "clip_i", "clip_t"} <= set(summary["mean"]) and len(summary["per_prompt"]) == 2
    for key in ("pres", "pres_base", "div", "div_base"):
        assert isinstance(summary[key], float), key
    assert summary["models"] == {"dino": "dino-vits16", "clip": "clip-vit-large-patch14"}
    assert "Image-Alchemy (paper)" in summary["paper_table_1"]
    with open(out / "scores.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    counts = {s: sum(r["set"] == s for r in rows) for s in ("subject", "class", "base", "class_base")}
    assert counts == {"subject": 4, "class": 2, "base": 4, "class_base": 2}
    assert all((out / "images" / r["file"]).is_file() for r in rows)
    assert Image.open(out / "contact_sheet.png").size[0] >= 2 * 64
    assert result["scores"] == summary["mean"] and result["pres"] == summary["pres"]


def test_evaluate_without_eval_models_says_where_to_put_them(trained_home, tmp_path, capsys):
    code = main(["evaluate", "Rex", "--model", "demo", "--out", str(tmp_path / "eval")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: evaluation model(s) dino-vits16, clip-vit-large-patch14 not found")
    assert "models/eval/dino-vits16" in err[0]


def test_insert_into_scenes_scores_the_subject_crop(trained_home, tmp_path):
    from alchemy_engine.api import EvaluateRequest
    from alchemy_engine.api import evaluate as run

    scenes = tmp_path / "scenes"
    scenes.mkdir()
    write_png(scenes / "a.png", np.asarray(structured_image((96, 64), seed=13)))
    write_png(scenes / "a.mask.png", box_mask((96, 64), (30, 10, 70, 50)))
    result = run(EvaluateRequest(project="Rex", out=tmp_path / "eval", model="demo", eval_models="demo",
                                 insert_into=scenes, per_prompt=2, steps=2))
    assert result.summary["mode"] == "insert" and result.summary["scenes"] == ["a.png"]
    assert {"dino_subject", "dino", "clip_i", "clip_t"} <= set(result.summary["mean"])
    assert result.contact_sheet.is_file()


@pytest.mark.parametrize("bad,message", [({"per_prompt": 0}, "per_prompt"), ({"prompts": "nope"}, "prompts must"),
                                         ({"clip_model": "x"}, "clip_model")])
def test_evaluate_request_is_checked_before_any_model_loads(tmp_path, bad, message):
    from alchemy_engine.errors import InvalidRequest
    from alchemy_engine.evaluation import EvaluateRequest

    with pytest.raises(InvalidRequest, match=message):
        EvaluateRequest(project="Rex", out=tmp_path, **bad).validate()


def test_reference_ab_writes_both_arms_with_paired_deltas(trained_home, tmp_path, capsys):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    write_png(scenes / "a.png", np.asarray(structured_image((96, 64), seed=13)))
    write_png(scenes / "a.mask.png", box_mask((96, 64), (30, 10, 70, 50)))
    code = main(["evaluate", "Rex", "--out", str(tmp_path / "ab"), "--model", "demo", "--eval-models", "demo",
                 "--insert-into", str(scenes), "--ip-adapter", "demo", "--ip-ab", "--ip-scale", "1.0",
                 "--per-prompt", "2", "--steps", "2", "--json"])
    assert code == 0
    summary = json.loads((tmp_path / "ab" / "summary.json").read_text())
    ab = summary["ip_ab"]
    assert ab["pairs"] == 2 and len(ab["guidance_photos"]) == 1 and len(ab["scored_against"]) == 2  # half of 3
    assert not set(ab["guidance_photos"]) & set(ab["scored_against"])  # never scored against what guided
    for metric in ("dino_subject", "clip_i", "clip_t", "copy"):
        delta = ab["deltas"][metric]
        assert delta["pairs"] == 2 and delta["ci95"][0] <= delta["mean"] <= delta["ci95"][1]
    with open(tmp_path / "ab" / "scores.csv") as handle:
        arms = [row["set"] for row in csv.DictReader(handle)]
    assert arms == ["ip_off", "ip_off", "ip_on", "ip_on"]
    assert Image.open(tmp_path / "ab" / "contact_sheet.png").width >= 4 * 64  # both arms side by side
    assert main(["evaluate", "Rex", "--out", str(tmp_path / "x"), "--model", "demo", "--ip-ab"]) == 2


def test_bootstrap_interval_brackets_the_mean():
    from alchemy_engine.studies.reference_ab import bootstrap_interval

    result = bootstrap_interval([0.1, 0.2, 0.3, 0.4, -0.1])
    assert result["mean"] == 0.18 and result["ci95"][0] < 0.18 < result["ci95"][1]
    assert bootstrap_interval([0.5, 0.5])["ci95"] == [0.5, 0.5]
