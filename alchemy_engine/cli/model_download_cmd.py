"""``models download NAME… | --required | --list``: fetch catalogue models, on request only."""

from __future__ import annotations

import argparse
import os
from typing import Any

from alchemy_engine.cli.common import CliOutput, add_json_flag, run_job


def register_actions(actions: Any) -> None:
    download = actions.add_parser(
        "download", help="fetch models from the catalogue (Hugging Face Hub, or HF_ENDPOINT's mirror)",
        description="Fetch catalogue models into the models folder: each file is checked against its "
                    "sha256 before it is put in place; a cancelled or killed download resumes. Nothing is "
                    "fetched unless asked. HF_TOKEN (or --token) opens gated repos.")
    download.add_argument("names", nargs="*", metavar="NAME", help="catalogue ids (see --list)")
    download.add_argument("--required", action="store_true", help="everything the app needs (SDXL, SAM, detector)")
    download.add_argument("--list", action="store_true", help="show the catalogue: sizes, licences, what is here")
    download.add_argument("--accept-licences", action="store_true",
                          help="you have read each model's licence (shown with its link) and accept it")
    download.add_argument("--token", default=None, help="a Hugging Face access token (default: HF_TOKEN)")
    add_json_flag(download)
    download.set_defaults(handler=download_models_cmd)


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def _show_catalogue(out: CliOutput, entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        need = "required" if entry["required"] else "optional"
        out.info(f"{entry['id']:<24} {entry['state']:<8} {_gb(entry['size_bytes']):>9}  {need}: {entry['used_for']}")
        out.info(f"{'':<24} {entry['repo']} → {entry['folder']}")
        out.info(f"{'':<24} licence: {entry['licence']} {entry['licence_url']}")


def download_models_cmd(args: argparse.Namespace, out: CliOutput) -> dict[str, Any] | None:
    from alchemy_engine.api import DownloadRequest, catalogue_status, download_models

    status = catalogue_status()
    if args.list or (not args.names and not args.required):
        if out.json_mode:
            return {"catalogue": status}
        _show_catalogue(out, status)
        return None
    chosen = [e for e in status if e["id"] in args.names or (args.required and e["required"])]
    if not args.accept_licences and not out.json_mode:
        _show_catalogue(out, chosen)
    todo = sum(e["bytes_to_fetch"] for e in chosen)
    if not out.json_mode and args.accept_licences:
        out.info(f"fetching about {_gb(todo)} from {os.environ.get('HF_ENDPOINT') or 'https://huggingface.co'}")
    request = DownloadRequest(tuple(args.names), args.required, args.accept_licences, args.token)
    result = run_job(out, download_models, request)
    if not out.json_mode:
        for path in result.fetched:
            out.info(f"fetched and verified: {path}")
        for path in result.present:
            out.info(f"already here: {path}")
        return None
    return result.to_dict()
