"""Presets are checked against the request they fill: every built-in preset builds a valid
TrainRequest / InsertRequest over the defaults; a user's file with a typo, a wrong type or a value
outside the field's declared range is refused with one message naming the key, and never offered."""

from __future__ import annotations

import json

import pytest

from alchemy_engine import api
from alchemy_engine.errors import InvalidRequest

REQUESTS = {"train": api.TrainRequest, "insert": api.InsertRequest}
CONTEXT = {"train": {"project": "rex"}, "insert": {"project": "rex", "scene_prompt": "a dog on a beach"}}


def _write_user_preset(kind: str, stem: str, values) -> None:
    folder = api.config_dir() / "presets" / kind
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps({"name": stem.title(), "values": values}))


@pytest.mark.parametrize("kind", api.PRESET_KINDS)
def test_every_builtin_preset_builds_a_valid_request(kind):
    presets = api.list_presets(kind)
    assert [p.name for p in presets] == ["Quick test", "Balanced", "Best quality"]
    assert api.refused_presets(kind) == []
    request_class = REQUESTS[kind]
    fields = {info.name: info for info in api.field_infos(request_class)}
    for preset in presets:
        assert set(preset.values) <= set(fields), preset.name  # no typo can hide in a built-in
        assert not set(preset.values) & set(api.NOT_IN_PRESETS[kind]), preset.name
        for name, value in preset.values.items():
            info = fields[name]
            assert info.minimum is None or value >= info.minimum, (preset.name, name)
            assert info.maximum is None or value <= info.maximum, (preset.name, name)
        request = request_class(**{**api.defaults(request_class), **CONTEXT[kind], **preset.applied_values()})
        request.validate()
        for name, value in preset.values.items():
            assert getattr(request, name) == value


@pytest.mark.parametrize("values, named", [
    ({"stpes": 300}, "'stpes' (did you mean 'steps'?)"),
    ({"steps": "many"}, "steps must be a whole number"),
    ({"steps": 1.5}, "steps must be a whole number"),
    ({"rank": 4096}, "rank must be between 1 and 1024"),
    ({"optimizer": "sgd"}, "optimizer must be one of adamw"),
    ({"flip": 1}, "flip must be on or off"),
    ({"resolution": 1000}, "resolution must be a multiple of 32"),  # the field declares it
])
def test_a_bad_user_preset_is_refused_with_the_bad_key_named(values, named):
    _write_user_preset("train", "mine", values)
    assert [p.name for p in api.list_presets("train")] == ["Quick test", "Balanced", "Best quality"]
    [message] = api.refused_presets("train")
    assert named in message and "mine.json" in message and "Fix or delete" in message
    with pytest.raises(InvalidRequest, match="not saved"):
        api.save_preset("train", "Mine", values)


def test_damaged_files_are_refused_and_good_ones_still_offered():
    _write_user_preset("insert", "good", {"steps": 20, "strength": 0.7})
    folder = api.config_dir() / "presets" / "insert"
    (folder / "broken.json").write_text("{not json")
    (folder / "list.json").write_text("[1, 2]")
    assert [p.name for p in api.list_presets("insert") if not p.builtin] == ["Good"]
    refused = api.refused_presets("insert")
    assert len(refused) == 2 and "broken.json" in refused[0] and "JSON" in refused[0] and "list.json" in refused[1]


def test_fields_presets_never_set_are_kept_out_of_what_is_applied():
    saved = api.save_preset("insert", "Old style", {"steps": 25, "style_lora": "/gone/style.safetensors",
                                                    "seed": 3})
    assert saved.applied_values() == {"steps": 25}  # a file of this computer, a seed: not applied
    assert api.check_preset_values("insert", {"guidance": 6}) == {"guidance": 6.0}


def test_delete_a_user_preset_but_never_a_builtin():
    api.save_preset("train", "Balanced", {"steps": 321})  # a user preset of a built-in's name wins
    assert next(p for p in api.list_presets("train") if p.name == "Balanced").values == {"steps": 321}
    api.delete_preset("train", "balanced")
    balanced = next(p for p in api.list_presets("train") if p.name == "Balanced")
    assert balanced.builtin and balanced.values["steps"] == 500
    with pytest.raises(InvalidRequest, match="built-in presets cannot be deleted"):
        api.delete_preset("train", "Balanced")
