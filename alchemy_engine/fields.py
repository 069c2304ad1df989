"""One owner for every request setting: its default, range or choices, and help text.

A request field declared with :func:`setting` carries that description in the dataclass field's
metadata. The CLI builds its options from it (``cli/options.py``) and the GUI fills its forms from
it (:func:`field_info`), presets and ``JobRequest.validate()`` check values with
:func:`value_problem` / :func:`check_fields`, and a workspace remembers it unless ``remember=False``;
so a default, a range or a help text is written once, here, beside the field::

    steps: int = setting(500, minimum=1, help="optimizer steps")

A request's own ``validate()`` keeps only the rules that tie fields together.
Fields declared without :func:`setting` still work everywhere; they just carry no help text.
"""

from __future__ import annotations

import dataclasses
import math
import random
import typing
from dataclasses import MISSING
from pathlib import Path
from typing import Any

from alchemy_engine.errors import InvalidRequest

_KEY = "alchemy"
# One range for every seed: what a signed 32-bit int holds, as the GUI's seed box and most tools do.
# A random seed is drawn from it too, so a seed read back from an image always fits the box again.
SEED_MAX = 2**31 - 1


def random_seed() -> int:
    return random.randrange(SEED_MAX + 1)


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """What a front-end needs to offer one request field to a person."""

    name: str
    kind: type  # the value's type without ``None``: int, float, str, bool, Path, tuple…
    optional: bool  # None is allowed (it means "automatic" / "not set")
    default: Any  # MISSING for required fields; a default_factory is called
    help: str = ""
    label: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False  # the minimum itself is refused: "more than 0"
    multiple_of: int | None = None  # a whole number that is a multiple of this (resolution: 32)
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    cli: bool = True  # offered as a generated CLI option
    remember: bool = True  # a workspace remembers it per project (False: this computer's or one run's)

    @property
    def required(self) -> bool:
        return self.default is MISSING

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def default_text(self) -> str:
        """The default as a person reads it in help text ("auto" for None)."""
        if self.default is MISSING:
            return ""
        if self.default is None:
            return "auto"
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)


def setting(default: Any = MISSING, *, help: str, label: str = "", minimum: float | None = None,
            maximum: float | None = None, exclusive_minimum: bool = False, multiple_of: int | None = None,
            choices: tuple[str, ...] = (), metavar: str | None = None, cli: bool = True, remember: bool = True,
            default_factory: Any = MISSING) -> Any:
    """A dataclass field with its description (see the module docstring)."""
    meta = {_KEY: dict(help=help, label=label, minimum=minimum, maximum=maximum, exclusive_minimum=exclusive_minimum,
                       multiple_of=multiple_of, choices=tuple(choices), metavar=metavar, cli=cli, remember=remember)}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


MODEL_HELP = ("SDXL diffusers folder, single .safetensors file, Hugging Face repo id in the local cache, "
              "or 'demo' (default: the first SDXL model found)")
DEVICE_HELP = "cpu, cuda, cuda:N or mps (default: the best available)"


def model_setting() -> Any:
    """The ``model`` field every job that loads SDXL has (the CLI offers it as ``--model``)."""
    return setting(None, cli=False, label="Base model", help=MODEL_HELP)


def device_setting() -> Any:
    """The ``device`` field every job that runs a model has: this computer's, never a workspace's."""
    return setting(None, label="Device", help=DEVICE_HELP, remember=False)


def eval_models_setting() -> Any:
    """The ``eval_models`` field of every job that scores fidelity (training, insertion, evaluate)."""
    return setting(None, metavar="FOLDER|demo", label="Evaluation models",
                   help="where the DINO/CLIP models are: a folder of model folders, 'demo', or empty for "
                        "<data folder>/models/eval and the Hugging Face cache")


def field_infos(cls: type) -> list[FieldInfo]:
    """Every field of the request class ``cls``, in declaration order."""
    hints = typing.get_type_hints(cls)
    return [_info(f, hints[f.name]) for f in dataclasses.fields(cls)]


def field_info(cls: type, name: str) -> FieldInfo:
    for info in field_infos(cls):
        if info.name == name:
            return info
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def defaults(cls: type) -> dict[str, Any]:
    """Field name → default of every field that has one."""
    return {i.name: i.default for i in field_infos(cls) if not i.required}


def _info(f: dataclasses.Field, hint: Any) -> FieldInfo:
    args = typing.get_args(hint)
    optional = type(None) in args
    base = [a for a in args if a is not type(None)] if optional else [hint]
    kind = typing.get_origin(base[0]) or base[0]
    if f.default is not MISSING:
        default = f.default
    elif f.default_factory is not MISSING:
        default = f.default_factory()
    else:
        default = MISSING
    meta = dict(f.metadata.get(_KEY, {}))
    label = meta.pop("label", "") or f.name.replace("_", " ").capitalize()
    return FieldInfo(name=f.name, kind=kind, optional=optional, default=default, label=label,
                     **{k: v for k, v in meta.items()})


_KIND_WORDS = {bool: "on or off (true/false)", int: "a whole number", float: "a number", str: "text",
               Path: "a file path (text)"}


def _of_kind(kind: type, value: Any) -> bool | None:
    """Whether ``value`` has the field type ``kind``; None for kinds not checked here (tuples…)."""
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind is str:
        return isinstance(value, str)
    if kind is Path:
        return isinstance(value, (str, Path))
    return None


def _number(value: float) -> str:
    """2147483647 as written, not 2.14748e+09; 1e-06 and 0.5 as :g writes them."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def range_text(info: FieldInfo) -> str:
    """The declared range in words: "a multiple of 32 between 64 and 2048", "more than 0", ""."""
    low, high = (None if v is None else _number(v) for v in (info.minimum, info.maximum))
    if low is not None and high is not None:
        text = f"more than {low} and at most {high}" if info.exclusive_minimum else f"between {low} and {high}"
    elif low is not None:
        text = f"more than {low}" if info.exclusive_minimum else f"at least {low}"
    elif high is not None:
        text = f"at most {high}"
    else:
        text = ""
    if info.multiple_of:
        text = f"a multiple of {info.multiple_of}" + (f" {text}" if text else "")
    return text


def value_problem(info: FieldInfo, value: Any) -> str:
    """Why ``value`` cannot be the field's value (its type, choices, range, multiple), or ''."""
    if value is None:
        return "" if info.optional else "must not be empty"
    if info.choices:
        if isinstance(value, str) and value in info.choices:
            return ""
        close = [c for c in info.choices if c.casefold() == str(value).strip().casefold()]
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"must be one of {', '.join(info.choices)} (got {value!r}){hint}"
    ok = _of_kind(info.kind, value)
    if ok is None:
        return "cannot be set by a preset"
    if not ok:
        return f"must be {_KIND_WORDS[info.kind]} (got {value!r})"
    low, high, step = info.minimum, info.maximum, info.multiple_of
    if ((low is not None and (value <= low if info.exclusive_minimum else value < low))
            or (high is not None and value > high) or (step and value % step)):
        return f"must be {range_text(info)} (got {value!r})"
    return ""


def check_fields(request: Any) -> None:
    """:class:`InvalidRequest` for the first field of ``request`` whose value its declaration
    refuses ("<field> must be …"); nested requests (``InsertRequest.locate``) are checked too."""
    hints = typing.get_type_hints(type(request))
    for f in dataclasses.fields(request):
        value = getattr(request, f.name)
        if dataclasses.is_dataclass(value) and hasattr(value, "validate"):
            check_fields(value)
            continue
        info = _info(f, hints[f.name])
        if _of_kind(info.kind, value) is None and value is not None:
            continue  # tuples of points, folders…: the request's validate() checks their shape
        problem = value_problem(info, value)
        if problem:
            raise InvalidRequest(f"{f.name} {problem}")
