"""The Train tab: the settings of the next run (a form over ``TrainRequest``'s fields), the running
job's progress, loss and samples, and the project's previous runs with their checkpoints and
scores."""
