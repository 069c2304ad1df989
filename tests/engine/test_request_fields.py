"""One owner per default: the CLI's options are made from the request fields and add no defaults."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from alchemy_engine import api
from alchemy_engine.cli import build_parser
from alchemy_engine.cli.insert_cmd import _insert_request
from alchemy_engine.cli.train_cmd import build_request
from alchemy_engine.fields import MISSING, field_infos

REQUESTS = (api.TrainRequest, api.InsertRequest, api.LocateOptions, api.SceneRequest, api.SegmentRequest,
            api.EvaluateRequest)


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


@pytest.mark.parametrize("cls", REQUESTS, ids=lambda c: c.__name__)
def test_every_field_declares_its_help(cls):
    missing = [i.name for i in field_infos(cls) if not i.help]
    assert missing == []


@pytest.mark.parametrize("cls", REQUESTS, ids=lambda c: c.__name__)
def test_declared_ranges_and_choices_accept_the_default(cls):
    for info in field_infos(cls):
        if info.default is MISSING or info.default is None:
            continue
        if info.minimum is not None:
            assert info.default >= info.minimum, info.name
        if info.maximum is not None:
            assert info.default <= info.maximum, info.name
        if info.choices:
            assert info.default in info.choices, info.name


def test_train_cli_without_options_builds_the_default_request():
    assert build_request(_parse("train", "Rex")) == api.TrainRequest(project="Rex")


def test_train_cli_options_reach_the_request_and_show_the_field_help(capsys):
    request = build_request(_parse("train", "Rex", "--steps", "7", "--no-gradient-checkpointing",
                                   "--optimizer", "prodigy"))
    assert (request.steps, request.gradient_checkpointing, request.optimizer) == (7, "off", "prodigy")
    with pytest.raises(SystemExit):
        _parse("train", "--help")
    text = " ".join(capsys.readouterr().out.split())
    steps = api.field_info(api.TrainRequest, "steps")
    assert f"{steps.help} (default {steps.default})" in text


def test_insert_cli_without_options_builds_the_default_request(tmp_path):
    args = _parse("insert", "Rex", "--scene", "beach.png", "--out", str(tmp_path))
    expected = api.InsertRequest(project="Rex", scene=Path("beach.png"), out=tmp_path)
    assert _insert_request(args) == expected
    assert expected.locate == api.field_info(api.InsertRequest, "locate").default  # grow 8, feather 8


def test_insert_cli_custom_options_map_to_fields(tmp_path):
    args = _parse("insert", "Rex", "--scene-prompt", "a dog", "--scene-size", "1216x832", "--work-size", "512",
                  "--point", "3,4", "--point", "5,6,0", "--grow", "2", "--no-crop", "--cfg", "5", "-n", "3",
                  "--out", str(tmp_path))
    request = _insert_request(args)
    assert (request.scene_width, request.scene_height, request.work_pixels) == (1216, 832, 512 * 512)
    assert request.locate == dataclasses.replace(api.field_info(api.InsertRequest, "locate").default,
                                                 points=((3.0, 4.0, 1), (5.0, 6.0, 0)), grow=2)
    assert (request.crop_to_mask, request.guidance, request.variations) == (False, 5.0, 3)


def test_stage_is_an_enum_that_reads_as_text():
    event = api.Progress("training", step=1, total=2)
    assert event.stage is api.Stage.TRAINING and event.stage == "training" and f"{event.stage}" == "training"
    assert event.to_dict()["stage"] == "training"
    with pytest.raises(ValueError):
        api.Progress("trainning")
