"""The engine's notes on a training run, said for an artist: "Using full precision on this CPU"
for ``mixed_precision: auto → no (the best precision on cpu)``. The engine's own line stays one
click away (*Details*): it names the flag and the figures behind the choice."""

from __future__ import annotations

import re

from alchemy_engine import api

_CHANGE = re.compile(r"^(?P<field>\w+): (?P<asked>.+?) → (?P<used>.+?)(?: \((?P<why>.*)\))?$", re.DOTALL)
_PRECISION = {"no": "full precision", "fp16": "half precision (float16)", "bf16": "half precision (bfloat16)",
              "fp32": "full precision", "float32": "full precision"}
_DEVICES = {"cpu": "CPU", "cuda": "GPU", "mps": "Apple GPU"}


def artist_note(note: str) -> str:
    """One plain sentence for an engine note (the note itself when it is not a setting change)."""
    found = _CHANGE.match(note.strip())
    if found is None:
        return note
    field, used, why = found["field"], found["used"].strip(), found["why"] or ""
    device = next((name for key, name in _DEVICES.items() if re.search(rf"\b{key}\b", why)), "computer")
    if field == "mixed_precision":
        return f"Using {_PRECISION.get(used, used)} on this {device}."
    if field == "weight_dtype":
        return f"The model's weights stay in {_PRECISION.get(used, used)}."
    if field == "gradient_checkpointing":
        return ("Saving memory with gradient checkpointing (steps are a little slower)." if used == "on" else
                "Enough memory: gradient checkpointing is off, so steps are faster.")
    if field == "compile":
        return f"Compiling the model is {'on: the first steps take longer' if used == 'on' else 'off on this ' + device}."
    try:
        label = api.field_info(api.TrainRequest, field).label or field
    except KeyError:
        label = field.replace("_", " ")
    return f"{label} set to {used} for this computer."


__all__ = ["artist_note"]
