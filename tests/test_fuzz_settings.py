"""Property-based fuzzing (hypothesis) of every way settings come in: command-line flags, config
files and restore_image's keywords, drawn with wrong types, NaN, infinity, huge, negative, empty
and unknown keys. Each must either plan a valid run (which then starts) or fail with the one-line
usage error (argparse's exit 2 on the command line), never anything else."""

from __future__ import annotations

import math
import threading

import pytest
import torch
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from degradations import TASKS
from gaussian_prior import GaussianPrior
from restore.cli.options import settings_from_args
from restore.cli.restore import build_parser
from restore.errors import UsageError
from restore.restoration.session import Cancelled
from restore.settings.build import build_operator, build_solver
from restore.settings.configs import load_config
from restore.settings.schema import SOLVER_NAMES, Settings, canonical

#: derandomized: the same draws on every machine (a failure is a bug, not bad luck); no example database
FUZZ = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

wild = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.sampled_from([0, 1, 2, 4, 5, 16, 20, 999, 1000, 1001]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 0.05, 0.5, 1.0, 1.5, -0.1]),
    st.text(max_size=6), st.sampled_from(["native", "cosine", "950,850,600,250", "2,3", "fp32", "bf16", "fp16"]),
    st.sampled_from(list(TASKS) + list(SOLVER_NAMES)), st.lists(st.integers(-5, 1200), max_size=5),
)
unit = st.floats(0, 1)
#: values a person would give, so that a fair share of the draws are valid runs
good = {
    "task": st.sampled_from([t for t in TASKS if t != "inp_mask"]), "sigma_y": st.floats(0, 0.3),
    "solver": st.sampled_from(SOLVER_NAMES), "outer": st.integers(1, 4),
    "inner": st.one_of(st.integers(1, 4), st.lists(st.integers(1, 3), min_size=1, max_size=4)),
    "steps": st.integers(1, 6), "eta": unit, "eta_b": unit, "zeta": st.one_of(st.none(), unit),
    "lam": st.one_of(st.none(), st.floats(0.1, 10)), "outer_power": st.floats(0.5, 3), "outer_eta": unit,
    "outer_times": st.one_of(st.none(), st.just("cosine")), "outer_noise": unit, "inner_power": st.floats(0.2, 2),
    "seed": st.integers(0, 2**40), "size": st.one_of(st.none(), st.just("native")), "tile": st.one_of(st.none(), st.just(0)),
    "candidates": st.integers(1, 3), "precision": st.just("fp32"), "compile": st.just(False),
}
KEYS = list(good) + ["colour", "", "sigma-y", "outer_"]
pair = st.sampled_from(KEYS).flatmap(lambda k: st.tuples(st.just(k), st.one_of(good[k], good[k], wild) if k in good
                                                         else wild))
drawn = st.lists(pair, max_size=5).map(dict)


def _plan(s: Settings) -> None:
    """What a run builds from valid settings: the operator at a small size and the solver (whose
    grid may still refuse the settings, in one line: budgets that do not fit the outer times)."""
    try:
        operator = build_operator(s, (16, 16))
        solver = build_solver(s, GaussianPrior(torch.zeros(3, 16, 16), torch.ones(3, 16, 16)), operator)
    except UsageError as error:
        assert "\n" not in str(error)
        return
    assert solver.nfe_total >= 1 and solver.anytime_steps >= 1


def _flag_text(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


@FUZZ
@given(drawn)
def test_command_line_flags(capsys, values):
    argv = ["--input", "x.png"]
    for key, value in values.items():
        argv += [f"--{key.replace('_', '-')}={_flag_text(value)}"]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse: one line on stderr, exit 2
        assert exit_.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), err
        return
    try:
        s = settings_from_args(args)
    except UsageError as error:
        assert "\n" not in str(error)
        return
    _plan(s)


@FUZZ
@given(drawn)
@example(values={"zeta": None})  # an old name with no value (found by CI)
@example(values={"zeta": 0.5, "solver": "ddrm"})  # an old name the solver has no setting for
def test_config_files(tmp_path, values):
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in values.items()}, allow_unicode=True))
    try:
        # as compose reads a config: old names (zeta) turned into their solver's setting first
        s = Settings(**canonical(load_config(path), where=f"config {path}")).validate()
    except UsageError as error:
        assert "\n" not in str(error)
        return
    _plan(s)


class _StopSoon(GaussianPrior):
    """The exact Gaussian prior, asking the run to stop after a few network calls (fuzzed budgets
    go up to a million calls)."""

    def __init__(self, stop: threading.Event, calls: int = 3):
        super().__init__(torch.zeros(3, 16, 16), torch.full((3, 16, 16), 0.5))
        self.stop, self.limit, self.image_size, self.name = stop, calls, 16, "gaussian"

    def __call__(self, x_t, t):
        if self.calls + 1 >= self.limit:
            self.stop.set()
        return super().__call__(x_t, t)


@FUZZ
@given(drawn)
def test_restore_image_keywords(values):
    from restore import restore_image

    stop = threading.Event()
    kwargs = {k: v for k, v in values.items() if k != "task"}
    try:
        result = restore_image(torch.zeros(1, 3, 16, 16), values.get("task"), model=_StopSoon(stop), stop=stop,
                               quiet=True, **kwargs)
    except UsageError as error:
        assert "\n" not in str(error)
        return
    except Cancelled:  # a valid run, stopped before its first result
        return
    assert result.final.shape[-2:] == (16, 16) and all(math.isfinite(v) for v in result.final.flatten().tolist())


def test_the_fuzzer_draws_valid_runs_too():
    """Not every draw is an error: the strategies reach valid settings (or the tests above prove little)."""
    assert Settings(task="deno", sigma_y=0.05, outer=2, inner=[2, 3]).validate().nfe == 5
    with pytest.raises(UsageError):
        Settings(sigma_y=math.nan).validate()
