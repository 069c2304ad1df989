"""The Insert tab: the scene and its mask document (canvas, brush, SAM clicks, undo), the insertion
settings (a form over ``InsertRequest``'s fields), the jobs that make scenes, masks and results,
and the results strip with its outputs and layered export."""
