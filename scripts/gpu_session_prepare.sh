#!/usr/bin/env bash
# Prepare, on a machine with the package registries, what scripts/gpu_session.sh needs on a GPU
# machine that can reach nothing (this workplace's lent card: no PyPI, no apt). Run it once from
# the repository root of the checkout that will call the device tool; it writes three git-ignored
# paths that the tool's `carry` takes along (about 24 MB together; the tool's limit is 64 MiB with
# the working tree, which is about 32 MB):
#
#   .whl/              the wheels the card's image lacks (diffusers, lpips, piq, pypng, pydantic
#                      and its helpers, a typing_extensions new enough for it: docs/testing.md),
#                      for Python 3.12 on x86-64, installed there with --no-index --no-deps
#   .train/photos.npz  the bundled prior's training photos (the 66 of data/train_sources.csv,
#                      long side <= 1024 px, JPEG q95), built by `train_prior.py build-data --root`
#   .train/heldout/    the 8 held-out images of restore.training.held_out (256 x 256 PNGs), the
#                      set the prior card and the precision comparison are scored on
#
# The photos come from five Debian packages (opencv-doc, lomiri-wallpapers-16.04, lxqt-themes,
# mate-backgrounds, plasma-workspace-wallpapers: about 280 MB of .deb, fetched with
# `apt-get download`, unpacked into a scratch folder, never installed) and two PyPI wheels
# (scikit-image, scikit-learn: only their data files are read). Nothing is installed into the
# system or the virtual environment.
#
# Usage: scripts/gpu_session_prepare.sh [SCRATCH]   (SCRATCH: where the packages are unpacked,
# default /tmp/gpu_session_sources; kept, so that a second run downloads nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH=${1:-/tmp/gpu_session_sources}
PY=${PYTHON:-python3}
mkdir -p "$SCRATCH/debs" "$SCRATCH/root" .whl .train

# 1. wheels for the card (Python 3.12, manylinux x86-64): exact versions, one of each
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
WHEELS=(diffusers==0.42.1 lpips==0.1.4 piq==0.8.0 pypng==0.20220715.0 pydantic==2.14.4 pydantic_core==2.50.5
        annotated-types==0.8.0 typing-inspection==0.4.5 typing_extensions==4.16.0)
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${PLATFORMS[@]}" \
    -d .whl "${WHEELS[@]}"

# 2. the photos' packages, unpacked (not installed) under $SCRATCH/root
DEBS=(opencv-doc lomiri-wallpapers-16.04 lxqt-themes mate-backgrounds plasma-workspace-wallpapers)
for deb in "${DEBS[@]}"; do
    if ! ls "$SCRATCH/debs/${deb}_"*.deb >/dev/null 2>&1; then
        (cd "$SCRATCH/debs" && apt-get download -q "$deb")
    fi
    dpkg-deb -x "$SCRATCH/debs/${deb}_"*.deb "$SCRATCH/root"
done
for wheel in scikit-image scikit-learn; do
    "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$SCRATCH/wheels" "$wheel"
done
(cd "$SCRATCH/root" && for w in "$SCRATCH"/wheels/scikit_image-*.whl "$SCRATCH"/wheels/scikit_learn-*.whl; do
    "$PY" -m zipfile -e "$w" . >/dev/null; done)

# 3. the training photos and the held-out set, read from there
"$PY" scripts/train_prior.py build-data --root "$SCRATCH/root" --out .train/photos.npz
"$PY" scripts/eval_prior.py --root "$SCRATCH/root" --save-set .train/heldout
du -sh .whl .train/photos.npz .train/heldout
