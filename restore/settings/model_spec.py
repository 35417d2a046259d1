"""Which model a run names: the bundled prior's name, the aliases, and the default choice (CelebA-HQ
when its weights are cached locally, else the bundled prior). Loading is restore.models.prior."""

from __future__ import annotations

import sys

BUNDLED = "natural-ddpm"
ALIASES = {"celebahq": "google/ddpm-ema-celebahq-256"}


def celebahq_available() -> bool:
    """True when the CelebA-HQ weights are in the local Hugging Face cache (no network used)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return any(
            isinstance(try_to_load_from_cache(ALIASES["celebahq"], f), str)
            for f in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
                      "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.bin")
        )
    except Exception:  # noqa: BLE001 - any failure means "not available locally"
        return False


def resolve_model(spec: str | None, quiet: bool = False, note=None) -> str:
    """The model to use; with no spec, CelebA-HQ when cached locally, else the bundled prior (said in one line).

    note: a callable taking that line (default: print it on stderr as "note: ..."); quiet drops it."""
    if spec:
        return spec
    if celebahq_available():
        return "celebahq"
    if not quiet:
        line = (f"CelebA-HQ weights not found locally; using the bundled prior {BUNDLED!r} "
                "(pass --model celebahq to download them)")
        if note is None:
            print(f"note: {line}", file=sys.stderr)
        else:
            note(line)
    return BUNDLED
