"""``clearbench audit``: does the model still know the forget persons? (issue 20, item 1).

Membership inference, MUSE's privacy leakage (docs/audits.md), top to bottom: read the
members, the forget persons' rows, and the non-members, CLEAR-mini's ``holdout`` persons' rows
(never trained on by any model), in two kinds of text: captions (CLEAR ``forgetNN`` and
``holdout``, each as its fixed captioning prompt + image → caption) and, where the data has
the holdout persons' QA, biography answers (TOFU ``forgetNN`` and ``holdout``, question →
answer, no image); score every text's tokens with the model and with the gold model; compute
every attack's per-example scores (higher = member), each model's AUC and PrivLeak =
(AUC_model − AUC_gold) / AUC_gold with person-bootstrap intervals, per kind of text; write
``OUT/audit.json``. A finished ``audit.json`` of the same models, data and settings is not
redone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from clearbench.config import PositiveInt, one_of, settings
from clearbench.data.examples import Example
from clearbench.data.loading import DataSource, has_config
from clearbench.data.preflight import Need, preflight
from clearbench.data.schema import EVALUATED_SPLITS, DataError
from clearbench.data.views import row_example
from clearbench.evaluation.membership import (
    ATTACKS,
    MIN_K,
    TokenScores,
    attack_scores,
    audit_of,
    privleak_draws,
)
from clearbench.evaluation.membership_scores import token_scores
from clearbench.evaluation.relearning import person_of
from clearbench.evaluation.statistics import LEVEL, REPLICATES
from clearbench.evaluation.tasks import TASKS, TaskRow
from clearbench.models.loading import DTYPES, load_vlm
from clearbench.recipes.auditfile import AuditFile
from clearbench.recipes.stage import data_source

AUDIT_FILE = "audit.json"
FORGET_TASKS = [task for task in TASKS if task.kind == "forget"]
SCHEMA = 2
"""2: the QA answers' audit (``qa_attacks``) and each row's ``text``."""
NONMEMBERS = "holdout"
"""The CLEAR-mini config (CLEAR: images and captions, TOFU: biography QA) of persons no model
was trained on (the hub data sets have none)."""
NO_HOLDOUT = ("the membership audit's non-members: persons no model was trained on; only "
              "CLEAR-mini has them (config `holdout`), therem/CLEAR has none, and real data "
              "needs held-out persons and a gold model trained without them (docs/audits.md)")
CAPTION, QA = "caption", "qa"
"""The kinds of text the audit scores, as each row's ``text`` says."""
ATTACK_KEYS = {CAPTION: "attacks", QA: "qa_attacks"}
"""The audit.json key of each kind of text's attacks."""


def forget_rows(source: DataSource, forget_split: str) -> dict[str, list[TaskRow]]:
    """Task name → the rows of every forget task (:data:`FORGET_TASKS`) of ``forget_split``."""
    return {task.name: task.rows(source, forget_split) for task in FORGET_TASKS}


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
    data_revision: str | None = None
    dtype: Annotated[str, one_of(DTYPES)] = "auto"
    device: str = "cpu"

    def data_needs(self) -> list[Need]:
        """The configs every audit reads (the QA answers' audit adds :func:`qa_needs`)."""
        return [Need("clear", self.forget_split), Need("clear", NONMEMBERS, why=NO_HOLDOUT)]

    def qa_needs(self) -> list[Need]:
        """The TOFU configs of the QA answers' audit: the forget split's QA and the holdout
        persons'."""
        return [Need("tofu", self.forget_split), Need("tofu", NONMEMBERS)]


def _examples(dataset: Any, config: str) -> list[Example]:
    """Caption rows as prompt + image → caption (the fixed captioning question of each row)."""
    return [row_example(row, f"{config}/{i}") for i, row in enumerate(dataset)]


def qa_examples(rows: Sequence[dict[str, Any]], config: str,
                persons: Sequence[str]) -> list[Example]:
    """TOFU QA rows as question → answer without an image, ids ``tofu/CONFIG/ROW``, each the
    example of the one person of ``persons`` its question or answer names (TOFU rows have no
    name column)."""
    examples = []
    for i, row in enumerate(rows):
        example = row_example(row, f"tofu/{config}/{i}")
        person = person_of(persons, "", example.prompt, example.answer)
        if person is None:
            raise DataError(f"TOFU config {config!r} row {i} ({example.prompt!r}) names none "
                            f"or several of the persons of CLEAR config {config!r} "
                            f"({', '.join(sorted(set(persons)))}); whom is it about?")
        examples.append(replace(example, person=person))
    return examples


def qa_absence(source: DataSource) -> str | None:
    """Why the QA answers cannot be audited on ``source`` (None: they can): the TOFU data
    lists no holdout persons' QA."""
    if has_config(source, "tofu", NONMEMBERS):
        return None
    return (f"the TOFU data {source.tofu} has no config {NONMEMBERS!r} (the holdout persons' "
            "QA, the non-members of the QA answers' audit: CLEAR-mini's data generator "
            "version 4 or later writes it; locuslab/TOFU has none); captions only")


def run_audit(config: AuditConfig) -> dict[str, Any]:
    """Membership audit of ``config.model`` against ``config.gold``; writes OUT/audit.json."""
    source = data_source(config.data, config.data_revision)
    setting = {"k": config.k, "batch_size": config.batch_size, "replicates": config.replicates,
               "seed": config.seed, "level": LEVEL, "dtype": config.dtype}
    file = AuditFile.open(Path(config.out) / AUDIT_FILE, "membership", SCHEMA, source,
                          {"model": config.model, "gold": config.gold}, config.forget_split,
                          setting)
    if (done := file.done()) is not None:
        return done

    no_qa = qa_absence(source)
    needs = config.data_needs() + (config.qa_needs() if no_qa is None else [])
    loaded = preflight(source, needs)  # bad data fails before any model loads
    started = time.perf_counter()
    groups = {CAPTION: {"members": _examples(loaded[Need("clear", config.forget_split)],
                                             config.forget_split),
                        "nonmembers": _examples(loaded[Need("clear", NONMEMBERS)], NONMEMBERS)}}
    if no_qa is None:
        groups[QA] = {
            group: qa_examples(loaded[Need("tofu", name)], name,
                               [e.person for e in groups[CAPTION][group]])
            for group, name in (("members", config.forget_split), ("nonmembers", NONMEMBERS))}
    texts = [(text, group == "members", example) for text, of_text in groups.items()
             for group, examples in of_text.items() for example in examples]
    examples = [example for _, _, example in texts]
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
    rows = [{"id": example.id, "person": example.person, "member": member, "text": text,
             "model": per_model["model"][i], "gold": per_model["gold"][i]}
            for i, (text, member, example) in enumerate(texts)]

    def compared(text: str, dataset: str) -> dict[str, Any]:
        return {group: {"dataset": dataset, "config": name, "rows": len(groups[text][group]),
                        "persons": sorted({e.person for e in groups[text][group]})}
                for group, name in (("members", config.forget_split), ("nonmembers", NONMEMBERS))}

    payload = file.write(time.perf_counter() - started, {
        "compared": {
            **compared(CAPTION, "clear"),
            "text": "caption, conditioned on the image and its fixed captioning question",
            "convention": "higher score = more likely a member; AUC of members vs "
                          "non-members; PrivLeak = (AUC_model - AUC_gold) / AUC_gold",
            "qa": {**compared(QA, "tofu"), "text": "answer to its question, no image"}
            if no_qa is None else {"skipped": no_qa},
        },
        **{ATTACK_KEYS[text]: {attack: audit_of([draws]).as_dict() for attack, draws in
                               attack_draws(rows, config.replicates, config.seed, text).items()}
           for text in groups},
        "rows": rows,
    })
    print_summary(payload)
    return payload


def print_summary(audit: dict[str, Any]) -> None:
    def number(value: float | None, form: str) -> str:
        return "–" if value is None else format(value, form)

    for text, key in ATTACK_KEYS.items():
        if key not in audit:
            print(f"{text}: skipped: {audit['compared'][text]['skipped']}")
            continue
        print(f"{text:16} {'AUC model':>10} {'AUC gold':>9} {'PrivLeak':>9}  95 % interval")
        for name, result in audit[key].items():
            leak = result["privleak"]
            print(f"  {name:14} {number(result['auc_model']['mean'], '10.3f')} "
                  f"{number(result['auc_gold']['mean'], '9.3f')} "
                  f"{number(leak['mean'], '+9.3f')}  "
                  f"[{number(leak['low'], '+.3f')}, {number(leak['high'], '+.3f')}]")



def attack_draws(rows: list[dict[str, Any]], replicates: int, seed: int,
                 text: str = CAPTION) -> dict[str, Any]:
    """Per attack, the AUCs of the model and of gold on the point and on each person-bootstrap
    replicate (:func:`~clearbench.evaluation.membership.privleak_draws`), from the per-example
    scores of one kind of ``text`` (the ``rows`` of an ``audit.json`` whose ``text`` it is:
    ``caption`` or ``qa``); the same ``seed`` draws the same persons for every model and both
    kinds of text."""
    if text not in ATTACK_KEYS:
        raise ValueError(f"unknown kind of text {text!r}; valid: {', '.join(ATTACK_KEYS)}")
    of_text = [row for row in rows if row["text"] == text]
    if not of_text:
        raise ValueError(f"no {text} rows to audit")
    members = [row for row in of_text if row["member"]]
    nonmembers = [row for row in of_text if not row["member"]]

    def groups(name: str, attack: str) -> dict[str, list[float]]:
        return {"members": [row[name][attack] for row in members],
                "nonmembers": [row[name][attack] for row in nonmembers]}

    return {attack: privleak_draws(groups("model", attack), groups("gold", attack),
                                   [row["person"] for row in members],
                                   [row["person"] for row in nonmembers],
                                   replicates=replicates, seed=seed)
            for attack in ATTACKS}
