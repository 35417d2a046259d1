"""This project's DDRM, DiffPIR and DPS against deepinv's same-named samplers, same prior, same y.

    python scripts/bench.py peers --data DIR [--limit 4] [--tasks sr4,inp_box,deblur_gauss,deno]
                                  [--nfe 20] [--out peers.json] [--device auto]
    python scripts/bench.py peers --data DIR --tasks deblur_motion,deblur_disk --sigma-y 0.05  # + BlurFFT

Every method runs on the bundled prior at the same number of network calls (--nfe, counted by a
counter around the network, reported in the table), on the same held-out images and the same
measurements, and is scored with restore.quality.metrics (PSNR, LPIPS; SSIM in the JSON).

How deepinv is given the same problem:
- Denoiser. deepinv calls D(x, sigma) with x on [0, 1] carrying Gaussian noise of std sigma (on
  [0, 1]). `PriorDenoiser` maps this to the eps-prior: on [-1, 1] the VE level is s = 2 sigma, the
  network input x_t = (2x - 1) / sqrt(1 + s^2) (exactly VP at that level), its time label the t
  whose sqrt((1 - a_t) / a_t) is nearest to s in log scale, and x0 = (2x - 1) - s eps, back to
  [0, 1]. On the project's grid levels this is exactly the project's x0 prediction; sigma = 0 gives
  x itself (deepinv's DDRM ends on sigma = 0: that call is counted, though it changes nothing).
- Operator. A `DecomposablePhysics` built from the project operator's own SVD (U, U^T, V, V^T and the
  singular values, zero-padded to n, as `mask`), so both libraries see one H. deepinv works on
  [0, 1] images: H((x + 1) / 2) = (H x + H 1) / 2, so y01 = (y + H 1) / 2 is the same noisy
  measurement (noise std sigma_y on [0, 1] in both); the script checks A(x01) against it.
- Fourier blurs (deblur_motion, deblur_disk, deblur). Also deepinv's own `BlurFFT` with the same
  kernel (its rows say "BlurFFT"): every frequency measured, its own FFT prox and pseudo-inverse.
  For these tasks y is the exact circular blur, every frequency (the project's H leaves out those
  with |k_hat| < 3e-2, which its solvers count as unmeasured and so ignore in y); the script
  checks BlurFFT's A(x01) against it.
- Seeds. Per image, image_seeds(0, name) (restore.restoration.seeds) gives the observation seed (noise of
  y) and one sampler seed shared by every method: a torch.Generator for the project's solvers,
  torch.manual_seed for deepinv's (they draw from the global generator).

deepinv conventions found in its source (0.5.0), and the variants that undo them:
- DDRM: noise levels `sigmas` on [0, 1] (default linspace(1, 0, n)), so it starts at s = 2 on
  [-1, 1] (t ~ 400) where the project starts at t = 950 (s ~ 97); its draws are divided by
  sqrt(2) while the denoiser is told the full level; unmeasured components start at 0 on [0, 1],
  i.e. black (the project: 0 on [-1, 1], grey; this matters where the constant image has
  unmeasured components: inpainting); singular values <= sigma_y count as unmeasured (the project
  keeps every s > 0 measured). "DDRM matched" runs deepinv's code on the project's grid
  (t = 950 ... 0) with the sqrt(2) undone (sigmas and the physics' sigma_y times sqrt(2), so draws
  and case tests come out at the true levels, and the denoiser told sigma / sqrt(2)) and its
  origin moved to grey (deepinv works on x01 - 0.5 and y01 - H 1 / 2); the s <= sigma_y rule stays.
- DiffPIR: its time grid is the project's (999 -> 0, quadratic); it clips the x0 estimate to
  [-1, 1] as the released code does (so does the project's, since this comparison found the
  missing clip cost it 1 to 3 dB); its prox is argmin ||Ax - y||^2 + 2 rho ||x - x0||^2 with rho = lambda
  sigma_y^2 / sigma_t^2, twice the project's rho, and its default lambda is 7 (the project: 1);
  its DecomposablePhysics.prox_l2 loses float32 precision when rho is tiny (see deepinv_physics).
  "DiffPIR matched": lambda = 0.5 and an exact prox. It needs sigma_y > 0 (rho = 0 gives 0 / 0),
  and it skips the data step on its last call and returns the state x_0, not that call's estimate
  (the released code does the same; the project applies the data step and returns x0_hat).
- DPS: VP SDE, DDPM ancestral steps on linspace(1, 0, nfe + 1) (nfe calls; the step to t = 0 adds
  none); guidance is weight * grad ||A D(x) - y|| taken as a score term, i.e. scaled by
  s0 s1 (sigma0^2 - sigma1^2) / 2 per step on the [-1, 1] scale (about 0.5 at the start, 0.015 at
  the end), against the project's constant zeta = 1; its clip [-1, 1] is applied to the denoiser's
  [0, 1] output (so it clips nothing), the project clips x0 to [-1, 1]. Run at its defaults.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from degradations import make_operator
from degradations.fourier import FourierBlur
from restore.bench.common import sync
from restore.evaluation.images import find_images, load_batch
from restore.io.atomic import write_json
from restore.models.prior import load_prior
from restore.quality.metrics import compute_all
from restore.restoration.seeds import image_seeds
from restore.settings.build import resolve_device
from restore.settings.model_spec import BUNDLED
from solvers import DDRM, DPS, DiffPIR, make_generators
from solvers.schedule import NoiseSchedule, ddrm_start, linear_times

SEED = 0  # the run seed: per-image seeds are image_seeds(SEED, name)
TASKS = "sr4,inp_box,deblur_gauss,deno"
DENO_SIGMA = 0.05


class CountingPrior:
    """The eps-prior with a call counter."""

    def __init__(self, prior):
        self.prior, self.alphas_cumprod, self.calls = prior, prior.alphas_cumprod, 0

    def __call__(self, x_t, t):
        self.calls += 1
        return self.prior(x_t, t)


class PriorDenoiser(torch.nn.Module):
    """deepinv's denoiser interface D(x, sigma) on [0, 1] over a counted eps-prior (see the module
    docstring). told: the true noise std over the sigma deepinv passes; shift: deepinv's x is
    the [0, 1] image minus shift (0.5 puts its zero at grey, the project's origin)."""

    def __init__(self, counted: CountingPrior, told: float = 1.0, shift: float = 0.0):
        super().__init__()
        self.counted, self.told, self.shift = counted, told, shift
        a = counted.alphas_cumprod.detach().double().cpu()
        self.log_levels = ((1 - a) / a).sqrt().log()

    def forward(self, x, sigma, *args, **kwargs):
        b = x.shape[0]
        s = 2 * torch.as_tensor(sigma, dtype=torch.float64).detach().cpu().reshape(-1).expand(b) * self.told
        t = (self.log_levels[None] - s.clamp_min(1e-12).log()[:, None]).abs().argmin(dim=1)
        s = s.to(x.device, x.dtype).view(b, 1, 1, 1)
        x_ve = 2 * (x + self.shift) - 1
        eps = self.counted(x_ve / (1 + s**2).sqrt(), t.to(x.device)).to(x.dtype)
        return (x_ve - s * eps + 1) / 2 - self.shift


def deepinv_physics(dinv, op, sigma01: float, exact_prox: bool = False):
    """deepinv's DecomposablePhysics with the project operator's SVD, on (B, n) spectral vectors.

    exact_prox: prox_l2 computed in V's coordinates. deepinv's own forms V^T (A^T y + z / gamma)
    and divides by s^2 + 1 / gamma: the float32 round-off of V^T A^T y on unmeasured components
    (~1e-6 for deblur_gauss) is then multiplied by gamma (~1e8 at DiffPIR's first step)."""
    m = op.m

    class Physics(dinv.physics.DecomposablePhysics):
        def prox_l2(self, z, y, gamma, **kwargs):
            if not exact_prox:
                return super().prox_l2(z, y, gamma, **kwargs)
            s = self.mask
            return self.V((gamma * s * self.U_adjoint(y) + self.V_adjoint(z)) / (gamma * s**2 + 1))

    return Physics(U=lambda u: op.U(u[:, :m]), U_adjoint=lambda y: op.add_zeros(op.Ut(y)).clone(),
                   V=lambda v: op.V(v).contiguous(), V_adjoint=op.Vt, mask=op.add_zeros(op.singulars()[None]),
                   noise_model=dinv.physics.GaussianNoise(sigma=sigma01))


def fft_physics(dinv, op, sigma01: float, exact_prox: bool = False):
    """deepinv's own BlurFFT with the Fourier operator's kernel (exact_prox: unused, BlurFFT's
    prox is its FFT closed form)."""
    return dinv.physics.BlurFFT(img_size=op.image_shape, filter=op.kernel[None, None].to(op.cos),
                                noise_model=dinv.physics.GaussianNoise(sigma=sigma01), device=op.cos.device)


def methods(dinv, prior, nfe: int, device: torch.device):
    """The counter and (library, solver, run(op, y, y01, sigma_y, seed) -> image on [-1, 1])."""
    counted = CountingPrior(prior)

    def ours(cls):
        def run(op, y, y01, sigma_y, seed):
            return cls(counted, op, steps=nfe).restore(y, sigma_y, make_generators([seed], y.device))
        return run

    def theirs(make, told=1.0, noise_factor=1.0, shift=0.0, exact_prox=False, physics_of=deepinv_physics):
        def run(op, y, y01, sigma_y, seed):
            if physics_of is fft_physics and not isinstance(op, FourierBlur):
                return None  # BlurFFT rows: Fourier blurs only
            torch.manual_seed(seed)  # deepinv's samplers draw from torch's global generator
            model = make(PriorDenoiser(counted, told, shift), sigma_y)
            physics = physics_of(dinv, op, sigma_y * noise_factor, exact_prox)
            y_in = y01 - shift * (2 * y01 - y)  # 2 y01 - y = H 1
            if physics_of is fft_physics:  # BlurFFT takes the blurred image, not a flat vector
                y_in = y_in.view(-1, *op.measurement_shape)
            return 2 * (model(y_in, physics) + shift) - 1
        return run

    def diffpir(lambda_):
        return lambda d, s: dinv.sampling.DiffPIR(d, dinv.optim.data_fidelity.L2(), sigma=s, max_iter=nfe,
                                                  lambda_=lambda_, device=device)

    schedule = NoiseSchedule(prior.alphas_cumprod)  # the project's DDRM grid, levels on [0, 1]
    r2, grid = math.sqrt(2.0), linear_times(ddrm_start(schedule.T, nfe), nfe)[:-1]
    ddrm_levels = np.array([schedule.sigma(t) / 2 for t in grid])
    return counted, [
        ("ours", "DDRM", ours(DDRM)),
        ("deepinv", "DDRM", theirs(lambda d, s: dinv.sampling.DDRM(d, sigmas=np.linspace(1, 0, nfe)))),
        ("deepinv", "DDRM matched", theirs(lambda d, s: dinv.sampling.DDRM(d, sigmas=r2 * ddrm_levels),
                                           told=1 / r2, noise_factor=r2, shift=0.5)),
        ("ours", "DiffPIR", ours(DiffPIR)),
        ("deepinv", "DiffPIR", theirs(diffpir(7.0))),
        ("deepinv", "DiffPIR matched", theirs(diffpir(0.5), exact_prox=True)),
        ("deepinv", "DDRM BlurFFT", theirs(lambda d, s: dinv.sampling.DDRM(d, sigmas=np.linspace(1, 0, nfe)),
                                           physics_of=fft_physics)),
        ("deepinv", "DDRM matched BlurFFT", theirs(lambda d, s: dinv.sampling.DDRM(d, sigmas=r2 * ddrm_levels),
                                                   told=1 / r2, noise_factor=r2, shift=0.5, physics_of=fft_physics)),
        ("deepinv", "DiffPIR BlurFFT", theirs(diffpir(7.0), physics_of=fft_physics)),
        ("deepinv", "DiffPIR matched BlurFFT", theirs(diffpir(0.5), physics_of=fft_physics)),
        ("ours", "DPS", ours(DPS)),
        ("deepinv", "DPS", theirs(lambda d, s: dinv.sampling.DPS(d, num_steps=nfe + 1))),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder of held-out images")
    parser.add_argument("--limit", type=int, default=4, help="first N images (sorted names)")
    parser.add_argument("--tasks", default=TASKS)
    parser.add_argument("--nfe", type=int, default=20, help="network calls per method")
    parser.add_argument("--sigma-y", type=float, default=0.01,
                        help=f"measurement noise std on [0, 1], all tasks but deno ({DENO_SIGMA})")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--only", default="", help="comma list of solver names to run (default: all)")
    parser.add_argument("--out", help="write every number to this JSON file")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        import deepinv as dinv
    except ImportError:
        print("deepinv is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    device = resolve_device(args.device)
    names = find_images(args.data)[: args.limit]
    if not names:
        print(f"no images under {args.data}", file=sys.stderr)
        return 1
    x_all = load_batch(Path(args.data), names, args.size, device)
    prior = load_prior(BUNDLED).to(device)
    counted, runs = methods(dinv, prior, args.nfe, device)
    only = set(filter(None, args.only.split(",")))
    runs = [r for r in runs if not only or r[1] in only]
    with torch.no_grad():  # warm-up call, not timed
        prior(torch.zeros(1, 3, args.size, args.size, device=device), torch.tensor([500], device=device))

    print(f"deepinv {dinv.__version__}, prior {BUNDLED}, device {device}, {len(names)} image(s) at "
          f"{args.size}x{args.size}, nfe {args.nfe}, sigma_y {args.sigma_y} ({DENO_SIGMA} for deno); "
          f"seeds: image_seeds({SEED}, name) (observation, sampler)", flush=True)
    rows = []
    for task in args.tasks.split(","):
        sigma_y = DENO_SIGMA if task == "deno" else args.sigma_y
        op = make_operator(task, args.size).to(device)
        fourier = isinstance(op, FourierBlur)
        truth = FourierBlur(3, args.size, args.size, op.kernel, zero_below=0).to(device) if fourier else op
        h_one = op.H(torch.ones(1, 3, args.size, args.size, device=device))
        results = {(lib, name): [] for lib, name, _ in runs}
        for i, name in enumerate(names):
            x = x_all[i : i + 1]
            obs_seed, sampler_seed = image_seeds(SEED, name)
            y = truth.observe(x, sigma_y, make_generators([obs_seed], device))
            y01 = (y + h_one) / 2
            gap = (deepinv_physics(dinv, op, 0.0).A((x + 1) / 2) - (op.H(x) + h_one) / 2).abs().max().item()
            if fourier:
                a01 = fft_physics(dinv, op, 0.0).A((x + 1) / 2).flatten(1)
                gap = max(gap, (a01 - (truth.H(x) + h_one) / 2).abs().max().item())
            if gap > 1e-4:
                raise AssertionError(f"{task}: deepinv's A(x01) differs from the project's H by {gap:.2e}")
            for lib, solver, run in runs:
                counted.calls = 0
                sync(device)
                start = time.perf_counter()
                try:
                    out = run(op, y, y01, sigma_y, sampler_seed)
                    if out is None:  # not run on this task
                        results.pop((lib, solver), None)
                        continue
                    out = out.detach()
                except Exception as exc:  # a peer's failure is a result too
                    results[lib, solver].append({"image": name, "error": f"{type(exc).__name__}: {exc}"})
                    print(f"  {task} {lib} {solver} {name}: FAILED {type(exc).__name__}: {exc}", flush=True)
                    continue
                sync(device)
                seconds = time.perf_counter() - start
                m = {k: float(v[0]) for k, v in compute_all(out.clamp(-1, 1), x).items()}
                results[lib, solver].append({"image": name, "calls": counted.calls, "seconds": seconds, **m})
                print(f"  {task} {lib:7s} {solver:15s} {name}: {m['psnr']:.2f} dB, LPIPS {m['lpips']:.3f}, "
                      f"{counted.calls} calls, {seconds:.1f} s", flush=True)
        for (lib, solver), per_image in results.items():
            ok = all("error" not in r for r in per_image)
            mean = {k: float(np.mean([r[k] for r in per_image])) if ok else float("nan")
                    for k in ("psnr", "ssim", "lpips", "seconds")}
            calls = sorted({r.get("calls") for r in per_image if "calls" in r})
            rows.append({"task": task, "sigma_y": sigma_y, "library": lib, "solver": solver,
                         "calls": calls[0] if len(calls) == 1 else calls, **mean, "per_image": per_image})

    print("\n| task | sigma_y | library | solver | calls | PSNR (dB) | LPIPS | s / image |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['task']} | {r['sigma_y']} | {r['library']} | {r['solver']} | {r['calls']} | "
              f"{r['psnr']:.2f} | {r['lpips']:.3f} | {r['seconds']:.1f} |")
    if args.out:
        settings = {"deepinv": dinv.__version__, "prior": BUNDLED, "device": str(device), "size": args.size,
                    "nfe": args.nfe, "sigma_y": args.sigma_y, "deno_sigma_y": DENO_SIGMA, "seed": SEED,
                    "seeds": "image_seeds(seed, name): observation seed, sampler seed", "images": names,
                    "argv": sys.argv if argv is None else argv}
        write_json(args.out, {"settings": settings, "rows": rows}, indent=1)
        print(f"\nwrote {args.out}")
    return 0
