"""`project` commands: create, list, show, add-photos, rename, delete, trash, restore (and mask:
project_mask_cmd)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from alchemy_engine.cli import project_mask_cmd
from alchemy_engine.cli.common import CliOutput, add_json_flag
from alchemy_engine.errors import InvalidRequest


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("project", help="create, list, show, rename, delete and restore projects")
    commands = parser.add_subparsers(dest="project_command", metavar="ACTION", required=True)

    create = commands.add_parser("create", help="create a project from a few photos of a subject")
    create.add_argument("name", help="project name, e.g. 'Rex the dog'")
    create.add_argument("--class-noun", required=True,
                        help="what the subject is, in plain words: dog, coffee mug, person")
    create.add_argument("--token", default="sks",
                        help="rare word that will mean your subject (default: sks)")
    create.add_argument("--images", nargs="+", default=[], metavar="IMG",
                        help="photos of the subject (3-5 work well)")
    create.set_defaults(handler=_create)

    listing = commands.add_parser("list", help="list projects")
    listing.set_defaults(handler=_list)

    show = commands.add_parser("show", help="show a project, its photos and runs")
    show.add_argument("name", help="project name, slug or folder")
    show.set_defaults(handler=_show)

    add = commands.add_parser("add-photos", help="import more photos into a project")
    add.add_argument("name", help="project name, slug or folder")
    add.add_argument("images", nargs="+", metavar="IMG")
    add.set_defaults(handler=_add_photos)

    rename = commands.add_parser("rename", help="rename a project (its folder follows)")
    rename.add_argument("name", help="project name, slug or folder")
    rename.add_argument("new_name")
    rename.set_defaults(handler=_rename)

    delete = commands.add_parser("delete", help="move a project to the trash folder")
    delete.add_argument("name", help="project name, slug or folder")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(handler=_delete)

    trash = commands.add_parser("trash", help="list deleted projects that can be restored")
    trash.set_defaults(handler=_trash)

    restore = commands.add_parser("restore", help="bring a deleted project back from the trash")
    restore.add_argument("name", help="the project's name or slug (the latest deleted one), or its trash folder")
    restore.set_defaults(handler=_restore)

    for sub in (create, listing, show, add, rename, delete, trash, restore):
        add_json_flag(sub)
    project_mask_cmd.register(commands)


def _create(args: argparse.Namespace, out: CliOutput) -> dict[str, Any] | None:
    from alchemy_engine.api import create_project

    project = create_project(args.name, class_noun=args.class_noun, token=args.token,
                             images=args.images)
    refused = project.last_import.refused if project.last_import else ()
    _warn_refused(out, refused)
    count = len(project.reference_photos())
    out.info(f"created project {project.name!r} at {project.root} "
             f"({count} photo{'' if count == 1 else 's'})")
    return _json_only(out, {**project.to_dict(), "refused": [r.to_dict() for r in refused]})


def _list(args: argparse.Namespace, out: CliOutput) -> dict[str, Any] | None:
    from alchemy_engine.api import list_projects

    summaries = list_projects()
    if out.json_mode:
        return {"projects": [s.to_dict() for s in summaries]}
    if not summaries:
        out.info("no projects yet: create one with `image-alchemy project create`")
    for s in summaries:
        if s.error:
            out.info(f"{s.slug}  (cannot be opened: {s.error})")
        else:
            out.info(f"{s.name}  [{s.slug}]  '{s.token} {s.class_noun}'  {s.photo_count} photos")
    return None


def _show(args: argparse.Namespace, out: CliOutput) -> dict[str, Any] | None:
    from alchemy_engine.api import open_project

    project = open_project(args.name)
    if out.json_mode:
        return {**project.to_dict()}
    out.info(f"{project.name}  [{project.slug}]  {project.root}")
    out.info(f"subject: '{project.token} {project.class_noun}'")
    for photo in project.reference_photos():
        extras = " mask" if photo.mask_path else ""
        extras += f" caption={photo.caption!r}" if photo.caption else ""
        out.info(f"  {photo.name}  {photo.width}×{photo.height}  from {photo.original_name}"
                 f"{extras}")
    runs = project.to_dict()["runs"]
    out.info(f"runs: {', '.join(runs) if runs else 'none yet'}")
    return None


def _add_photos(args: argparse.Namespace, out: CliOutput) -> dict[str, Any] | None:
    from alchemy_engine.api import open_project

    project = open_project(args.name)
    report = project.import_photos(args.images)
    _warn_refused(out, report.refused)
    out.info(f"imported {len(report.imported)} photo(s) into {project.name!r}")
    return _json_only(out, {"project": project.name, "path": str(project.root),
                            **report.to_dict()})


def _rename(args: argparse.Namespace, out: CliOutput) -> dict[str, Any] | None:
    from alchemy_engine.api import rename_project

    project = rename_project(args.name, args.new_name)
    out.info(f"renamed to {project.name!r} at {project.root}")
    return _json_only(out, {"name": project.name, "slug": project.slug,
                            "path": str(project.root)})


def _delete(args: argparse.Namespace, out: CliOutput) -> dict[str, Any] | None:
    from alchemy_engine.api import delete_project, open_project

    project = open_project(args.name)
    if not args.yes:
        if out.json_mode or not sys.stdin.isatty():
            raise InvalidRequest(f"Deleting project {project.name!r} needs confirmation: "
                                 "add --yes.")
        answer = input(f"Move project {project.name!r} ({project.root}) to the trash? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            out.info("nothing deleted")
            return _json_only(out, {"deleted": False, "name": project.name})
    trash = delete_project(project)
    out.info(f"moved {project.name!r} to {trash} (delete that folder to free the space)")
    return _json_only(out, {"deleted": True, "name": project.name, "trash_path": str(trash)})


def _trash(args: argparse.Namespace, out: CliOutput) -> dict[str, Any] | None:
    from alchemy_engine.api import list_trash, trash_dir

    entries = list_trash()
    if not entries:
        out.info(f"the trash is empty ({trash_dir()})")
    for entry in entries:
        out.info(f"{entry.name}  (deleted {entry.deleted or 'at an unknown time'})  {entry.path}")
    return _json_only(out, {"trash": [e.to_dict() for e in entries]})


def _restore(args: argparse.Namespace, out: CliOutput) -> dict[str, Any] | None:
    from alchemy_engine.api import open_project, restore_project

    project = open_project(restore_project(args.name))
    out.info(f"restored {project.name!r} to {project.root}")
    return _json_only(out, {"restored": True, "name": project.name, "slug": project.slug,
                            "path": str(project.root)})


def _warn_refused(out: CliOutput, refused: Any) -> None:
    for item in refused:
        out.info(f"skipped: {item.reason}")


def _json_only(out: CliOutput, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Human output was printed already; the full record is for --json."""
    return payload if out.json_mode else None
