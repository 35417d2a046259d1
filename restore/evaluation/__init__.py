"""Folders of images: every image restored by several solvers at equal network calls, scored at
every anytime step, resumable and sharded over torchrun (run), with its images, rows, folder,
report, candidates (solve) and process group (distributed)."""
