"""Image Alchemy's desktop app (PySide6): the window, its three areas and the jobs they run.

It reaches the engine only through ``alchemy_engine.api`` (plus ``errors`` and ``jobs``) and never
imports torch itself (tested). Packages: ``common`` (what every area shares: observable properties,
the job list, request-field forms, settings), ``projects`` (the project list and the Photos tab),
``train`` (the Train tab), ``insert`` (the Insert tab and its mask canvas), ``shell`` (menus,
dialogs, preferences, the status bar's jobs). See CONTRIBUTING.md for the map.
"""
