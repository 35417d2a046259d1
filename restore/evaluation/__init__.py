"""Folders of images: every image restored by several solvers at equal network calls, scored at
every anytime step, resumable and sharded over torchrun (run), with its images, rows, folder,
report, candidates (solve) and process group (distributed); the field's benchmark suites as
declared files (protocol: the file and --solvers budgets; protocol_ops: their operators as the
published codes build them; protocol_run: the run; protocol_table: the table and figure)."""
