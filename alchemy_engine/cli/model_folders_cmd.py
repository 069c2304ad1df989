"""``models folders add|remove|list|detect`` and ``models scan``: other apps' model folders, in place."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from alchemy_engine.cli.common import CliOutput, add_json_flag, run_job


def register_actions(actions: Any) -> None:
    """Add ``folders`` and ``scan`` under ``models``."""
    folders = actions.add_parser(
        "folders", help="the model folders searched in place besides the app's own (list, add, remove, detect)",
        description="Model folders are searched where they are (ComfyUI, A1111/Forge, InvokeAI, ...); "
                    "nothing is copied. 'detect' lists the folders of installs found on this computer; "
                    "'detect --add' adds them all.")
    add_json_flag(folders)
    folders.set_defaults(handler=list_folders)
    verbs = folders.add_subparsers(dest="folders_action", metavar="VERB")
    for verb, handler, text in (("add", add_folder, "search this folder too"),
                                ("remove", remove_folder, "stop searching this folder (its files stay)")):
        sub = verbs.add_parser(verb, help=text)
        sub.add_argument("path", type=Path, help="a folder holding model files (searched with its sub-folders)")
        add_json_flag(sub)
        sub.set_defaults(handler=handler)
    sub = verbs.add_parser("list", help="the folders searched now")
    add_json_flag(sub)
    sub.set_defaults(handler=list_folders)
    detect = verbs.add_parser("detect", help="find the model folders of ComfyUI, A1111/Forge, InvokeAI, "
                                             "krita-ai-diffusion and the Hugging Face cache")
    detect.add_argument("--add", action="store_true", help="add every folder found")
    add_json_flag(detect)
    detect.set_defaults(handler=detect_folders)

    scan = actions.add_parser("scan", help="classify every file in the model folders by its header (cached)")
    add_json_flag(scan)
    scan.add_argument("folders", nargs="*", type=Path, help="folders to scan (default: the model folders)")
    scan.set_defaults(handler=scan_folders)


def _folders_payload(folders: list[Path], out: CliOutput) -> dict[str, Any]:
    if not out.json_mode:
        out.info("model folders searched in place:" if folders else
                 "no model folders yet; add one with 'models folders add PATH' or 'models folders detect --add'")
        for folder in folders:
            out.info(f"  {folder}{'' if folder.is_dir() else '  [missing]'}")
    return {"folders": [str(f) for f in folders]}


def list_folders(args: argparse.Namespace, out: CliOutput) -> dict[str, Any] | None:
    from alchemy_engine.api import list_model_folders

    payload = _folders_payload(list_model_folders(), out)
    return payload if out.json_mode else None


def add_folder(args: argparse.Namespace, out: CliOutput) -> dict[str, Any] | None:
    from alchemy_engine.api import add_model_folder

    payload = _folders_payload(add_model_folder(args.path), out)
    return payload if out.json_mode else None


def remove_folder(args: argparse.Namespace, out: CliOutput) -> dict[str, Any] | None:
    from alchemy_engine.api import remove_model_folder

    payload = _folders_payload(remove_model_folder(args.path), out)
    return payload if out.json_mode else None


def detect_folders(args: argparse.Namespace, out: CliOutput) -> dict[str, Any] | None:
    from alchemy_engine.api import add_model_folder, detect_installs, list_model_folders

    found = detect_installs()
    if args.add:
        for item in found:
            add_model_folder(item.path)
    if not out.json_mode:
        out.info("model folders of other apps found:" if found else "no other app's model folders were found")
        for item in found:
            out.info(f"  {item.app:<28} {item.holds:<12} {item.path}")
        if found and not args.add:
            out.info("add them with 'models folders detect --add', or one by one with 'models folders add PATH'")
        return None
    return {"detected": [f.to_dict() for f in found], "folders": [str(f) for f in list_model_folders()]}


def scan_folders(args: argparse.Namespace, out: CliOutput) -> dict[str, Any] | None:
    from alchemy_engine.api import ScanRequest, scan_models

    result = run_job(out, scan_models, ScanRequest(tuple(str(f) for f in args.folders)))
    if out.json_mode:
        return result.to_dict()
    for folder in result.folders:
        out.info(f"{folder}:")
        for model in (m for m in result.models if m.folder == folder):
            what = model.use + (f" for {model.lora_base}" if model.lora_base else "")
            out.info(f"  {model.name:<40} {what:<18} {model.size_bytes / 1e9:6.2f} GB")
    for folder in result.missing_folders:
        out.info(f"{folder}: missing (an unplugged drive?)")
    out.info(f"{len(result.models)} files; {result.probed} headers read, {result.reused} from the cache")
    return None
