"""``clearbench audit``: does the model still know the forget persons? (issue 20, item 1).

Membership inference, MUSE's privacy leakage (docs/audits.md), top to bottom: read the
members (the forget persons' captioned images, CLEAR config ``forgetNN``) and the non-members
(CLEAR-mini's ``holdout`` persons, never trained on by any model), each as its fixed
captioning prompt + image → caption; score every caption's tokens with the model and with the
gold model; compute every attack's per-example scores (higher = member), each model's AUC, and
PrivLeak = (AUC_model − AUC_gold) / AUC_gold with person-bootstrap intervals; write
``OUT/audit.json``. A finished ``audit.json`` of the same models, data and settings is not
redone.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from clearbench.config import PositiveInt, one_of, settings
from clearbench.data.examples import Example
from clearbench.data.loading import DataSource
from clearbench.data.preflight import Need, preflight
from clearbench.data.schema import EVALUATED_SPLITS
from clearbench.data.views import row_example
from clearbench.evaluation.aggregates import forget_knowledge
from clearbench.evaluation.evaluate import EvalSettings, evaluate_task
from clearbench.evaluation.membership import (
    ATTACKS,
    MIN_K,
    TokenScores,
    attack_scores,
    audit_of,
    privleak_draws,
)
from clearbench.evaluation.membership_scores import token_scores
from clearbench.evaluation.statistics import LEVEL, REPLICATES
from clearbench.evaluation.tasks import TASKS
from clearbench.io import stable_hash, write_json_atomic
from clearbench.models.loading import DTYPES, load_vlm
from clearbench.models.precision import PRECISIONS, apply_precision
from clearbench.recipes.evaluate import earlier_result
from clearbench.recipes.stage import data_source, model_key, trained_as

AUDIT_FILE = "audit.json"
FORGET_TASKS = [task for task in TASKS if task.kind == "forget"]
SCHEMA = 1
NONMEMBERS = "holdout"
"""The CLEAR-mini config of persons no model was trained on (the hub data set has none)."""
NO_HOLDOUT = ("the membership audit's non-members: persons no model was trained on; only "
              "CLEAR-mini has them (config `holdout`), therem/CLEAR has none, and real data "
              "needs held-out persons and a gold model trained without them (docs/audits.md)")


@settings(frozen=True)
class AuditConfig:
    model: str
    gold: str
    data: str
    out: Path
    forget_split: Annotated[str, one_of(EVALUATED_SPLITS)] = "forget10"
    k: Annotated[float, Field(gt=0, le=1)] = MIN_K
    """Min-K % and Min-K %++: the fraction of lowest-scoring tokens averaged."""
    batch_size: PositiveInt = 16
    replicates: PositiveInt = REPLICATES
    seed: int = 0
    """Seed of the person bootstrap."""
    precision: bool = False
    """Also measure forget knowledge K after int8 quantization and bf16 / fp16 round trips
    (:mod:`clearbench.models.precision`), beside K of the model as it is."""
    max_new_tokens: PositiveInt = 32
    """Greedy generation length of the precision audit's forget tasks."""
    data_revision: str | None = None
    dtype: Annotated[str, one_of(DTYPES)] = "auto"
    device: str = "cpu"

    def data_needs(self) -> list[Need]:
        needs = [Need("clear", self.forget_split), Need("clear", NONMEMBERS, why=NO_HOLDOUT)]
        return needs + [task.need(self.forget_split) for task in FORGET_TASKS] \
            if self.precision else needs


def _examples(dataset: Any, config: str) -> list[Example]:
    """Caption rows as prompt + image → caption (the fixed captioning question of each row)."""
    return [row_example(row, f"{config}/{i}") for i, row in enumerate(dataset)]


def describe_model(path: str, key: dict[str, Any]) -> dict[str, Any]:
    """A model as the audit files record it: path, content key and training record."""
    return {"path": path, "key": key, "trained_as": trained_as(path)}


def run_audit(config: AuditConfig) -> dict[str, Any]:
    """Membership audit of ``config.model`` against ``config.gold``; writes OUT/audit.json."""
    out = Path(config.out)
    source = data_source(config.data, config.data_revision)
    keys = {"model": model_key(config.model), "gold": model_key(config.gold)}
    setting = {"k": config.k, "batch_size": config.batch_size, "replicates": config.replicates,
               "seed": config.seed, "level": LEVEL, "dtype": config.dtype,
               **({"precision": True, "max_new_tokens": config.max_new_tokens}
                  if config.precision else {})}
    header = {
        "schema": SCHEMA,
        "audit": "membership",
        "model": describe_model(config.model, keys["model"]),
        "gold": describe_model(config.gold, keys["gold"]),
        "data": {"source": source.clear, "fingerprint": source.fingerprint()["clear"]},
        "forget_split": config.forget_split,
        "settings": setting,
    }
    identity = stable_hash([keys, header["data"]["fingerprint"], config.forget_split, setting])
    audit_file = out / AUDIT_FILE
    done = earlier_result(audit_file, "audit")
    if done is not None and done.get("identity") == identity:
        print(f"audit: {audit_file} is already done (identity {identity}); nothing to do")
        return done

    loaded = preflight(source, config.data_needs())  # bad data fails before any model loads
    started = time.perf_counter()
    members = _examples(loaded[Need("clear", config.forget_split)], config.forget_split)
    nonmembers = _examples(loaded[Need("clear", NONMEMBERS)], NONMEMBERS)
    examples = members + nonmembers
    scored: dict[str, list[TokenScores]] = {}
    for name, path in (("gold", config.gold), ("model", config.model)):
        vlm = load_vlm(path, dtype=config.dtype, device=config.device)
        scored[name] = token_scores(vlm, examples, batch_size=config.batch_size)
        del vlm
    gold_scores = scored["gold"]
    per_model = {
        name: [attack_scores(s, example.answer, g, config.k)
               for s, example, g in zip(scored[name], examples, gold_scores, strict=True)]
        for name in ("model", "gold")
    }
    split = len(members)
    persons = {"members": [e.person for e in members],
               "nonmembers": [e.person for e in nonmembers]}
    rows = [{"id": example.id, "person": example.person, "member": i < split,
             "model": per_model["model"][i], "gold": per_model["gold"][i]}
            for i, example in enumerate(examples)]
    attacks = {attack: audit_of([draws]).as_dict()
               for attack, draws in attack_draws(rows, config.replicates, config.seed).items()}
    payload = header | {
        "identity": identity,
        "compared": {
            "members": {"config": config.forget_split, "rows": len(members),
                        "persons": sorted(set(persons["members"]))},
            "nonmembers": {"config": NONMEMBERS, "rows": len(nonmembers),
                           "persons": sorted(set(persons["nonmembers"]))},
            "text": "caption, conditioned on the image and its fixed captioning question",
            "convention": "higher score = more likely a member; AUC of members vs "
                          "non-members; PrivLeak = (AUC_model - AUC_gold) / AUC_gold",
        },
        "seconds": time.perf_counter() - started,
        "attacks": attacks,
        "rows": rows,
        **({"precision": precision_knowledge(config, source)} if config.precision else {}),
    }
    write_json_atomic(audit_file, payload)
    print_summary(payload)
    return payload


def precision_knowledge(config: AuditConfig, source: DataSource) -> dict[str, Any]:
    """Forget knowledge K of the model as it is (``as_is``) and after each transform of
    :data:`~clearbench.models.precision.PRECISIONS`, on the forget tasks (spec §5), and each
    transform's change of K (> 0: knowledge came back)."""
    settings = EvalSettings(batch_size=config.batch_size, max_new_tokens=config.max_new_tokens,
                            seed=config.seed)
    knowledge = {}
    for kind in ("as_is", *PRECISIONS):
        vlm = load_vlm(config.model, dtype=config.dtype, device=config.device)
        if kind != "as_is":
            apply_precision(vlm.model, kind)
        summaries = {task.name: evaluate_task(vlm, task, task.rows(source, config.forget_split),
                                              settings)
                     for task in FORGET_TASKS}
        knowledge[kind] = forget_knowledge(summaries)
        del vlm
    return {kind: {"forget_knowledge": k, "change": k - knowledge["as_is"]}
            for kind, k in knowledge.items()}


def print_summary(audit: dict[str, Any]) -> None:
    print(f"{'attack':16} {'AUC model':>10} {'AUC gold':>9} {'PrivLeak':>9}  95 % interval")
    def number(value: float | None, form: str) -> str:
        return "–" if value is None else format(value, form)

    for name, result in audit["attacks"].items():
        leak = result["privleak"]
        print(f"{name:16} {number(result['auc_model']['mean'], '10.3f')} "
              f"{number(result['auc_gold']['mean'], '9.3f')} {number(leak['mean'], '+9.3f')}  "
              f"[{number(leak['low'], '+.3f')}, {number(leak['high'], '+.3f')}]")
    for kind, result in audit.get("precision", {}).items():
        print(f"forget knowledge K {kind:6} {result['forget_knowledge']:.3f} "
              f"(change {result['change']:+.3f})")



def attack_draws(rows: list[dict[str, Any]], replicates: int, seed: int) -> dict[str, Any]:
    """Per attack, the AUCs of the model and of gold on the point and on each person-bootstrap
    replicate (:func:`~clearbench.evaluation.membership.privleak_draws`), from the per-example
    scores (the ``rows`` of an ``audit.json``); the same ``seed`` draws the same persons for
    every model."""
    members = [row for row in rows if row["member"]]
    nonmembers = [row for row in rows if not row["member"]]

    def groups(name: str, attack: str) -> dict[str, list[float]]:
        return {"members": [row[name][attack] for row in members],
                "nonmembers": [row[name][attack] for row in nonmembers]}

    return {attack: privleak_draws(groups("model", attack), groups("gold", attack),
                                   [row["person"] for row in members],
                                   [row["person"] for row in nonmembers],
                                   replicates=replicates, seed=seed)
            for attack in ATTACKS}
