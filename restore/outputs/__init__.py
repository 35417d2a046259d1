"""A restoration's output folder: its files and figures (files, figures), the folder that fills as
the run goes (live), and resuming a stopped run from it (resume)."""
