"""Entries of the shipped models; digests are recorded when a model is exported."""


# (filled in by the export step; see docs/TRAINING.md)
