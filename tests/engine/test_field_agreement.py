"""Every request field's range and choices have one owner, its declaration: the CLI (options from
``cli.options`` + the request's ``validate()``), preset validation (``check_preset_values``) and
``validate()`` itself accept exactly the same values. The GUI forms' widgets are checked against the
same declarations in ``tests/gui/test_form_field_ranges.py``.

For each field: the boundaries are accepted, one step outside is refused (an exclusive minimum is
itself refused), a value off the declared multiple is refused, every choice is accepted and a
non-choice refused. A field with neither range nor choices must be listed in ``FREE`` with why, so a
new field cannot slip through unclassified.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from typing import Any

import pytest

from alchemy_engine import api
from alchemy_engine.cli.options import add_request_options, given
from alchemy_engine.errors import InvalidRequest
from alchemy_engine.fields import FieldInfo, field_infos

TEXT = "text, checked where it is used (a name, a prompt, a model or a file)"
FREE: dict[type, dict[str, str]] = {
    api.TrainRequest: dict.fromkeys(("project", "model", "class_prompt", "device", "sample_prompt", "resume_run",
                                     "eval_models"), TEXT) | {"prompt_template": "cross-field: must hold {token}"},
    api.InsertRequest: dict.fromkeys(("project", "out", "run", "lora", "model", "inpaint_model", "device", "scene",
                                      "scene_prompt", "prompt", "negative_prompt", "style_lora", "eval_models",
                                      "ip_adapter", "ip_photos", "ip_encoder"), TEXT)
    | {"locate": "a nested request: its own fields are walked", "ip_range": "a START:END format (parse_range)"},
    api.LocateOptions: dict.fromkeys(("mask", "text", "sam", "detector"), TEXT)
    | dict.fromkeys(("points", "box"), "pixel positions, checked against the image")
    | {"instance": "best, all or an index (a format)"},
    api.SegmentRequest: dict.fromkeys(("image", "out", "device"), TEXT)
    | {"locate": "a nested request: its own fields are walked"},
    api.SceneRequest: dict.fromkeys(("project", "prompt", "negative_prompt", "model", "device"), TEXT),
    api.AutoMaskRequest: dict.fromkeys(("project", "photos", "sam", "detector", "text", "device"), TEXT),
    api.EvaluateRequest: dict.fromkeys(("project", "out", "run", "lora", "model", "device", "negative_prompt",
                                        "insert_into", "sam", "detector", "eval_models", "ip_adapter"), TEXT)
    | {"prompts": "a set name or a prompt file"},
    api.ScanRequest: {"folders": TEXT},
    api.DownloadRequest: {"models": "catalogue ids", "token": TEXT},
}
# What validate() needs besides the field under test.
CONTEXT: dict[type, dict[str, Any]] = {
    api.TrainRequest: {"project": "p"},
    api.InsertRequest: {"project": "p", "scene_prompt": "a dog on a beach"},
    api.SceneRequest: {"project": "p", "prompt": "a dog on a beach"},
    api.AutoMaskRequest: {"project": "p"},
    api.EvaluateRequest: {"project": "p", "out": "no-such-folder-yet"},
    api.DownloadRequest: {"models": ("x",), "accept_licences": True},
}
# Cross-field rules (validate() keeps them): the other field's value under which the whole declared
# range is allowed. Each rule is checked on its own in test_cross_field_rules_agree.
CROSS: dict[tuple[type, str], dict[str, Any]] = {
    (api.TrainRequest, "learning_rate"): {"optimizer": "prodigy"},  # below 1 unless Prodigy
    (api.TrainRequest, "text_encoder_lr"): {"text_encoder_lora": True},
    (api.InsertRequest, "strength"): {"steps": 100},  # steps × strength ≥ 1
    (api.InsertRequest, "steps"): {"strength": 1.0},
    (api.EvaluateRequest, "ip_ab"): {"ip_adapter": "demo", "insert_into": "."},  # A/B needs an adapter
}
# A rule, not a range: downloading means accepting the licences.
REFUSED_BY_RULE = {(api.DownloadRequest, "accept_licences", False)}
PRESET_KIND = {api.TrainRequest: "train", api.InsertRequest: "insert"}
FLOAT_STEP = 1e-6  # "one step outside" of a float range
INSIDE_EXCLUSIVE = 0.01  # the smallest step a form offers above an exclusive minimum (two decimals)


def _cases() -> list[tuple[type, FieldInfo, Any, bool]]:
    """(request class, field, value, accepted) for every ranged, choice or on/off field."""
    cases = []
    for cls in api.REQUESTS:
        for info in field_infos(cls):
            values: list[tuple[Any, bool]] = []
            if info.kind is bool:
                values = [(True, True), (False, True), ("yes", False)]
            elif info.choices:
                values = [(c, True) for c in info.choices] + [("no-such-choice", False)]
            elif info.kind in (int, float) and (info.minimum is not None or info.maximum is not None):
                step = 1 if info.kind is int else FLOAT_STEP
                low, high = info.minimum, info.maximum
                if low is not None and info.exclusive_minimum:
                    values += [(low, False), (info.kind(low + (1 if info.kind is int else INSIDE_EXCLUSIVE)), True)]
                elif low is not None:
                    values += [(info.kind(low), True), (info.kind(low - step), False)]
                if high is not None:
                    values += [(info.kind(high), True), (info.kind(high + step), False)]
                if info.multiple_of:
                    values.append((int(low or 0) + info.multiple_of + 1, False))
                if info.kind is int:
                    values.append((float(low if low is not None else high) + 0.5, False))  # not a whole number
            for value, ok in values:
                cases.append((cls, info, value, ok and (cls, info.name, value) not in REFUSED_BY_RULE))
    return cases


CASES = _cases()


def _request(cls: type, name: str, values: dict[str, Any]) -> Any:
    """The request with ``values`` over its CONTEXT and the CROSS values the field needs."""
    return cls(**{**CONTEXT.get(cls, {}), **CROSS.get((cls, name), {}), **values})


def _by_validate(cls: type, info: FieldInfo, value: Any) -> bool:
    try:
        _request(cls, info.name, {info.name: value}).validate()
    except InvalidRequest:
        return False
    return True


def _by_cli(cls: type, info: FieldInfo, value: Any) -> bool | None:
    """None: the CLI does not offer the field (or cannot type that value: a bool's "yes")."""
    if not info.cli or (info.kind is bool and not isinstance(value, bool)):
        return None
    parser = argparse.ArgumentParser(prog="t")
    names = add_request_options(parser, cls)
    argv = [info.flag if value else "--no-" + info.flag[2:]] if info.kind is bool else [f"{info.flag}={value!r}"
                                                                                        if info.kind is float
                                                                                        else f"{info.flag}={value}"]
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            args = parser.parse_args(argv)
    except SystemExit:  # argparse refused the type or the choice
        return False
    typed = given(args, names)
    assert typed[info.name] == value, "the CLI changed the value on its way to the request"
    try:
        _request(cls, info.name, typed).validate()
    except InvalidRequest:
        return False
    return True


def _by_preset(cls: type, info: FieldInfo, value: Any) -> bool | None:
    """None: the request has no presets, or presets never set the field."""
    kind = PRESET_KIND.get(cls)
    if kind is None or info.name in api.NOT_IN_PRESETS[kind]:
        return None
    try:
        api.check_preset_values(kind, {**CROSS.get((cls, info.name), {}), info.name: value})
    except InvalidRequest:
        return False
    return True


@pytest.mark.parametrize("cls, info, value, ok", CASES,
                         ids=[f"{c.__name__}.{i.name}={v!r}" for c, i, v, _ in CASES])
def test_cli_presets_and_validate_accept_exactly_the_declared_range(cls, info, value, ok):
    verdicts = {"validate": _by_validate(cls, info, value), "cli": _by_cli(cls, info, value),
                "preset": _by_preset(cls, info, value)}
    assert {k: v for k, v in verdicts.items() if v is not None} == dict.fromkeys(
        [k for k, v in verdicts.items() if v is not None], ok)


@pytest.mark.parametrize("cls", api.REQUESTS, ids=lambda c: c.__name__)
def test_every_field_is_ranged_or_listed_as_free(cls):
    free = {i.name for i in field_infos(cls) if i.kind is not bool and not i.choices
            and i.minimum is None and i.maximum is None and not i.multiple_of}
    assert free == set(FREE[cls]), "declare the new field's range or choices, or list it in FREE with why"


def test_every_request_class_is_walked():
    subclasses, stack = set(), [api.JobRequest]
    while stack:
        for sub in stack.pop().__subclasses__():
            subclasses.add(sub)
            stack.append(sub)
    engine = {c for c in subclasses if c.__module__.startswith("alchemy_engine.")}
    assert engine == set(api.REQUESTS)
    assert set(FREE) == set(api.REQUESTS)


def test_a_nested_request_is_checked_against_its_own_declarations():
    with pytest.raises(InvalidRequest, match="grow must be between -1024 and 1024"):
        api.InsertRequest(project="p", scene_prompt="a dog", locate=api.LocateOptions(grow=2000)).validate()


@pytest.mark.parametrize("cls, name, value, context, message", [
    (api.TrainRequest, "learning_rate", 1.0, {}, "below 1 for adamw"),
    (api.TrainRequest, "text_encoder_lr", 1e-5, {}, "turn on text_encoder_lora"),
    (api.TrainRequest, "lr_warmup_steps", 11, {"steps": 10}, "at most steps"),
    (api.InsertRequest, "strength", 0.01, {"steps": 30}, "leave no denoising step"),
])
def test_cross_field_rules_agree(cls, name, value, context, message):
    """The rules CROSS lifts: refused the same way by validate(), the CLI and presets."""
    with pytest.raises(InvalidRequest, match=message):
        cls(**CONTEXT[cls], **context, **{name: value}).validate()
    parser = argparse.ArgumentParser(prog="t")
    names = add_request_options(parser, cls)
    argv = [f"--{k.replace('_', '-')}={v}" for k, v in {**context, name: value}.items()]
    with pytest.raises(InvalidRequest, match=message):
        cls(**CONTEXT[cls], **given(parser.parse_args(argv), names)).validate()
    with pytest.raises(InvalidRequest, match=message):
        api.check_preset_values(PRESET_KIND[cls], {**context, name: value})


def test_messages_say_what_to_change():
    with pytest.raises(InvalidRequest, match=r"resolution must be a multiple of 32 between 64 and 2048 \(got 1000\)"):
        api.TrainRequest(project="p", resolution=1000).validate()
    with pytest.raises(InvalidRequest, match=r"prior_weight must be more than 0 and at most 100 \(got 0.0\)"):
        api.TrainRequest(project="p", prior_weight=0.0).validate()
