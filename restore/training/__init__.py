"""The bundled prior: its training photographs (sources) and crops (crops), the training loop
(train), the held-out evaluation set (held_out), and the study and fresh test sets (study_sets)."""
