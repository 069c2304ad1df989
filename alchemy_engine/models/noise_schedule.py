"""What a diffusion model predicts and its noise schedule, as one value; and reading it from a
single file's header (its marker keys and metadata). No imports from the rest of ``models``: the
header probe uses it too (``probe.py``); everything else is in ``prediction.py``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_V_NAMES = {"v", "v_prediction", "v-prediction", "v_pred", "vpred", "velocity"}
_EPS_NAMES = {"epsilon", "eps", "noise"}


@dataclass(frozen=True)
class NoiseSchedule:
    """``prediction_type`` in diffusers' words (``epsilon`` / ``v_prediction``); ``zero_terminal_snr``:
    betas rescaled so the last timestep is pure noise, sampled with ``trailing`` timestep spacing;
    ``found_in``: where this was read, for people."""

    prediction_type: str = "epsilon"
    zero_terminal_snr: bool = False
    trailing: bool = False
    found_in: str = "no marker in the model: the SDXL default"

    @property
    def is_v(self) -> bool:
        return self.prediction_type == "v_prediction"

    def describe(self) -> str:
        kind = "v-prediction" if self.is_v else "epsilon (noise) prediction"
        snr = ", zero-terminal-SNR" if self.zero_terminal_snr else ""
        return f"{kind}{snr} ({self.found_in})"

    def scheduler_overrides(self) -> dict[str, Any]:
        """What :func:`configure` sets on a diffusers scheduler config."""
        out: dict[str, Any] = {"prediction_type": self.prediction_type,
                               "rescale_betas_zero_snr": self.zero_terminal_snr}
        if self.trailing:
            out["timestep_spacing"] = "trailing"
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"prediction_type": self.prediction_type, "zero_terminal_snr": self.zero_terminal_snr,
                "timestep_spacing": "trailing" if self.trailing else "as configured", "found_in": self.found_in}


def from_header(tensors: dict[str, Any], metadata: dict[str, str]) -> NoiseSchedule | None:
    """The schedule a single file asks for through its marker keys or metadata; None: it says nothing."""
    if "v_pred" in tensors:
        ztsnr = "ztsnr" in tensors
        return NoiseSchedule("v_prediction", ztsnr, ztsnr,
                             "the file's v_pred" + (" and ztsnr marker keys" if ztsnr else " marker key"))
    said = str(metadata.get("modelspec.prediction_type", "")).strip().lower()
    if said in _V_NAMES:
        ztsnr = str(metadata.get("ss_zero_terminal_snr", "")).strip().lower() == "true"
        return NoiseSchedule("v_prediction", ztsnr, ztsnr, "the file's modelspec metadata")
    if said in _EPS_NAMES:
        return NoiseSchedule(found_in="the file's modelspec metadata")
    return None
