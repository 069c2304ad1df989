"""``models``: what SDXL / SAM / detector weights were found and where; ``models check FILE``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from alchemy_engine.cli.common import CliOutput, add_json_flag


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "models", help="list the models found on this computer, or check a file",
        description="List SDXL, SAM and Grounding DINO models found in the models folder and the "
                    "Hugging Face cache (nothing is downloaded); 'models check FILE' says what a file is.")
    add_json_flag(parser)
    parser.add_argument("--sam-variants", action="store_true",
                        help="open each SAM file to recognise its variant (slower)")
    parser.set_defaults(handler=list_models)
    actions = parser.add_subparsers(dest="models_action", metavar="ACTION")
    check = actions.add_parser("check", help="say what a checkpoint file or folder is, without loading it")
    check.add_argument("path", type=Path, help="a .safetensors file or a diffusers folder")
    add_json_flag(check)
    check.set_defaults(handler=check_model)
    from alchemy_engine.cli import model_download_cmd, model_folders_cmd

    model_folders_cmd.register_actions(actions)
    model_download_cmd.register_actions(actions)


def list_models(args: argparse.Namespace, out: CliOutput) -> dict[str, Any] | None:
    from alchemy_engine.api import eval_inventory, find_models

    inventory = find_models(detect_sam_variants=args.sam_variants).to_dict()
    inventory["eval"] = eval_inventory()
    if not out.json_mode:
        for group in ("sdxl", "sam", "detector"):
            out.info(f"{group} (put files in {inventory['folders'][group]}):")
            for entry in inventory[group]:
                note = f"  [{entry['note']}]" if entry["note"] else ""
                where = f"  (in {entry['location']})" if entry.get("location") else ""
                out.info(f"  {entry['name']:<28} {entry['kind']:<12} {entry['path']}{note}{where}")
        out.info(f"evaluation models for scores and --rank (put each in {inventory['eval']['folder']}/<name>/):")
        for entry in inventory["eval"]["models"]:
            where = entry["path"] or f"missing: a local copy of {entry['repo_id']} → {entry['put_in']}"
            out.info(f"  {entry['name']:<28} {where}  [{entry['use']}]")
        out.info(f"Hugging Face cache searched: {inventory['folders']['hf_cache']}")
        return None
    return inventory


def check_model(args: argparse.Namespace, out: CliOutput) -> dict[str, Any]:
    """Describe a file (or folder); a file that cannot be the SDXL model ends in a ModelError."""
    from alchemy_engine.api import (
        inspect_ip_adapter,
        inspect_lora,
        model_prediction,
        probe_checkpoint,
        require_sdxl_checkpoint,
        require_sdxl_lora,
        resolve_sdxl,
    )

    path: Path = args.path.expanduser()
    if path.is_dir():
        source = resolve_sdxl(path)  # raises a ModelError that says what is wrong with the folder
        schedule = model_prediction(source)
        out.info(f"{path.name}: an SDXL diffusers folder; predicts {schedule.describe()}")
        return {"path": str(path), "family": "sdxl_base", "usable": True, "kind": source.kind,
                "description": "an SDXL diffusers folder", "fingerprint": source.fingerprint(),
                "prediction": schedule.to_dict()}
    if path.name.lower().startswith(("ip-adapter", "ip_adapter")):
        adapter = inspect_ip_adapter(path)  # refuses a pickle by name, FaceID/Full/SD 1.5 with what it is
        out.info(f"{path.name}: {adapter.description()}")
        return {**adapter.to_dict(), "family": "ip_adapter", "usable": True, "kind": "ip_adapter"}
    info = probe_checkpoint(path)
    out.event({"event": "probe", **info.to_dict()})
    if info.family == "ip_adapter":
        adapter = inspect_ip_adapter(path)
        out.info(f"{path.name}: {adapter.description()}")
        return {**info.to_dict(), **adapter.to_dict(), "usable": True, "kind": "ip_adapter"}
    if info.family == "lora":  # a LoRA is no base model, but say whether insertion can use it
        lora = inspect_lora(path)
        out.info(f"{path.name}: {lora.description()}")
        require_sdxl_lora(path)  # raises with what the LoRA is made for
        return {**info.to_dict(), "description": lora.description(), "usable": True, "kind": "lora",
                "lora_layout": lora.layout, "lora_base": lora.base}
    out.info(f"{path.name}: {info.description}" + (f"; predicts {info.prediction}" if info.prediction else ""))
    if info.family == "sdxl_inpaint":  # no base model, but insertion can repaint with it
        return {**info.to_dict(), "usable": True, "kind": "inpaint_model"}
    require_sdxl_checkpoint(path)  # raises with what the file is and what is expected
    source = resolve_sdxl(path)
    return {**info.to_dict(), "usable": True, "kind": "single_file", "fingerprint": source.fingerprint(),
            "prediction": model_prediction(source).to_dict()}
