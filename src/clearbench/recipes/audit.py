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

import numpy as np
from pydantic import Field

from clearbench.config import PositiveInt, one_of, settings
from clearbench.data.examples import Example
from clearbench.data.loading import DataSource, has_config
from clearbench.data.preflight import Need, preflight
from clearbench.data.schema import EVALUATED_SPLITS, DataError
from clearbench.data.views import row_example
from clearbench.evaluation.aggregates import forgetting_progress
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
from clearbench.evaluation.precision import RULE, progress_under
from clearbench.evaluation.relearning import knowledge_draws, person_of
from clearbench.evaluation.statistics import LEVEL, REPLICATES, Evaluation, Resampler
from clearbench.evaluation.tasks import TASKS, TaskRow
from clearbench.io import read_json, stable_hash, write_json_atomic
from clearbench.models.loading import DTYPES, load_vlm
from clearbench.models.precision import (
    PACKAGINGS,
    PRECISIONS,
    apply_precision,
    package,
    unavailable,
)
from clearbench.recipes.evaluate import earlier_result
from clearbench.recipes.stage import data_source, model_key, trained_as
from clearbench.recipes.unlearn import ADAPTER
from clearbench.recipes.unlearn import MARKER as UNLEARNING_MARKER

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
AS_IS = "as_is"
TRANSFORMS = (AS_IS, *PRECISIONS, *PACKAGINGS)
"""Every state of the model the precision audit measures, in the order it reports them."""
NO_ADAPTER = (f"no LoRA adapter: MODEL/{ADAPTER} is absent and --adapter is not given "
              "(unlearn with --lora --save-adapter)")


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
    """Also measure forget knowledge K under every transform of :data:`TRANSFORMS`
    (:mod:`clearbench.models.precision`), beside K of the model as it is."""
    vanilla: str | None = None
    """``precision``: the vanilla model, the base of the packagings (the model the adapter was
    trained on); with it each transform gets forgetting progress P and the flag
    (:mod:`clearbench.evaluation.precision`)."""
    adapter: str | None = None
    """``precision``: the model's unmerged LoRA adapter (default: MODEL/adapter when present)."""
    max_new_tokens: PositiveInt = 32
    """Greedy generation length of the precision audit's forget tasks."""
    data_revision: str | None = None
    dtype: Annotated[str, one_of(DTYPES)] = "auto"
    device: str = "cpu"

    def data_needs(self) -> list[Need]:
        """The configs every audit reads (the QA answers' audit adds :func:`qa_needs`)."""
        needs = [Need("clear", self.forget_split), Need("clear", NONMEMBERS, why=NO_HOLDOUT)]
        return needs + [task.need(self.forget_split) for task in FORGET_TASKS] \
            if self.precision else needs

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


def describe_model(path: str, key: dict[str, Any]) -> dict[str, Any]:
    """A model as the audit files record it: path, content key and training record."""
    return {"path": path, "key": key, "trained_as": trained_as(path)}


def run_audit(config: AuditConfig) -> dict[str, Any]:
    """Membership audit of ``config.model`` against ``config.gold``; writes OUT/audit.json."""
    out = Path(config.out)
    source = data_source(config.data, config.data_revision)
    paths = {"model": config.model, "gold": config.gold}
    setting = {"k": config.k, "batch_size": config.batch_size, "replicates": config.replicates,
               "seed": config.seed, "level": LEVEL, "dtype": config.dtype}
    if config.precision:
        adapter = adapter_of(config)
        paths |= {name: path for name, path in (("vanilla", config.vanilla),
                                                ("adapter", adapter)) if path is not None}
        setting |= {"precision": True, "max_new_tokens": config.max_new_tokens,
                    "transforms": list(TRANSFORMS), "skipped": skipped_transforms(config)}
    keys = {name: model_key(path) for name, path in paths.items()}
    if "adapter" in keys and "vanilla" in keys:
        check_adapter_base(config.model, keys["vanilla"])
    header = {
        "schema": SCHEMA,
        "audit": "membership",
        **{name: describe_model(path, keys[name]) for name, path in paths.items()},
        "data": {"source": source.clear, "tofu": source.tofu,
                 "fingerprint": source.fingerprint()},  # captions and biography QA
        "forget_split": config.forget_split,
        "settings": setting,
    }
    identity = stable_hash([SCHEMA, keys, header["data"]["fingerprint"], config.forget_split,
                            setting])
    audit_file = out / AUDIT_FILE
    done = earlier_result(audit_file, "audit")
    if done is not None and done.get("identity") == identity:
        print(f"audit: {audit_file} is already done (identity {identity}); nothing to do")
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

    payload = header | {
        "identity": identity,
        "compared": {
            **compared(CAPTION, "clear"),
            "text": "caption, conditioned on the image and its fixed captioning question",
            "convention": "higher score = more likely a member; AUC of members vs "
                          "non-members; PrivLeak = (AUC_model - AUC_gold) / AUC_gold",
            "qa": {**compared(QA, "tofu"), "text": "answer to its question, no image"}
            if no_qa is None else {"skipped": no_qa},
        },
        "seconds": time.perf_counter() - started,
        **{ATTACK_KEYS[text]: {attack: audit_of([draws]).as_dict() for attack, draws in
                               attack_draws(rows, config.replicates, config.seed, text).items()}
           for text in groups},
        "rows": rows,
        **({"precision": precision_knowledge(config, source)} if config.precision else {}),
    }
    write_json_atomic(audit_file, payload)
    print_summary(payload)
    return payload


def adapter_of(config: AuditConfig) -> str | None:
    """The model's LoRA adapter: ``config.adapter``, else MODEL/adapter when present."""
    if config.adapter is not None:
        return config.adapter
    default = Path(config.model) / ADAPTER
    return str(default) if default.is_dir() else None


def skipped_transforms(config: AuditConfig) -> dict[str, str]:
    """The transforms of :data:`TRANSFORMS` that cannot run here, with the reason (decided
    before any model loads: a machine that can run more has another audit identity)."""
    adapter = adapter_of(config)
    packaging = (NO_ADAPTER if adapter is None else
                 "needs --vanilla, the model the adapter was trained on"
                 if config.vanilla is None else None)
    reasons = {kind: unavailable(kind, config.device) for kind in PRECISIONS}
    reasons |= {kind: packaging for kind in PACKAGINGS}
    return {kind: reason for kind, reason in reasons.items() if reason is not None}


def reference_transform(kind: str) -> str:
    """What vanilla and gold, which have no adapter, undergo for transform ``kind``: a
    packaging's round trip of its dtype, else ``kind`` itself."""
    return PACKAGINGS[kind][1] if kind in PACKAGINGS else kind


def check_adapter_base(model: str, vanilla_key: dict[str, Any]) -> None:
    """Refuse a vanilla model other than the one the model's unlearning started from (its
    record's ``model`` key), which the adapter must be merged into."""
    record = Path(model) / UNLEARNING_MARKER
    if not record.is_file():
        return
    base = read_json(record, what="unlearning record").get("model")
    if base is not None and base != vanilla_key:
        raise ValueError(f"--vanilla is not the model {model} was unlearned from (its "
                         f"{UNLEARNING_MARKER} records {base}, --vanilla is {vanilla_key}): "
                         "the adapter belongs on the model the unlearning started from")


def precision_evaluation(config: AuditConfig, rows: dict[str, list[TaskRow]], path: str,
                         kind: str) -> Evaluation:
    """The forget tasks' evaluation (``rows``: task name → rows) of the model at ``path``
    under transform ``kind`` (a packaging: ``path`` is the base the model's adapter goes on)."""
    settings = EvalSettings(batch_size=config.batch_size, max_new_tokens=config.max_new_tokens,
                            seed=config.seed)
    vlm = load_vlm(path, dtype=config.dtype, device=config.device)
    if kind in PACKAGINGS:
        package(vlm, adapter_of(config), kind)
    elif kind != AS_IS:
        apply_precision(vlm.model, kind)
    return {"tasks": {task.name: evaluate_task(vlm, task, rows[task.name], settings)
                      for task in FORGET_TASKS}}


def forget_rows(config: AuditConfig, source: DataSource) -> dict[str, list[TaskRow]]:
    """Task name → the rows of every forget task of the config's split."""
    return {task.name: task.rows(source, config.forget_split) for task in FORGET_TASKS}


def reference_kinds(config: AuditConfig) -> list[str]:
    """The transforms vanilla and gold undergo: every one of :data:`TRANSFORMS` that runs
    here but the packagings (theirs is their dtype's round trip)."""
    skipped = skipped_transforms(config)
    return [kind for kind in TRANSFORMS if kind not in skipped and kind not in PACKAGINGS]


def reference_evaluations(config: AuditConfig, rows: dict[str, list[TaskRow]],
                          ) -> dict[str, dict[str, Evaluation]]:
    """Vanilla's and gold's evaluations of the forget ``rows`` under every transform of
    :func:`reference_kinds` (none without a vanilla model)."""
    if config.vanilla is None:
        return {}
    return {name: {kind: precision_evaluation(config, rows, path, kind)
                   for kind in reference_kinds(config)}
            for name, path in (("vanilla", config.vanilla), ("gold", config.gold))}


def precision_knowledge(config: AuditConfig, source: DataSource,
                        references: dict[str, dict[str, Evaluation]] | None = None,
                        ) -> dict[str, Any]:
    """Forget knowledge K (spec §5) of the model as it is (``as_is``) and under every other
    transform of :data:`TRANSFORMS` that can run here, each with its change of K (> 0:
    knowledge came back); skipped ones with the reason. With a vanilla model also vanilla's and
    gold's K under the same transform (their packagings: the round trip of that dtype, they
    have no adapter), P on the person-bootstrap draws, its paired change from as is and the
    flag (:func:`~clearbench.evaluation.precision.progress_under`). ``references``: vanilla's
    and gold's :func:`reference_evaluations`, when already made (the same for every model)."""
    skipped = skipped_transforms(config)
    kinds = [kind for kind in TRANSFORMS if kind not in skipped]
    rows = forget_rows(config, source)
    model = {kind: precision_evaluation(
                 config, rows, config.vanilla if kind in PACKAGINGS else config.model, kind)
             for kind in kinds}
    resampler = Resampler(model[AS_IS], config.replicates, config.seed)
    k = {kind: knowledge_draws(evaluation, resampler) for kind, evaluation in model.items()}
    evaluations = reference_evaluations(config, rows) if references is None else references
    known = {name: {kind: knowledge_draws(by_kind[kind], resampler)
                    for kind in reference_kinds(config)}
             for name, by_kind in evaluations.items()}

    def progress(kind: str) -> np.ndarray:
        reference = reference_transform(kind)
        return forgetting_progress(k[kind], known["vanilla"][reference],
                                   known["gold"][reference])

    transforms: dict[str, dict[str, Any]] = {kind: {"skipped": reason}
                                             for kind, reason in skipped.items()}
    for kind in kinds:
        transforms[kind] = {"forget_knowledge": float(k[kind][0]),
                            "change": float(k[kind][0] - k[AS_IS][0])}
        if known:
            transforms[kind] |= {f"forget_knowledge_{name}":
                                 float(draws[reference_transform(kind)][0])
                                 for name, draws in known.items()}
            transforms[kind] |= progress_under(progress(AS_IS), progress(kind))
    transforms = {kind: transforms[kind] for kind in TRANSFORMS}
    flags = {"flagged": [kind for kind, result in transforms.items() if result.get("flagged")],
             "rule": RULE} if known else {}
    return {"transforms": transforms, **flags}


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
    if "precision" not in audit:
        return
    print(f"{'transform':14} {'K':>6} {'change':>7} {'P':>6}")
    for kind, result in audit["precision"]["transforms"].items():
        if "skipped" in result:
            print(f"{kind:14} skipped: {result['skipped']}")
            continue
        progress = result.get("progress", {}).get("mean")
        flag = "  FLAGGED: P fell" if result.get("flagged") else ""
        print(f"{kind:14} {result['forget_knowledge']:6.3f} {result['change']:+7.3f} "
              f"{number(progress, '6.2f'):>6}{flag}")



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
