"""``clearbench cv run``: the whole vision-only track, top to bottom.

1. Data: the given CLEAR folder or hub id, or a CLEAR-mini generated into ``OUT/data``.
2. Pretrain the face-ID network on the celebrity pool (``real_faces``).
3. For the target (replica 0) and each shadow replica (1..``shadows``, other seeds): fine-tune
   the vanilla network on every CLEAR person, retrain the gold network without the forget
   persons (both from the pretrained network, new head), unlearn the forget persons from the
   vanilla network with every method, and score each network (identification accuracies,
   membership scores, U-MIA).
4. U-LiRA per method from the replicas' forget-image scores; ``cv_results.json`` and
   ``cv_table.md`` (the paper's Table 2).

Each model folder records a hash of its settings and inputs in ``stage.json`` (written last,
atomically): a finished stage is skipped on a re-run, a stage whose settings changed is redone.
Its ``scores.json`` records the network's hash and the scoring version, and is recomputed
(from the saved network, in seconds) when either changed.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, field, replace
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch

from clearbench.config import NonNegativeInt, PositiveFloat, PositiveInt, one_of, settings
from clearbench.cv.data import FaceData, is_mini, load_faces
from clearbench.cv.methods import CV_METHODS, build_cv_method
from clearbench.cv.metrics import (
    enrol,
    identification_accuracy,
    membership_scores,
    ulira_accuracy,
    umia_accuracy,
)
from clearbench.cv.model import PRESETS, FaceNet, FaceNetConfig, load_facenet
from clearbench.cv.train import Schedule, embed, fit, unlearn
from clearbench.data.schema import FORGET_SPLITS
from clearbench.data.synth import synthesize
from clearbench.io import read_json, stable_hash, write_json_atomic, write_text_atomic
from clearbench.recipes.stage import StaleStage, data_source, finished
from clearbench.report.render import markdown_table
from clearbench.report.tables import cv_table

SCHEMA = 1
MARKER = "stage.json"
SCORES = "scores.json"
SCORING_VERSION = 3
"""Bumped whenever :func:`score` changes: stored scores of another version are recomputed."""
RESULTS_FILE = "cv_results.json"
TABLE_FILE = "cv_table.md"
METRICS = ("forget_accuracy", "retain_accuracy", "holdout_accuracy", "u_lira", "u_mia")
"""The numbers of a row: U-LiRA across replicas, the others the mean over the target and
shadow replicas (on mini one replica's forget accuracy rests on 15 images; ``replicas`` keeps
each replica's value)."""
ROWS = ("vanilla", "gold")
"""The rows every table has besides the unlearning methods."""


@settings
class CVConfig:
    """Settings of the vision-only track (defaults: CLEAR-mini on 2 CPU cores)."""

    out: Path
    data: str | None = None
    """CLEAR folder or hub id; None: generate CLEAR-mini into ``OUT/data``."""
    data_revision: str | None = None
    forget_split: Annotated[str, one_of(FORGET_SPLITS)] = "forget10"
    network: Annotated[str, one_of(PRESETS)] = "mini"
    """``mini`` (small ResNet, 64 px) or ``resnet18`` (the paper's, 112 px)."""
    network_options: dict[str, Any] = field(default_factory=dict)
    """Overrides of the network preset: hidden_sizes, depths, embedding_dim, scale, margin,
    image_size."""
    methods: tuple[str, ...] = tuple(CV_METHODS)
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    shadows: PositiveInt = 3
    """Shadow replicas for U-LiRA (the paper used 128)."""
    lira_fixed_variance: bool = True
    """One score variance pooled over the examples (LiRA's variant for few shadow models);
    false: a variance per example (the paper's 128 shadows can afford it)."""
    seed: int = 0
    enrol_images: PositiveInt = 5
    holdout_persons: NonNegativeInt = 10
    """Retain persons held out on data without a ``holdout`` config (the hub)."""
    pretrain_renders: NonNegativeInt = 16
    """Extra rendered images per celebrity for pretraining (CLEAR-mini only; 0 elsewhere)."""
    pretrain_epochs: PositiveInt = 30
    finetune_epochs: PositiveInt = 30
    unlearn_epochs: PositiveInt = 20
    batch_size: PositiveInt = 32
    unlearn_batch_size: PositiveInt = 8
    lr: PositiveFloat = 2e-3
    unlearn_lr: PositiveFloat = 1e-3

    def __post_init__(self) -> None:
        for name in (*self.methods, *self.method_options):
            if name not in CV_METHODS:
                raise ValueError(f"unknown CV method {name!r}; known: {', '.join(CV_METHODS)}")
        for name in self.methods:  # options are checked before any training
            build_cv_method(name, self.method_options.get(name))

    def network_config(self, classes: int) -> FaceNetConfig:
        """The network preset with ``network_options`` applied and ``classes`` head rows."""
        try:
            return replace(PRESETS[self.network], classes=classes, **{
                k: tuple(v) if isinstance(v, list) else v for k, v in self.network_options.items()
            })
        except TypeError as err:
            raise ValueError(f"network_options: {err}") from None


def run_cv(config: CVConfig) -> dict[str, Any]:
    """Run (or resume) the vision-only track; return the results written to
    ``OUT/cv_results.json``."""
    out = config.out
    started = time.perf_counter()
    data = config.data
    if data is None:
        data = str(out / "data")
        if not (Path(data) / "datacard.json").is_file():
            synthesize(data)
    source = data_source(data, config.data_revision)
    renders = config.pretrain_renders if is_mini(source) else 0  # only CLEAR-mini renders
    faces = load_faces(source, config.forget_split, image_size=config.network_config(1).image_size,
                       enrol_images=config.enrol_images, holdout_persons=config.holdout_persons,
                       pretrain_renders=renders)
    identity = {"data": source.fingerprint(), "forget_split": config.forget_split,
                "network": config.network, "network_options": config.network_options,
                "enrol_images": config.enrol_images, "holdout_persons": config.holdout_persons,
                "pretrain_renders": renders}
    timing: dict[str, float] = {}

    def timed(name: str, seconds: float) -> None:
        timing[name] = timing.get(name, 0.0) + seconds

    pretrain_schedule = Schedule(config.pretrain_epochs, config.batch_size, config.lr)
    pretrained, pretrain_hash, seconds = stage(
        out / "pretrain", {**identity, "schedule": asdict(pretrain_schedule), "seed": config.seed},
        lambda: _pretrain(config, faces, pretrain_schedule))
    timed("pretrain", seconds)

    finetune = Schedule(config.finetune_epochs, config.batch_size, config.lr)
    forgetting = Schedule(config.unlearn_epochs, config.unlearn_batch_size, config.unlearn_lr)
    replicas = []
    for replica in range(config.shadows + 1):
        seed = config.seed + replica
        folder = out / f"replica-{replica}"
        common = {"pretrained": pretrain_hash, "seed": seed}
        vanilla, vanilla_hash, seconds = stage(
            folder / "vanilla", {**common, "role": "vanilla", "schedule": asdict(finetune)},
            lambda seed=seed: _finetune(pretrained, faces, (*faces.forget, *faces.retain),
                                        finetune, seed, "vanilla"))
        timed("vanilla", seconds)
        timed("scoring", scored(folder / "vanilla", vanilla, vanilla_hash, faces))
        gold, gold_hash, seconds = stage(
            folder / "gold", {**common, "role": "gold", "schedule": asdict(finetune)},
            lambda seed=seed: _finetune(pretrained, faces, faces.retain, finetune, seed, "gold"))
        timed("gold", seconds)
        timed("scoring", scored(folder / "gold", gold, gold_hash, faces))
        for name in config.methods:
            options = build_cv_method(name, config.method_options.get(name)).options()
            model, model_hash, seconds = stage(
                folder / name,
                {"vanilla": vanilla_hash, "method": name, "options": options,
                 "schedule": asdict(forgetting), "seed": seed},
                lambda name=name, seed=seed, vanilla=vanilla: _unlearn(
                    vanilla, faces, name, config.method_options.get(name), forgetting, seed))
            timed(name, seconds)
            timed("scoring", scored(folder / name, model, model_hash, faces))
        replicas.append(folder)

    results = collect(config, replicas, identity, timing)
    results["seconds"] = time.perf_counter() - started
    write_json_atomic(out / RESULTS_FILE, results)
    table = markdown_table(cv_table(results))
    write_text_atomic(out / TABLE_FILE, table + "\n")
    print(table)
    return results


def stage(folder: Path, settings: dict[str, Any],
          build: Callable[[], tuple[FaceNet, dict[str, Any]]]) -> tuple[FaceNet, str, float]:
    """The network of a stage folder: loaded if finished with these settings, else built by
    ``build()`` (the network and its record) and saved. Returns the network, the stage hash
    and the seconds spent."""
    settings_hash = stable_hash(settings)
    started = time.perf_counter()
    try:
        if finished(folder / MARKER, settings_hash, what="CV stage"):
            return load_facenet(folder), settings_hash, 0.0
    except StaleStage:
        print(f"cv: {folder}: settings changed; redoing it")
        shutil.rmtree(folder)
    model, record = build()
    shutil.rmtree(folder, ignore_errors=True)
    model.save(folder)
    write_json_atomic(folder / MARKER, {"settings_hash": settings_hash, "settings": settings,
                                        **record, "seconds": time.perf_counter() - started})
    return model, settings_hash, time.perf_counter() - started


def scored(folder: Path, model: FaceNet, model_hash: str, faces: FaceData) -> float:
    """Write ``scores.json`` of a stage's network unless it holds the scores of this network
    by this version of the scoring; the seconds spent."""
    path = folder / SCORES
    key = {"scoring_version": SCORING_VERSION, "model": model_hash}
    if path.is_file() and all(read_json(path, what="CV scores").get(k) == v
                              for k, v in key.items()):
        return 0.0
    started = time.perf_counter()
    write_json_atomic(path, {**key, **score(model, faces)})
    return time.perf_counter() - started


def _pretrain(config: CVConfig, faces: FaceData,
              schedule: Schedule) -> tuple[FaceNet, dict[str, Any]]:
    torch.manual_seed(config.seed)
    model = FaceNet(config.network_config(len(faces.celebrities)))
    losses = fit(model, faces.pretrain, schedule, config.seed, "cv pretrain")
    return model, {"losses": losses}


def _finetune(pretrained: FaceNet, faces: FaceData, persons: tuple[int, ...],
              schedule: Schedule, seed: int, role: str) -> tuple[FaceNet, dict[str, Any]]:
    """Vanilla (every CLEAR person) or gold (retain persons) from the pretrained network; the
    head has a class per CLEAR person either way (the gold's forget classes stay untrained)."""
    model = pretrained.with_head(faces.classes, seed)
    losses = fit(model, faces.training(persons), schedule, seed, f"cv {role} (seed {seed})")
    return model, {"losses": losses}


def _unlearn(vanilla: FaceNet, faces: FaceData, name: str, options: dict[str, Any] | None,
             schedule: Schedule, seed: int) -> tuple[FaceNet, dict[str, Any]]:
    method = build_cv_method(name, options)
    model = _copy(vanilla)
    forget = faces.training(faces.forget)
    calibration = method.calibrate(vanilla, forget.images[:schedule.batch_size])
    losses = unlearn(model, method, vanilla, forget, faces.training(faces.retain), schedule,
                     seed, f"cv {name} (seed {seed})")
    finite = bool(np.all(np.isfinite(losses)))
    return model, {"losses": losses, "options": method.options(), "calibration": calibration,
                   "finite": finite}


def _copy(model: FaceNet) -> FaceNet:
    """An independent copy of ``model`` (the network to unlearn; θ₀ stays as it is)."""
    copy = FaceNet(model.config)
    copy.load_state_dict(model.state_dict())
    return copy


def score(model: FaceNet, faces: FaceData) -> dict[str, Any]:
    """Identification accuracies, forget/holdout membership scores and U-MIA of a network;
    ``{"status": "diverged"}`` for one whose embeddings are not finite."""
    queries = embed(model, faces.queries.images).numpy()
    labels = faces.queries.labels.numpy()
    enrolment = embed(model, faces.enrolment.images).numpy()
    if not (np.isfinite(queries).all() and np.isfinite(enrolment).all()):
        return {"status": "diverged"}
    identities, means = enrol(enrolment, faces.enrolment.labels.numpy())

    def part(persons: tuple[int, ...]) -> np.ndarray:
        return np.isin(labels, persons)

    record: dict[str, Any] = {"status": "ok"}
    for name, persons in (("forget", faces.forget), ("retain", faces.retain),
                          ("holdout", faces.holdout)):
        mask = part(persons)
        record[f"{name}_accuracy"] = identification_accuracy(queries[mask], labels[mask],
                                                             identities, means)
        record[f"{name}_scores"] = membership_scores(queries[mask], labels[mask]).tolist()
    record["u_mia"] = umia_accuracy(np.array(record["forget_scores"]),
                                    np.array(record["holdout_scores"]))
    return record


def collect(config: CVConfig, replicas: list[Path], identity: dict[str, Any],
            timing: dict[str, float]) -> dict[str, Any]:
    """The results of every row from the replicas' score files (U-LiRA across replicas);
    ``seconds`` of a row: its stages' training time over all replicas, ``timing``: the time
    this invocation spent per kind of stage (0 for stages already done)."""
    gold_scores = [_scores(r / "gold") for r in replicas]
    rows = []
    for name in (*ROWS, *config.methods):
        per_replica = [_scores(r / name) for r in replicas]
        row: dict[str, Any] = {
            "method": name, "status": "ok",
            "options": _marker(replicas[0] / name).get("options"),
            "seconds": sum(_marker(r / name)["seconds"] for r in replicas),
        }
        if any(s["status"] != "ok" for s in [*per_replica, *gold_scores]):
            rows.append({**row, "status": "diverged"})  # no numbers: "–" in the table
            continue
        rows.append({
            **row,
            **{key: float(np.mean([s[key] for s in per_replica])) for key in METRICS
               if key != "u_lira"},
            "u_lira": ulira_accuracy(np.array([s["forget_scores"] for s in per_replica]),
                                     np.array([s["forget_scores"] for s in gold_scores]),
                                     config.lira_fixed_variance),
            "replicas": {key: [s[key] for s in per_replica] for key in METRICS
                         if key != "u_lira"},
        })
    settings = asdict(config)
    settings["out"] = str(config.out)
    return {"schema": SCHEMA, "settings": settings, "data": identity["data"],
            "timing": timing, "rows": rows}


def _marker(folder: Path) -> dict[str, Any]:
    return read_json(folder / MARKER, what="CV stage record")


def _scores(folder: Path) -> dict[str, Any]:
    return read_json(folder / SCORES, what="CV scores")
