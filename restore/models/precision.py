"""How the network runs: precision, memory format and compilation, set once on a loaded prior.

    net = configure_network(prior, precision="bf16", compile=True)   # then use net as the prior

`configure_network` returns a `ConfiguredNetwork`: a thin nn.Module around the prior that the
solvers call exactly like it (`net(x_t, t) -> eps`, in x_t's dtype) and that reads through to it:
`net.alphas_cumprod`, `net.image_size`, `net.name`, `net.device`, `net.unet`, `net.fixed_size`
and any other attribute come from the wrapped prior (`net.prior`). A wrapper rather than changes
to the prior, so the same loaded prior can be configured twice (e.g. a benchmark) and a plain
call stays available; the one change made in place is the weights' memory format (below).

Options:
- precision "fp32" (default): the network runs as loaded. On CUDA, PyTorch runs convolutions
  (most of a U-Net's work) in TF32 by default (torch.backends.cudnn.allow_tf32).
  "bf16" / "fp16": the network call runs under torch.autocast(device type, that dtype): convs and
  matmuls in 16 bits, normalisations and softmax in fp32 as autocast decides. Only the network:
  x_t goes in and eps comes out in x_t's dtype (float32), so everything the solver computes
  (SVD / FFT arithmetic, the schedule) stays fp32. The weights stay fp32.
  CUDA: bf16 and fp16 (Ampere or later for bf16). CPU: bf16 only; fp16 raises a ValueError
  (autocast accepts it but it runs far slower than fp32 without AMX-FP16). bf16 on a CPU without
  native bf16 (no AVX512-BF16 / AMX: torch.ops.mkldnn._is_mkldnn_bf16_supported() is False) is
  allowed but warns: on such a CPU (AMD EPYC Zen 3, bundled prior, 256x256) a call took ~19 s
  in channels_last layout and ~200 s without, against ~3 s in fp32.
- channels_last (default: on for CUDA and for bf16 on CPU, off for fp32 on CPU): the U-Net's
  weights (in place: values unchanged, only their layout) and each x_t are put in NHWC layout,
  which cuDNN's tensor-core convolutions prefer; eps is returned in the usual contiguous layout. On CPU
  (fp32, docs/benchmarks.md, `scripts/bench.py cpu`) it wins by 8-10% with one thread but is
  within 5% either way with two (the default), for the bundled prior and the CelebA-HQ U-Net at
  256 and 1024: pass channels_last=True for one-thread runs; the fp32
  CPU default stays off. bf16 on CPU: ~10x faster than the default layout (above), hence on.
- compile (default off): torch.compile of the whole call (autocast included). CUDA: mode
  "reduce-overhead" (CUDA graphs, so a small batch is not bound by kernel launches), shapes fixed
  (dynamic=False): each new (batch, H, W) compiles once (expect 30-90 s for the CelebA-HQ U-Net;
  not yet measured: scripts/bench.py gpu reports it); each output is copied out of the graph's
  memory. CPU: the default mode, needs a C++ compiler; slow to build (a tiny 2-level U-Net took
  5-7 min on 2 shared cores), eps within 1e-6 of the eager call.
  A compilation that fails raises a one-line ValueError at the call that triggered it.
"""

from __future__ import annotations

import contextlib
import shutil
import warnings
from typing import Any

import torch

PRECISIONS = ("fp32", "bf16", "fp16")
AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _device_of(prior: Any) -> torch.device:
    device = getattr(prior, "device", None)
    if device is not None:
        return torch.device(device)
    params = prior.parameters() if isinstance(prior, torch.nn.Module) else iter(())
    return next(params, torch.empty(0)).device


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a private API: when absent, assume it has
        return True


def _check(precision: str, device: torch.device, compile: bool) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"fp16 runs on CUDA only (device is {device.type}); on CPU use bf16 or fp32")
    if precision == "bf16" and device.type == "cpu" and not _cpu_has_bf16():
        warnings.warn("bf16 on this CPU (no native bf16) is much slower than fp32; use fp32 here",
                      RuntimeWarning, stacklevel=3)
    if compile:
        if not hasattr(torch, "compile"):
            raise ValueError(f"compile needs torch.compile (torch {torch.__version__} has none); run without compile")
        if device.type == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
            raise ValueError("compile on CPU needs a C++ compiler (no g++, c++ or clang++ found); run without compile")


class ConfiguredNetwork(torch.nn.Module):
    """The prior called under the configured precision, memory format and compilation; every
    other attribute reads through to the wrapped prior (see the module docstring)."""

    def __init__(self, prior: Any, precision: str, compile: bool, channels_last: bool):
        super().__init__()
        self.prior = prior
        self.precision, self.compiled, self.channels_last = precision, compile, channels_last
        self.__dict__["_run"] = self._eager_run
        self.__dict__["_shapes"] = set()  # input shapes already compiled
        if compile:
            cuda = _device_of(prior).type == "cuda"
            try:
                self.__dict__["_run"] = torch.compile(self._eager_run, dynamic=False,
                                                      mode="reduce-overhead" if cuda else None)
            except Exception as error:  # noqa: BLE001 - any failure to set up compilation
                raise ValueError(f"torch.compile failed ({_first_line(error)}); run without compile") from None

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)  # parameters, buffers, submodules (self.prior)
        except AttributeError:
            prior = self.__dict__.get("_modules", {}).get("prior", self.__dict__.get("prior"))
            if prior is None:
                raise
            return getattr(prior, name)

    def _eager_run(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        dtype = AUTOCAST_DTYPES[self.precision]
        context = torch.autocast(x_t.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with context:
            eps = self.prior(x_t, t)
        return eps.to(x_t.dtype)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.precision == "fp16" and x_t.device.type != "cuda":
            raise ValueError(f"fp16 runs on CUDA only (x_t is on {x_t.device.type}); on CPU use bf16 or fp32")
        x = x_t.contiguous(memory_format=torch.channels_last) if self.channels_last else x_t
        if not self.compiled:
            eps = self._run(x, t)
        else:
            cuda = x.device.type == "cuda"
            if cuda:
                torch.compiler.cudagraph_mark_step_begin()
            key = (tuple(x.shape), x.dtype, x.device)
            try:
                eps = self._run(x, t)
            except torch.OutOfMemoryError:
                raise
            except Exception as error:  # noqa: BLE001 - a failed compilation, whatever its kind
                if key in self._shapes:
                    raise
                raise ValueError(f"torch.compile failed for input {tuple(x.shape)} "
                                 f"({_first_line(error)}); run without compile") from None
            self._shapes.add(key)
            if cuda:  # the CUDA graph's output memory is reused by its next replay
                eps = eps.clone(memory_format=torch.contiguous_format)
        return eps.contiguous() if self.channels_last else eps


def _first_line(error: BaseException) -> str:
    text = " ".join(str(error).strip().splitlines()[:1]) or type(error).__name__
    return f"{type(error).__name__}: {text[:200]}"


def configure_network(prior: Any, precision: str = "fp32", compile: bool = False,
                      channels_last: bool | None = None) -> ConfiguredNetwork:
    """The prior set to run in `precision` ("fp32", "bf16" or "fp16"), with its U-Net in
    channels-last layout (`channels_last`; None: on for CUDA and bf16, off for fp32 on CPU) and
    optionally compiled (`compile`). Returns a `ConfiguredNetwork` used as the prior: `net(x_t, t) -> eps` in x_t's
    dtype, every other attribute read through to `prior`. One-line ValueErrors for an unknown
    precision, fp16 on CPU, or compilation that is unavailable. See the module docstring."""
    if isinstance(prior, ConfiguredNetwork):
        prior = prior.prior
    device = _device_of(prior)
    _check(precision, device, compile)
    if channels_last is None:
        channels_last = device.type == "cuda" or precision == "bf16"
    if channels_last:
        network = getattr(prior, "unet", prior)
        if isinstance(network, torch.nn.Module):
            network.to(memory_format=torch.channels_last)
    return ConfiguredNetwork(prior, precision, bool(compile), bool(channels_last))
