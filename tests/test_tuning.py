"""The tuning protocol: the selection rule on hand-made score tables, the grids, the ``tune``
config section and the selection stage on hand-made stage outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from clearbench.config import ConfigError
from clearbench.evaluation.selection import Candidate, choose
from clearbench.recipes.runconfig import embedded_config, load_run_config
from clearbench.recipes.tune import (
    GridPoint,
    SelectJob,
    TuneConfig,
    TunedRun,
    method_grid,
    select_settings,
)
from clearbench.recipes.unlearn import UnlearnConfig


def table(*rows: tuple[float | None, float | None]) -> list[Candidate]:
    return [Candidate(progress, utility) for progress, utility in rows]


def test_rule_maximises_progress_among_points_that_keep_utility() -> None:
    # vanilla MU 0.7: floor 0.63; the point with P 0.8 loses too much utility
    choice = choose(table((0.2, 0.68), (0.8, 0.50), (0.6, 0.65)), 0.7, 0.9)
    assert (choice.index, choice.constraint_met) == (2, True)
    assert choice.floor == pytest.approx(0.63)


def test_rule_caps_progress_at_gold_and_breaks_ties_by_utility_then_order() -> None:
    # P 1.3 forgot more than gold: no better than P 1.0, which keeps more utility
    assert choose(table((1.3, 0.64), (1.0, 0.66)), 0.7).index == 1
    # an exact tie in P and MU goes to the earlier point (the default comes first)
    assert choose(table((0.5, 0.66), (0.5, 0.66)), 0.7).index == 0


def test_rule_never_chooses_a_diverged_or_undefined_point() -> None:
    assert choose(table((None, None), (0.1, 0.69), (float("nan"), 0.7)), 0.7).index == 1
    with pytest.raises(ValueError, match="no grid point has finite scores"):
        choose(table((None, None), (None, 0.7)), 0.7)


def test_rule_without_a_point_above_the_floor_takes_the_highest_utility_and_says_so() -> None:
    choice = choose(table((0.9, 0.3), (0.4, 0.5), (0.1, 0.45)), 0.7, 0.9)
    assert (choice.index, choice.constraint_met) == (1, False)


def test_rule_checks_its_ratio() -> None:
    with pytest.raises(ValueError, match="min_utility_ratio"):
        choose(table((0.1, 0.7)), 0.7, 1.5)


def test_default_grid_is_rate_times_key_coefficient_with_the_default_first() -> None:
    grid = method_grid("npo", TuneConfig(), {})
    assert [p.label for p in grid] == [
        "lr×1_beta0.1", "lr×1_beta0.5", "lr×0.5_beta0.1", "lr×0.5_beta0.5",
        "lr×2_beta0.1", "lr×2_beta0.5"]
    # GA has no key coefficient: the learning rate only
    assert [p.label for p in method_grid("ga", TuneConfig(), {})] == ["lr×1", "lr×0.5", "lr×2"]
    # the run's own option value comes first
    assert method_grid("npo", TuneConfig(), {"beta": 0.5})[0].label == "lr×1_beta0.5"
    assert len(method_grid("npo", TuneConfig(coefficients=False), {})) == 3


def test_grids_replace_a_methods_axes() -> None:
    tune = TuneConfig(grids={"npo": {"beta": (0.05, 0.2), "lr_scale": (1.0,), "epochs": (2, 4)}})
    assert [p.label for p in method_grid("npo", tune, {})] == [
        "lr×1_epochs2_beta0.05", "lr×1_epochs2_beta0.2", "lr×1_epochs4_beta0.05",
        "lr×1_epochs4_beta0.2"]


def test_a_grid_point_applies_to_an_unlearning_config() -> None:
    config = UnlearnConfig(model="m", data="d", method="npo", out=Path("o"), epochs=5.0,
                           options={"retain_weight": 2.0})
    applied = GridPoint(2.0, None, (("beta", 0.5),)).applied(config)
    assert (applied.lr_scale, applied.epochs) == (2.0, 5.0)
    assert applied.options == {"retain_weight": 2.0, "beta": 0.5}
    _, recipe = applied.resolved_recipe(1000)
    assert recipe.lr == pytest.approx(2 * 2e-4)  # the mini recipe's rate, doubled
    assert GridPoint(1.0, 3.0).applied(config).epochs == 3.0


def _config(tmp_path: Path, tune: dict) -> Path:
    """The smoke run config with its ``tune`` section replaced by ``tune``."""
    config = yaml.safe_load(embedded_config("smoke").read_text())
    config["tune"] = tune
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_tune_section_is_read_and_checked(tmp_path: Path) -> None:
    config = load_run_config(_config(tmp_path, {"lr_scales": ["5e-1", 1], "seeds": 2}))
    assert config.tune == TuneConfig(lr_scales=(0.5, 1.0), seeds=2)
    assert load_run_config(_config(tmp_path, {"enabled": False})).tune is None
    with pytest.raises(ConfigError) as error:
        load_run_config(_config(tmp_path, {
            "min_utility_ratio": 1.5, "lr_scales": [0],
            "grids": {"npoo": {"beta": [1]}, "npo": {"betta": [1], "beta": [-1]},
                      "ga": {"lr_scale": []}}}))
    message = str(error.value)
    for expected in ("tune.min_utility_ratio = 1.5", "tune.lr_scales", "tune.grids.npoo",
                     "tune.grids.npo.betta", "tune.grids.npo.beta = -1",
                     "tune.grids.ga.lr_scale"):
        assert expected in message, expected


def _write(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def _model(root: Path, name: str, knowledge: float, utility: float, *,
           status: str = "ok", seconds: float = 10.0) -> tuple[Path, Path]:
    folder = root / name
    _write(folder / "unlearning.json", {"status": status, "cost": {
        "seconds": seconds, "forward_passes": 30, "backward_passes": 10}})
    _write(folder / "eval" / "eval.json", {"seconds": 2.0})
    _write(folder / "eval" / "scores.json",
           {"forget_knowledge": knowledge, "model_utility": utility})
    return folder / "unlearning.json", folder / "eval"


def test_selection_stage_applies_the_rule_and_records_scores_and_cost(tmp_path: Path) -> None:
    _, vanilla = _model(tmp_path, "vanilla", 0.9, 0.70)
    _, gold = _model(tmp_path, "gold", 0.5, 0.72)
    default = _model(tmp_path, "default", 0.8, 0.69)  # P 0.25
    strong = _model(tmp_path, "strong", 0.5, 0.66)    # P 1.0, MU above 0.63
    ruined = _model(tmp_path, "ruined", 0.3, 0.20)    # P 1.5, MU far below
    diverged = _model(tmp_path, "diverged", 0.0, 0.0, status="diverged")
    points = (TunedRun(GridPoint(1.0), (default,)),
              TunedRun(GridPoint(2.0), (strong,)),
              TunedRun(GridPoint(4.0), (ruined,)),
              TunedRun(GridPoint(8.0), (diverged,)))
    job = SelectJob("ga", "lora", "forget_val", tmp_path / "select", vanilla, gold, points, 0.9)
    selection = select_settings(job)
    assert selection["chosen"] == "lr×2"
    assert selection["chosen_settings"] == {"lr_scale": 2.0, "epochs": None, "options": {}}
    assert selection["constraint_met"]
    progress = [p["forgetting_progress"] for p in selection["grid"]]
    assert progress[:3] == pytest.approx([0.25, 1.0, 1.5]) and progress[3] is None
    assert selection["grid"][3]["status"] == "diverged"
    # cost: every run's unlearning seconds, plus evaluation seconds of the runs that finished
    assert selection["cost"] == {"runs": 4, "seconds": 4 * 10.0 + 3 * 2.0,
                                 "forward_passes": 120, "backward_passes": 40}
    written = json.loads((tmp_path / "select" / "selection.json").read_text())
    assert written == selection


def test_tune_plans_the_protocol_and_nothing_of_the_test_split(tmp_path: Path) -> None:
    from clearbench.recipes.pipeline import plan, tuning_only

    config = load_run_config(embedded_config("smoke"))
    full = plan(config, tmp_path / "run")
    tuned_rows = [row for row in full.rows if row.variant == "lora-tuned"]
    assert len(tuned_rows) == len(config.methods) * config.seeds
    the_plan = tuning_only(full)
    names = [stage.name for stage in the_plan.stages]
    assert [n for n in names if n.startswith("select ")] == [
        f"select {method} (lora)" for method in config.methods]
    assert "fine-tune gold (forget_val)" in names and "fine-tune vanilla" in names
    assert not [n for n in names if "forget10" in n or n.startswith("collect")]
    assert the_plan.rows == []
    # each tuned run of the full plan waits for its method's selection
    tuned = [s for s in full.stages if s.kind == "unlearn" and "lora-tuned" in s.name]
    assert all(f"select {s.name.split()[1]} (lora)" in s.needs for s in tuned)


def test_tune_without_a_tune_section_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    from clearbench.cli import main

    assert main(["tune", "--preset", "mini", "--dry-run"]) == 2
    assert "has no tune section" in capsys.readouterr().err

