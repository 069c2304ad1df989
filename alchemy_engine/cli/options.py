"""CLI options made from request fields (:mod:`alchemy_engine.fields`): flag, type, choices and help
come from the field; the default shown in ``--help`` is the field's own. Options default to
``None`` in argparse, so only what the user typed reaches the request and the request's defaults
apply to the rest: the CLI holds no default of its own.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from alchemy_engine.api import FieldInfo, field_infos


def option_help(info: FieldInfo) -> str:
    """The field's help with its default (unless the help already says it), escaped for argparse."""
    text = info.help or info.name.replace("_", " ")
    if "default" not in text and info.default not in (None, (), "") and not info.required:
        text += f" (default {info.default_text()})"
    return text.replace("%", "%%")


def add_field_option(parser: Any, info: FieldInfo, *flags: str, **overrides: Any) -> None:
    """One option for one field: ``--name`` (bools get ``--name/--no-name``)."""
    flags = flags or (info.flag,)
    kwargs: dict[str, Any] = dict(dest=info.name, default=None, help=option_help(info))
    if info.kind is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    else:
        kwargs["type"] = info.kind if info.kind in (int, float, str, Path) else str
        kwargs["metavar"] = info.metavar or info.name.upper()
        if info.choices:
            kwargs["choices"] = list(info.choices)
            kwargs.pop("metavar")
    kwargs.update(overrides)
    parser.add_argument(*flags, **kwargs)


def add_request_options(parser: Any, request_cls: type, skip: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Options for every CLI field of ``request_cls`` not in ``skip``; returns their names."""
    names = []
    for info in field_infos(request_cls):
        if info.cli and info.name not in skip and info.kind in (int, float, str, bool, Path):
            add_field_option(parser, info)
            names.append(info.name)
    return names


def given(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """The options among ``names`` that the user typed."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
