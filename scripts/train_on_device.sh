#!/usr/bin/env bash
# A training-only run of the prior on a lent GPU machine (issue 12 Part B): trains for MINUTES
# with bf16 autocast (the default on CUDA), writes the EMA model folder and the loss log, and
# evaluates nothing. scripts/gpu_session.sh does the same as its part 3 and then scores the model
# on its held-out card (`--parts 3 --minutes 9` for training alone): prefer it. The GPU machine has
# no internet and no apt, so prepare here first (git-ignored paths the device tool's `carry` takes):
#
#   bash scripts/gpu_session_prepare.sh     # .train/photos.npz (66 photos, 14.5 MB), .whl/, .train/heldout/
#
# then run it there (its image has torch but no diffusers; the wheels are installed into /tmp/site):
#
#   run(command="bash scripts/train_on_device.sh 8", carry=[".train/photos.npz", ".whl"], timeout_s=600)
#
# Usage: scripts/train_on_device.sh [MINUTES] [more `train_prior.py train` options, which win]
# Defaults: --attention --size 256 --batch 32, a checkpoint every minute. A CPU smoke test of the whole path:
#   OUT=/tmp/smoke bash scripts/train_on_device.sh 1 --size 64 --channels 16,32,32,64 --batch 4 --device cpu
# Continuing the bundled (attention-free) model instead: ... 8 --no-attention --init data/models/natural-ddpm
#
# Results go to $OUT (the device tool's return folder; here .train/device-out): train.log,
# loss.csv, and the model folder as model.tar split in 15 MB parts (the tool returns files of
# at most 16 MiB each). Reassemble with `cat model.tar.part-* | tar -x` (gives model/).
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-8}
shift || true
DATA=${DATA:-.train/photos.npz}
RUN=${RUN:-.train/device-run}
DEST=${OUT:-.train/device-out}
if [ ! -f "$DATA" ]; then
    echo "error: $DATA not found: run 'python scripts/train_prior.py build-data' here and carry it" >&2
    exit 2
fi
PY=python3
command -v python3 >/dev/null || PY=python
if ! "$PY" -c "import diffusers, pydantic" 2>/dev/null; then
    if ! ls .whl/diffusers-*.whl >/dev/null 2>&1; then
        echo "error: diffusers is not installed and no .whl/diffusers-*.whl was carried" >&2
        exit 2
    fi
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
mkdir -p "$DEST"
pack() {  # on every exit, so that a run cut short still returns what it has
    if [ -d "$RUN/model" ]; then
        cp "$RUN/loss.csv" "$DEST/" 2>/dev/null || true
        rm -f "$DEST"/model.tar.part-*
        tar -C "$RUN" -cf - model | split -b 15M -d - "$DEST/model.tar.part-"
        ls -l "$DEST" "$RUN/model"
    fi
}
trap pack EXIT
trap 'exit 143' TERM INT
case " $* " in *" --resume "*) ;; *) rm -rf "$RUN" ;; esac  # a fresh run unless --resume
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=15
"$PY" -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__,
      'cuda', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none')" | tee "$DEST/train.log"
"$PY" scripts/train_prior.py train --data "$DATA" --out "$RUN" --minutes "$MINUTES" \
    --attention --size 256 --batch 32 --checkpoint-minutes 1 "$@" 2>&1 | tee -a "$DEST/train.log"
