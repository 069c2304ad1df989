"""A project on disk: its record (``schema``), photo store (``photos``), subject masks
(``reference_masks``) and training-run folders (``runs``). ``store`` is the public face."""

from alchemy_engine.project.store import (
    SCHEMA_VERSION,
    ImportReport,
    Project,
    ProjectSummary,
    ReferencePhoto,
    RefusedPhoto,
    create_project,
    delete_project,
    list_projects,
    open_project,
    rename_project,
    slugify,
    validate_class_noun,
    validate_name,
    validate_token,
)
from alchemy_engine.project.trash import TrashedProject, list_trash, restore_project, trash_dir
from alchemy_engine.project.workspace_settings import load_workspace_settings, save_workspace_settings

__all__ = ["SCHEMA_VERSION", "Project", "ProjectSummary", "ReferencePhoto", "RefusedPhoto",
           "ImportReport", "create_project", "list_projects", "open_project", "rename_project",
           "delete_project", "slugify", "validate_name", "validate_token", "validate_class_noun",
           "TrashedProject", "list_trash", "restore_project", "trash_dir",
           "load_workspace_settings", "save_workspace_settings"]
