"""The model families, one file each, each holding `FAMILY = restore.models.family.ModelFamily(...)`.
restore.models.registry finds every module here: a new family is a new file (and its test)."""
