"""One owner for every request setting: its default, range or choices, and help text.

A request field declared with :func:`setting` carries that description in the dataclass field's
metadata. The CLI builds its options from it (``cli/options.py``) and the GUI fills its forms from
it (:func:`field_info`), so a default or a help text is written once, here, beside the field::

    steps: int = setting(500, minimum=1, help="optimizer steps")

Fields declared without :func:`setting` still work everywhere; they just carry no help text.
"""

from __future__ import annotations

import dataclasses
import random
import typing
from dataclasses import MISSING
from typing import Any

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
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    cli: bool = True  # offered as a generated CLI option

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
            maximum: float | None = None, choices: tuple[str, ...] = (), metavar: str | None = None,
            cli: bool = True, default_factory: Any = MISSING) -> Any:
    """A dataclass field with its description (see the module docstring)."""
    meta = {_KEY: dict(help=help, label=label, minimum=minimum, maximum=maximum, choices=tuple(choices),
                       metavar=metavar, cli=cli)}
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
    """The ``device`` field every job that runs a model has."""
    return setting(None, label="Device", help=DEVICE_HELP)


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
