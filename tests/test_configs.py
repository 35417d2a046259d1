"""Every shipped config is valid, names its own task and model, and restores with its settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from restore.errors import UsageError
from restore.paths import CONFIG_DIR
from restore.settings import Settings
from restore.settings.configs import load_config
from solvers.registry import solvers

CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))


def test_there_are_configs():
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_is_valid_and_named_after_its_task_and_model(path: Path):
    values = load_config(path.name)  # a bare name resolves in configs/
    settings = Settings(**values).validate()
    assert path.stem == f"{settings.task}_{settings.model}"


# --------------------------------------------------------------------------- applied by default
@pytest.fixture()
def measured(tmp_path, monkeypatch, tiny_model_dir):
    """A measured config for (deno, the tiny test model), in a configs folder of its own."""
    import restore.paths

    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / f"deno_{Path(tiny_model_dir).name}.yaml").write_text(
        "task: deno\nsolver: nested\nouter: 2\ninner: 1\neta: 0.5\nouter_power: 1.0\nsigma_y: 0.3\nseed: 9\n")
    monkeypatch.setattr(restore.paths, "CONFIG_DIR", folder)
    return folder


def _run(tiny_model_dir, **kwargs):
    import torch

    from restore import restore_image

    return restore_image(torch.zeros(1, 3, 16, 16), model=str(tiny_model_dir), quiet=True, **{"task": "deno", **kwargs})


def test_the_measured_config_applies_by_default_and_says_so(measured, tiny_model_dir):
    r = _run(tiny_model_dir)
    s = r.settings
    assert (s.eta, s.outer_power, s.outer, s.inner) == (0.5, 1.0, 2, 1)  # the method settings
    assert (s.sigma_y, s.seed) == (0.0, 0)  # never the problem's
    assert s.config.endswith("deno_tiny-ddpm.yaml") and r.metrics["settings"]["config"] == s.config
    (line,) = [n for n in r.notes if n.startswith("settings from")]
    assert "eta 0.5" in line and "outer_power 1.0" in line and "--config none" in line


def test_flags_override_it_and_none_or_another_solver_skip_it(measured, tiny_model_dir):
    assert _run(tiny_model_dir, eta=0.9).settings.eta == 0.9
    assert _run(tiny_model_dir, eta=0.9).settings.outer_power == 1.0
    off = _run(tiny_model_dir, config="none").settings
    assert (off.eta, off.outer_power, off.config) == (solvers()["ddrm"].defaults()["eta"], Settings.outer_power, None)
    other = _run(tiny_model_dir, solver="ddrm", steps=1).settings  # measured for nested: not applied
    assert (other.eta, other.config) == (solvers()["ddrm"].defaults()["eta"], None)
    assert _run(tiny_model_dir, task="sr4").settings.config is None  # no config for that pair


def test_the_command_line_applies_it_too(measured, tiny_model_dir):
    from restore.cli.evaluate import build_parser
    from restore.cli.options import settings_from_args

    base = ["--data", ".", "--out", "o", "--task", "deno", "--model", str(tiny_model_dir)]
    applied = settings_from_args(build_parser().parse_args(base))
    assert applied.eta == 0.5 and applied.config.endswith("deno_tiny-ddpm.yaml")
    assert settings_from_args(build_parser().parse_args([*base, "--eta", "0.7"])).eta == 0.7
    off = settings_from_args(build_parser().parse_args([*base, "--config", "none"]))
    assert off.eta == solvers()["ddrm"].defaults()["eta"] and off.config is None


# --------------------------------------------------------------------------- task defaults
def test_inpainting_gets_fresh_outer_noise_on_the_cosine_grid(tiny_model_dir):
    """Nested DDRM on inp_box / inp_mask: the outer loop that closes the inpainting gap
    (docs/studies/nested-inpainting.md), unless the person or a config sets the outer loop."""
    from restore.settings.compose import task_defaults

    run = _run(tiny_model_dir, task="inp_box")
    box = run.settings
    assert (box.outer_times, box.outer_noise, box.outer_eta, box.inner_power) == ("cosine", 1.0, 0.0, 0.5)
    assert any(n.startswith("inpainting: each outer step re-noises") for n in run.notes)
    assert not any(n.startswith("inpainting") for n in _run(tiny_model_dir, task="sr4").notes)
    assert task_defaults({"task": "inp_mask"})["outer_noise"] == 1.0
    given = _run(tiny_model_dir, task="inp_box", outer_power=1.0).settings  # a person's outer loop wins
    assert (given.outer_times, given.outer_noise, given.outer_power, given.inner_power) == (None, 0.0, 1.0, 1.0)
    assert _run(tiny_model_dir, task="inp_box", inner_power=0.7).settings.outer_noise == 0.0  # part of the outer loop
    assert _run(tiny_model_dir, task="inp_box", outer_eta=0.5).settings.outer_noise == 0.0
    assert _run(tiny_model_dir, task="inp_box", config="none").settings.outer_times is None
    assert _run(tiny_model_dir, task="inp_box", solver="nested-ddnm").settings.outer_times is None  # measured for DDRM
    for other in ("sr4", "inp_random"):
        assert _run(tiny_model_dir, task=other).settings.outer_noise == 0.0


def test_outer_times_and_noise_settings():
    from restore.errors import UsageError
    from restore.settings.build import build_solver

    s = Settings(task="inp_box", outer_times=[950, 850, 600, 250], outer_noise=0.5).validate()
    assert s.outer_times == [950, 850, 600, 250]
    assert Settings(outer_times="cosine").validate().outer_times == "cosine"
    for bad, match in (({"outer_times": [950, 850]}, "4 outer steps"), ({"outer_times": [5, 9, 3, 2]}, "decrease"),
                       ({"outer_noise": 1.5}, "outer-noise"), ({"outer_noise": 1.0, "outer_eta": 0.5}, "not both"),
                       ({"inner_power": 0.0}, "inner-power")):
        with pytest.raises(UsageError, match=match):
            Settings(**bad).validate()

    class Prior:  # what building the solver reads of a prior
        import torch
        alphas_cumprod = torch.linspace(0.9999, 0.0001, 1000)

    from degradations import make_operator

    nested = build_solver(Settings(task="inp_box", outer_times="cosine", outer_noise=1.0).validate(), Prior(),
                          make_operator("inp_box", 16))
    assert nested.outer == [950, 878, 672, 364] and nested.outer_noise == 1.0
    top = build_solver(Settings(task="inp_box", outer_times="cosine", inner_power=0.5).validate(), Prior(),
                       make_operator("inp_box", 16))
    assert top.inner_power == 0.5 and top.inner[1] == [878, 760, 621, 439, 0, -1]


def test_a_persons_outer_loop_takes_none_of_the_configs(tmp_path, monkeypatch, tiny_model_dir):
    """--outer-power must not be overridden by a config's outer_times, nor --outer-eta clash with its
    outer_noise: setting any part of the outer loop leaves the config's outer keys out."""
    import restore.paths

    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / f"inp_box_{Path(tiny_model_dir).name}.yaml").write_text(
        "task: inp_box\nsolver: nested\neta: 0.5\nouter_times: cosine\nouter_noise: 1.0\n")
    monkeypatch.setattr(restore.paths, "CONFIG_DIR", folder)
    assert _run(tiny_model_dir, task="inp_box").settings.outer_times == "cosine"
    power = _run(tiny_model_dir, task="inp_box", outer_power=1.0).settings
    assert (power.outer_times, power.outer_noise, power.outer_power, power.eta) == (None, 0.0, 1.0, 0.5)
    ddim = _run(tiny_model_dir, task="inp_box", outer_eta=0.5).settings  # no "not both" error
    assert (ddim.outer_eta, ddim.outer_noise, ddim.outer_times) == (0.5, 0.0, None)


def test_study_configuration_grammar():
    """The anytime study's (restore.studies.anytime) `solver[:budgets][@outer_eta][/outer_times][%outer_noise][^outer_power][~inner_power]`."""
    from restore.studies import anytime as study

    s = study.parse_config("nested:5,4,4,7/cosine%1~0.5", 20, eta=1.0)
    assert (s.inner, s.outer, s.outer_times, s.outer_noise, s.inner_power, s.eta) == ([5, 4, 4, 7], 4, "cosine", 1.0, 0.5, 1.0)
    plain = study.parse_config("nested:5,5,5,5^1", 20)
    assert (plain.outer_power, plain.inner_power, plain.outer_noise) == (1.0, 1.0, 0.0)
    with pytest.raises(UsageError, match="inner-power"):
        study.parse_config("nested~0", 20)


def test_a_recorded_config_path_loads_from_any_folder(tmp_path, monkeypatch):
    """A run records its measured config as configs/<task>_<model>.yaml (relative to the
    repository); reading it back (the note that says what it changed) must not depend on the
    folder the command runs in."""
    monkeypatch.chdir(tmp_path)
    assert load_config("configs/sr4_natural-ddpm.yaml")["task"] == "sr4"
    assert load_config("sr4_natural-ddpm.yaml")["task"] == "sr4"
    with pytest.raises(UsageError, match="not found"):
        load_config("configs/no_such.yaml")


def test_a_measured_option_of_another_solver_reaches_only_its_own_solver():
    """configs/deblur_gauss_natural-ddpm.yaml is nested DDRM's and holds DiffPIR's lam: a DiffPIR run
    (plain or nested) gets it, a DDRM run does not (no note of an unused option), a flag wins."""
    from restore.settings.compose import compose

    for solver in ("diffpir", "nested-diffpir"):
        got = compose({"task": "deblur_gauss", "model": "natural-ddpm", "solver": solver})
        assert got.lam == 7.0 and got.config == "configs/deblur_gauss_natural-ddpm.yaml"
        assert compose({"task": "deblur_gauss", "model": "natural-ddpm", "solver": solver, "lam": 2.0}).lam == 2.0
    for solver in ("ddrm", "nested", "dps"):
        got = compose({"task": "deblur_gauss", "model": "natural-ddpm", "solver": solver})
        assert got.lam is None and got.unused() == []
    assert compose({"task": "deblur_gauss", "model": "natural-ddpm", "solver": "diffpir"}, config="none").lam == 1.0
