"""``clearbench tune``: each method's settings chosen on validation persons, never on the test
forget persons (the ``tune:`` section of a run config; docs/tuning.md).

The protocol, top to bottom:

1. **Validation persons.** The data's ``forget_val`` split: persons disjoint from every test
   forget split (forget01 ⊂ forget05 ⊂ forget10), with their own gold model fine-tuned on
   ``retain_val+tofu`` (every fictitious person but forget10's and the validation persons), so
   no tuning stage reads a test forget person.
2. **Grid.** Per method: the learning rate scaled by ``lr_scales`` × the method's one key
   coefficient (its ``tuning`` attribute: β, α, c, s, ...), at the run's main variant, both
   modalities; a ``grids`` entry replaces a method's axes. Each point unlearns the vanilla
   model on ``forget_val`` for ``seeds`` seeds; each model is evaluated and scored against the
   validation gold.
3. **Rule** (:mod:`clearbench.evaluation.selection`, stated before any number is seen):
   maximise min(P, 1) subject to MU ≥ ``min_utility_ratio`` × vanilla's MU.
4. **Use.** The chosen settings are written to ``tune/SPLIT/METHOD-VARIANT/selection.json``
   with every point's scores and the grid's cost (seconds, forward and backward passes);
   the run unlearns the test split with them as the variant ``VARIANT-tuned``, beside the
   defaults.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from clearbench.config import PositiveFloat, PositiveInt, Problem, one_of, settings
from clearbench.data.schema import VALIDATION_SPLITS
from clearbench.evaluation.aggregates import forgetting_progress
from clearbench.evaluation.selection import Candidate, choose
from clearbench.io import read_json, write_json_atomic
from clearbench.methods import METHODS, build_method
from clearbench.recipes.evaluate import EVAL_FILE, SCORES_FILE
from clearbench.recipes.unlearn import UnlearnConfig, unlearn

SELECTION_FILE = "selection.json"
TUNED_SUFFIX = "-tuned"
"""The variant name of the tuned runs: the main variant's name plus this."""
RATE_AXES = ("lr_scale", "epochs")
"""Grid axes every method has (besides its options)."""


@settings(frozen=True)
class TuneConfig:
    """The ``tune:`` section of a run config."""

    split: Annotated[str, one_of(VALIDATION_SPLITS)] = "forget_val"
    """The data's validation split (its persons are disjoint from the test forget persons)."""
    lr_scales: tuple[PositiveFloat, ...] = (0.5, 1.0, 2.0)
    """Multiples of the main variant's learning rate (1.0 is the default rate)."""
    coefficients: bool = True
    """Also try each method's key coefficient values (its ``tuning`` attribute)."""
    min_utility_ratio: Annotated[float, Field(gt=0, le=1)] = 0.9
    """MU floor of the rule, as a fraction of the vanilla model's MU."""
    seeds: PositiveInt = 1
    """Unlearning seeds per grid point (the run's ``seed``, ``seed + 1``, ...)."""
    grids: dict[str, dict[str, tuple[float, ...]]] = field(default_factory=dict)
    """Per method, axes replacing its default grid: ``lr_scale``, ``epochs`` or the method's
    options, e.g. ``{npo: {beta: [0.05, 0.1, 0.2]}, ga: {lr_scale: [0.25, 0.5]}}``."""


def check_grids(grids: dict[str, dict[str, tuple[float, ...]]]) -> list[Problem]:
    """Problems of ``tune.grids``: unknown methods, unknown axes, empty axes and option values
    the method refuses."""
    found = []
    for method, axes in grids.items():
        key = f"tune.grids.{method}"
        if method not in METHODS:
            found.append(Problem(key, f"unknown method; registered: {', '.join(METHODS)}"))
            continue
        options = set(build_method(method, {}).options())
        for axis, values in axes.items():
            if axis not in (*RATE_AXES, *options):
                found.append(Problem(f"{key}.{axis}", "an axis: lr_scale, epochs or one of the "
                                     f"method's options ({', '.join(sorted(options))})"))
            elif not values:
                found.append(Problem(f"{key}.{axis}", "at least one value", list(values)))
            elif axis in RATE_AXES:
                found += [Problem(f"{key}.{axis}", "a number > 0", v) for v in values if v <= 0]
            elif axis in options:
                for value in values:
                    try:
                        build_method(method, {axis: value})
                    except ValueError as err:
                        found.append(Problem(f"{key}.{axis}", str(err).split(": ", 1)[-1],
                                             value))
    return found


@dataclass(frozen=True)
class GridPoint:
    """One setting of a method's grid."""

    lr_scale: float = 1.0
    epochs: float | None = None
    """None: the variant's (or recipe's) epochs."""
    options: tuple[tuple[str, float], ...] = ()

    @property
    def label(self) -> str:
        parts = [f"lr×{self.lr_scale:g}"]
        if self.epochs is not None:
            parts.append(f"epochs{self.epochs:g}")
        parts += [f"{name}{value:g}" for name, value in self.options]
        return "_".join(parts)

    def settings(self) -> dict[str, Any]:
        return {"lr_scale": self.lr_scale, "epochs": self.epochs, "options": dict(self.options)}

    def applied(self, config: UnlearnConfig) -> UnlearnConfig:
        """``config`` at this point (options on top of the run's options for the method)."""
        return replace(config, lr_scale=self.lr_scale,
                       epochs=config.epochs if self.epochs is None else self.epochs,
                       options={**config.options, **dict(self.options)})


def method_grid(method: str, tune: TuneConfig, options: dict[str, Any]) -> list[GridPoint]:
    """Every point of ``method``'s grid, the run's own setting of each axis first (so that the
    default point comes first and wins ties): lr scale × epochs × coefficient values."""
    axes = dict(tune.grids.get(method, {}))
    scales = axes.pop("lr_scale", tune.lr_scales)
    epochs = axes.pop("epochs", (None,))
    built = build_method(method, options)
    if not axes and tune.coefficients and built.tuning is not None:
        axes = {built.tuning[0]: built.tuning[1]}
    current = built.options()
    option_axes = [[(name, float(v)) for v in _first(current[name], values)]
                   for name, values in axes.items()]
    return [GridPoint(float(scale), None if ep is None else float(ep), tuple(chosen))
            for scale, ep, *chosen in itertools.product(_first(1.0, scales), epochs,
                                                        *option_axes)]


def _first(current: float, values: tuple[float, ...]) -> list[float]:
    """``values`` without repeats, ``current`` first when it is one of them."""
    unique = list(dict.fromkeys(float(v) for v in values))
    return sorted(unique, key=lambda v: v != current)


@dataclass(frozen=True)
class TunedRun:
    """One grid point's models: (unlearning record, evaluation folder) per tuning seed."""

    point: GridPoint
    runs: tuple[tuple[Path, Path], ...]


@dataclass(frozen=True)
class SelectJob:
    """What the selection of one method reads and where it writes."""

    method: str
    variant: str
    split: str
    out: Path
    vanilla_eval: Path
    gold_eval: Path
    points: tuple[TunedRun, ...]
    min_utility_ratio: float


def _scores(eval_dir: Path) -> dict[str, Any]:
    return read_json(eval_dir / SCORES_FILE, what="scores")


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known and len(known) == len(values) else None


def _point_entry(run: TunedRun, k_vanilla: float, k_gold: float) -> dict[str, Any]:
    """A grid point's scores (means over seeds; None when a seed diverged) and cost."""
    progress, utility, knowledge = [], [], []
    cost = {"runs": 0, "seconds": 0.0, "forward_passes": 0, "backward_passes": 0}
    status = "ok"
    for record_path, eval_dir in run.runs:
        record = read_json(record_path, what="unlearning record")
        spent = record.get("cost", {})
        cost["runs"] += 1
        cost["seconds"] += spent.get("seconds", 0.0)
        cost["forward_passes"] += spent.get("forward_passes", 0)
        cost["backward_passes"] += spent.get("backward_passes", 0)
        if record.get("status", "ok") != "ok":
            status = "diverged"
            progress.append(None)
            utility.append(None)
            continue
        cost["seconds"] += read_json(eval_dir / EVAL_FILE, what="evaluation").get("seconds", 0.0)
        scores = _scores(eval_dir)
        k = scores["forget_knowledge"]
        p = forgetting_progress(k, k_vanilla, k_gold)
        knowledge.append(k)
        progress.append(None if p != p else p)  # NaN: no gap between vanilla and gold
        utility.append(scores["model_utility"])
    return {"label": run.point.label, "settings": run.point.settings(), "status": status,
            "forget_knowledge": _mean(knowledge) if status == "ok" else None,
            "forgetting_progress": _mean(progress), "model_utility": _mean(utility),
            "cost": cost}


def select_settings(job: SelectJob) -> dict[str, Any]:
    """Apply the rule to one method's grid and write ``selection.json`` (rewritten only when
    its content changes, so that a finished run is left as it is)."""
    vanilla, gold = _scores(job.vanilla_eval), _scores(job.gold_eval)
    k_vanilla, k_gold = vanilla["forget_knowledge"], gold["forget_knowledge"]
    grid = [_point_entry(run, k_vanilla, k_gold) for run in job.points]
    choice = choose([Candidate(p["forgetting_progress"], p["model_utility"]) for p in grid],
                    vanilla["model_utility"], job.min_utility_ratio)
    total = {key: sum(p["cost"][key] for p in grid) for key in grid[0]["cost"]}
    selection = {
        "method": job.method, "variant": job.variant, "split": job.split,
        "rule": {"maximise": "min(forgetting_progress, 1)",
                 "subject_to": f"model_utility >= {job.min_utility_ratio:g} × vanilla's",
                 "min_utility_ratio": job.min_utility_ratio, "utility_floor": choice.floor},
        "vanilla": {"forget_knowledge": k_vanilla, "model_utility": vanilla["model_utility"]},
        "gold": {"forget_knowledge": k_gold, "model_utility": gold["model_utility"]},
        "grid": grid, "chosen": grid[choice.index]["label"],
        "chosen_settings": grid[choice.index]["settings"],
        "constraint_met": choice.constraint_met, "cost": total,
    }
    path = job.out / SELECTION_FILE
    if not path.is_file() or read_json(path, what="tuning selection") != selection:
        write_json_atomic(path, selection)
    met = "" if choice.constraint_met else " (no point kept MU above the floor: highest MU)"
    print(f"tune: {job.method} ({job.variant}) on {job.split}: chose {selection['chosen']}"
          f"{met} from {len(grid)} points, {total['seconds']:.0f} s")
    return selection


def unlearn_tuned(template: UnlearnConfig, selection: Path) -> dict[str, Any]:
    """Unlearn with ``template`` at the settings the tuning chose (``selection.json``)."""
    chosen = read_json(selection, what="tuning selection")["chosen_settings"]
    point = GridPoint(chosen["lr_scale"], chosen["epochs"],
                      tuple(sorted(chosen["options"].items())))
    return unlearn(point.applied(template))


def tuned_variant(variant: str) -> str:
    return variant + TUNED_SUFFIX


def tuning_folder(run_dir: Path, split: str, method: str, variant: str) -> Path:
    """Where a run keeps a method's grid (one folder per point) and its ``selection.json``."""
    return run_dir / "tune" / split / f"{method}-{variant}"


def read_selections(run_dir: Path, split: str, methods: tuple[str, ...],
                    variant: str) -> list[dict[str, Any]]:
    """Every method's ``selection.json`` in a run folder."""
    return [read_json(tuning_folder(run_dir, split, method, variant) / SELECTION_FILE,
                      what="tuning selection") for method in methods]


def tuning_summary(config: Any, run_dir: Path) -> str:
    """The tuning table of a run (``clearbench tune``'s closing summary) as Markdown."""
    from clearbench.report.render import markdown_table
    from clearbench.report.tables import tuning_table

    selections = read_selections(run_dir, config.tune.split, config.methods,
                                 config.main_variant)
    return markdown_table(tuning_table({"tuning": {"selections": selections}}))
