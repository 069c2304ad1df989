"""The window's frame around the areas: menus, preferences (models, device, data folder), the
presets menu, help and about, the trash dialog, the first-run welcome, the status bar's Jobs
popup and the guard that stops running jobs before a quit or delete."""
