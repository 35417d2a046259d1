"""The commands: restore (one image), evaluate (a folder), app (the page), and the options they
share. scripts/*.py and the console commands (anytime-restore, anytime-evaluate, anytime-app) call
their `console()`."""
