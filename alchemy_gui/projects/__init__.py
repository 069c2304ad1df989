"""The project list (browser), the open project (``ProjectsState.current``: the one owner of which
project is open), the Photos tab with its reference photos and their subject masks, and the
new-project and mask-correction dialogs."""
