"""Command-line front end: builds the same request objects as the GUI and calls the same engine.

Each ``*_cmd`` module adds its sub-commands in ``register(subparsers)`` and sets a
``handler(args, out)`` default that returns a JSON-ready dict (or None). Errors the user can fix
(:class:`AlchemyError`) exit with status 2 and one line on stderr; there is no traceback unless
``--debug`` is given.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from alchemy_engine import __version__
from alchemy_engine.cli.common import CliOutput
from alchemy_engine.errors import AlchemyError, JobCancelled

# Imported lazily by name so `--help` stays fast and a broken optional module names itself.
COMMAND_MODULES = (
    "alchemy_engine.cli.models_cmd",
    "alchemy_engine.cli.project_cmd",
    "alchemy_engine.cli.train_cmd",
    "alchemy_engine.cli.insert_cmd",
    "alchemy_engine.cli.evaluate_cmd",
    "alchemy_engine.cli.export_cmd",
)

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="image-alchemy",
        description="Teach SDXL a subject from a few photos, then place it into any scene.",
    )
    parser.add_argument("--version", action="version", version=f"Image Alchemy {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency inside the module
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `train --gpus N` re-runs it in N processes
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0 if args.command is None else 2
    out = CliOutput(json_mode=getattr(args, "json", False))
    try:
        result = args.handler(args, out)
        out.result(result)
    except BrokenPipeError:  # `project show | head -1`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python would fail again flushing stdout at exit
        return 141
    except AlchemyError as exc:
        out.close()
        if args.debug:
            log.exception("command failed")
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (JobCancelled, KeyboardInterrupt) as exc:
        out.close()
        print(f"cancelled: {exc}" if str(exc) else "cancelled", file=sys.stderr)
        return 130
    return 0
