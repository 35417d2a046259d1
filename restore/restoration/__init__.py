"""One image's restoration: its inputs made ready (job, sizing, seeds), the run a person steers
(session) and what it hands back (result, data only)."""
