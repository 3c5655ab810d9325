"""The report's tables as pure functions of a results payload; every cell is already text.

A score cell is ``mean [low, high]``: the mean over the seeds and the run's interval (3
decimals; a KS p-value below 0.001 in compact scientific form, e.g. ``7.7e-4 [1.2e-6, 0.031]``);
the mean alone when it has no interval; "–" when there is no value. Every table of scores
lists vanilla, gold and the reseeded gold model (the noise floor) before the methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clearbench.evaluation.worstcase import HEADLINE
from clearbench.report import crosstrack
from clearbench.report.results import (
    BASELINES,
    DASH,
    MODALITIES,
    P_VALUES,
    Entry,
    Interval,
    audited,
    combine,
    display_name,
    estimate,
    find_entry,
    fmt,
    fmt_interval,
    fmt_p,
    forget_splits,
    interval_of,
    is_number,
    label,
    level,
    main_variant,
    methods,
    of_split,
    score_names,
    series,
    unique,
    variants,
)

MAIN_SCORES = (
    ("forget_knowledge", "K↓"), ("forgetting_progress", "P (1 = gold)"), ("retain", "Retain↑"),
    ("real", "Real↑"), ("model_utility", "MU↑"), ("forget_quality", "FQ↑ (KS p)"),
)
TEXT_SCORES = (*MAIN_SCORES[:-1], ("forget_quality_qa", "FQ↑ (KS p)"))
"""The text-only track's columns: the main table's, with TOFU's forget quality on the QA."""
AUTHORS_SCORES = (
    ("authors_real", "Real↑"), ("authors_retain", "Retain↑"), ("authors_forget", "Forget↓"),
    ("authors_forget_quality", "FQ↑ (1−JS)"),
)
STUDY_SCORES = (
    ("forget_knowledge", "K↓"), ("forgetting_progress", "P"), ("retain", "Retain↑"),
    ("forget_quality", "FQ↑"),
)
"""The cells of each column group of the modality and ℓ1 tables."""
PUBLISHED = (
    "Published (spec §6; LLaVA-1.5-7B, forget10), Real / Retain / Forget / FQ: gold "
    ".50/.51/.19/1.00; vanilla .48/.51/.35/.85; DPO .46/.48/.22/.84; LLMU .47/.51/.25/.84; "
    "IDK .48/.51/.33/.84; SCRUB .49/.52/.36/.85; GA .27/.00/.00/.67; RMU .24/.00/.00/.75."
)
NOISE_FLOOR_NOTE = (
    "gold (reseeded) — noise floor: a second gold model trained with another seed, scored "
    "against gold like any method; differences smaller than its distance from gold are not "
    "meaningful."
)
PROGRESS_NOTE = (
    "P: forgetting progress (K_vanilla − K) / (K_vanilla − K_gold): 0 = nothing forgotten, 1 = "
    "gold's level, > 1 = over-forgetting; – where vanilla and gold tie."
)


COST_COLUMNS = (
    ("seconds", "Seconds"),
    ("optimiser_steps", "Optimiser steps"),
    ("forward_passes", "Forward passes"),
    ("peak_memory_gb", "Peak memory (GB)"),
    ("trainable_parameters", "Trainable parameters"),
)
LEADERBOARD_IDENTITY = (
    "method", "variant", "modality", "forget_split", "lora", "l1", "seeds", "status",
)


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str | None = None


def fmt_lambda(l1: float) -> str:
    return f"λ={l1:g}"


def cell(entry: Entry | None, name: str) -> str:
    """One score of an entry as ``mean [low, high]`` (see the module docstring)."""
    return fmt_interval(estimate(entry, name), fmt_p if name in P_VALUES else fmt)


def interval_text(results: dict[str, Any]) -> str:
    """What the intervals are, from ``run.intervals``, e.g. "95 % interval (percentile ...)"."""
    intervals = results["run"].get("intervals", {})
    details = [intervals.get("method"), intervals.get("replicates")]
    described = "; ".join(
        f"{d} replicates" if is_number(d) else str(d) for d in details if d is not None
    )
    return f"{level(results) * 100:g} % interval" + (f" ({described})" if described else "")


def track_entries(entries: list[Entry], variant: str | None, modality: str) -> list[Entry]:
    """Vanilla, gold, the reseeded gold, then every method at ``variant`` and ``modality``
    (pass the entries of one split)."""
    picked = [find_entry(entries, b) for b in BASELINES]
    picked += [find_entry(entries, m, variant, modality) for m in methods(entries)]
    return [entry for entry in picked if entry is not None]


def headline_entries(results: dict[str, Any], split: str) -> list[Entry]:
    """The rows of the main and the authors' tables: the baselines, then every method at the
    main variant with both modalities unlearned."""
    return track_entries(of_split(results["summary"], split), main_variant(results), "both")


def _score_row(entry: Entry, scores: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    return (display_name(entry["method"]), *(cell(entry, name) for name, _ in scores))


def _headline_table(title: str, entries: list[Entry], scores: tuple[tuple[str, str], ...],
                    note: str) -> Table:
    """The ``scores`` with their intervals, then the seeds and status, of each entry."""
    rows = [(*_score_row(e, scores), " ".join(map(str, e.get("seeds") or [])) or DASH,
             e["status"]) for e in entries]
    return Table(title=title, columns=("Method", *(heading for _, heading in scores), "Seeds",
                                       "Status"), rows=tuple(rows), note=note)


def _cells_note(results: dict[str, Any]) -> str:
    return f"Each cell: mean over the seeds [{interval_text(results)}]. {NOISE_FLOOR_NOTE}"


def main_table(results: dict[str, Any], split: str) -> Table:
    """The headline scores with their intervals, seeds and status of each model."""
    return _headline_table(
        f"Main results, {split} (variant {main_variant(results)}, both modalities unlearned)",
        headline_entries(results, split), MAIN_SCORES,
        "K: forget knowledge, the mean over the forget tasks of probability, ROUGE-L "
        f"recall, fact accuracy and max(0, 1 − R) (lower = forgot more). {PROGRESS_NOTE} "
        "Retain, Real, MU: harmonic means of probability, ROUGE-L recall and truth ratio "
        "(higher is better). FQ: KS-test p-value of the forget captions' truth ratios against "
        f"gold's. {_cells_note(results)}",
    )


def text_table(results: dict[str, Any]) -> Table | None:
    """The text-only track (``results["text"]``) like the main table: the baselines, then each
    method at the track's main variant; None for a run without the track."""
    text = results.get("text")
    if text is None:
        return None
    split, variant = text.get("forget_split"), text.get("main_variant")
    entries = track_entries(of_split(text["summary"], split), variant, "text")
    return _headline_table(
        f"Text-only track, {split} (model {text.get('model', '?')}, variant {variant})",
        entries, TEXT_SCORES,
        "A text-only causal LM, fine-tuned, unlearned and scored on TOFU's QA alone (docs/"
        "text.md). K (lower = forgot more): the mean of probability, ROUGE-L recall, fact "
        "accuracy and max(0, 1 − R) on the forget QA; Retain: harmonic mean of probability, "
        "ROUGE-L recall and truth ratio on the retain QA; Real: the same on real authors and "
        f"world facts. {PROGRESS_NOTE} MU: TOFU's "
        "model utility, the harmonic mean of 9 values (probability, ROUGE-L recall and truth "
        "ratio on the retain, real-authors and world-facts sets). FQ: TOFU's forget quality, "
        "the KS-test p-value of the forget QA truth ratios against gold's. "
        f"{_cells_note(results)}",
    )


def authors_table(results: dict[str, Any], split: str) -> Table:
    """The same models in the authors' convention, comparable with the published table."""
    return Table(
        title=f"Authors' convention, {split} (reproduces mm/build_vllm_table.py; comparable "
        "with the published table)",
        columns=("Method", *(heading for _, heading in AUTHORS_SCORES)),
        rows=tuple(_score_row(e, AUTHORS_SCORES) for e in headline_entries(results, split)),
        note="Harmonic means of probability and truth ratio on the image sets only (spec §5): "
        "Real on real faces and real world, Retain and Forget on the captions and face→name "
        "sets (forget truth ratio = min(R, 1/R)); FQ = 1 − Jensen–Shannon distance of the "
        "normalised 1/R vectors. Forget mixes directions and is not the headline (spec §5). "
        f"Each cell: mean over the seeds [{interval_text(results)}]. {PUBLISHED}",
    )


def _grouped_table(title: str, entries: list[Entry], groups: list[tuple[str, str, str]],
                   note: str) -> Table:
    """Rows: the baselines (the same in every group), then each method; columns: the
    :data:`STUDY_SCORES` of each group ``(column label, variant, modality)``."""
    columns = ["Method"]
    for group, _, _ in groups:
        columns += [f"{heading} ({group})" for _, heading in STUDY_SCORES]
    body, shown = [], []
    for method in [*BASELINES, *methods(entries)]:
        found = [find_entry(entries, method, variant, modality) for _, variant, modality in groups]
        if method in BASELINES and found[0] is None:
            continue
        body.append((display_name(method),
                     *(cell(e, name) for e in found for name, _ in STUDY_SCORES)))
        shown += [e for e in found if e is not None]
    partial = sorted({f"{label(e)}: {e['status']}" for e in shown if e["status"] != "ok"})
    return Table(
        title=title, columns=tuple(columns), rows=tuple(body),
        note=note + (f" Not every seed has scores: {'; '.join(partial)}." if partial else ""),
    )


def _study_note(results: dict[str, Any]) -> str:
    return (f"K, P, Retain and FQ (KS p) as in the main table; each cell: mean over the seeds "
            f"[{interval_text(results)}]; – where the model has no value. The baseline rows "
            f"repeat in every column group. {NOISE_FLOOR_NOTE}")


def modality_table(results: dict[str, Any], split: str) -> Table | None:
    """K, P, Retain and FQ of each method per unlearned modality, at the main variant; None
    when the run unlearned no single modality."""
    variant = main_variant(results)
    entries = of_split(results["summary"], split)
    at_variant = [e for e in entries if e.get("variant") == variant]
    present = [m for m in MODALITIES if any(e.get("modality") == m for e in at_variant)]
    if not set(present) - {"both"}:
        return None
    baselines = [e for e in entries if e["method"] in BASELINES]
    return _grouped_table(f"Unlearned modality, {split} (variant {variant})",
                          baselines + at_variant, [(m, variant, m) for m in present],
                          _study_note(results))


def l1_table(results: dict[str, Any], split: str) -> Table | None:
    """K, P, Retain and FQ of each method per variant (both modalities); None with fewer than
    two variants."""
    tuned = results.get("tuning", {}).get("tuned_variant")
    entries = [e for e in of_split(results["summary"], split)
               if e["method"] in BASELINES
               or (e.get("modality") == "both" and e.get("variant") != tuned)]
    found = variants(entries)
    if len(found) < 2:
        return None
    groups = [(f"{name}, {'LoRA, ' if lora else ''}{fmt_lambda(l1)}", name, "both")
              for name, (lora, l1) in found.items()]
    return _grouped_table(f"ℓ1 on the LoRA weights, {split} (both modalities unlearned)",
                          entries, groups, _study_note(results))


def tuning_table(results: dict[str, Any]) -> Table:
    """Each method's tuning on the validation persons: its grid, the chosen point, the
    validation scores of the chosen and of the default point, and what the grid cost."""
    body = []
    for selection in results["tuning"]["selections"]:
        grid = selection["grid"]
        chosen = next(p for p in grid if p["label"] == selection["chosen"])
        cost = selection["cost"]
        body.append((
            display_name(selection["method"]), str(len(grid)), selection["chosen"],
            "yes" if selection["constraint_met"] else "no",
            *(fmt(point[key]) for point in (grid[0], chosen)
              for key in ("forgetting_progress", "model_utility")),
            str(cost["runs"]), f"{cost['seconds']:.0f}",
            f"{cost['forward_passes']:,}", f"{cost['backward_passes']:,}"))
    first = results["tuning"]["selections"][0] if results["tuning"]["selections"] else {}
    rule = first.get("rule", {})
    return Table(
        title=f"Tuning on the validation persons ({first.get('split', DASH)})",
        columns=("Method", "Grid points", "Chosen", "MU floor met", "P (default)",
                 "MU (default)", "P (chosen)", "MU (chosen)", "Runs", "Seconds",
                 "Forward passes", "Backward passes"),
        rows=tuple(body),
        note="Rule, fixed before any score was seen: maximise min(P, 1) subject to MU ≥ "
        f"{rule.get('min_utility_ratio', DASH)} × the vanilla model's MU on the validation "
        "evaluation; ties to the higher MU, then to the default; no point above the floor: the "
        "highest MU. The validation persons are disjoint from every test forget person and "
        "have their own gold model. Default: the run's own settings (lr×1, the method's "
        "option). Scores are means over the tuning seeds, point estimates (no interval: a "
        "choice, not a result). Cost: every run of the grid, unlearning and evaluation.",
    )


def tuned_table(results: dict[str, Any], split: str) -> Table | None:
    """K, P, Retain and FQ of each method at its default and at its tuned settings on the test
    split; None for a run without tuning."""
    if "tuning" not in results:
        return None
    variant, tuned = main_variant(results), results["tuning"]["tuned_variant"]
    entries = of_split(results["summary"], split)
    return _grouped_table(
        f"Default vs tuned settings, {split} (variant {variant}, both modalities unlearned)",
        entries, [("default", variant, "both"), ("tuned", tuned, "both")],
        _study_note(results) + " Tuned: each method unlearned the test persons with the "
        "settings chosen on the validation persons (table above).")


AUDIT_ATTACKS = (("loss", "LOSS"), ("zlib", "zlib"), ("min_k", "Min-K %"),
                 ("min_k_plus_plus", "Min-K %++"), ("reference", "Reference (gold)"))


MEMBERSHIP_TEXTS = {
    "audit": ("captions", "the forget persons' captions (members) against the holdout "
              "persons' (never trained on), each conditioned on its image"),
    "qa_audit": ("QA answers", "the forget persons' biography QA answers (members) against the "
                 "holdout persons' (never trained on), question → answer without an image"),
}
"""Per results block of the membership audit: the text it scores, and what it compares."""


def audit_table(results: dict[str, Any], split: str, block: str = "audit") -> Table | None:
    """PrivLeak of every model the membership audit audited (:func:`.results.audited`) per
    attack, with its interval, on the text of ``block`` (:data:`MEMBERSHIP_TEXTS`); None for
    a run without it."""
    entries = audited(results, split, block)
    if not entries:
        return None
    body = tuple(
        (name, fmt(e[block]["loss"]["auc_model"]["mean"]),
         *(fmt_interval(Interval(**e[block][attack]["privleak"])) for attack, _ in AUDIT_ATTACKS))
        for name, e in entries)
    text, compared = MEMBERSHIP_TEXTS[block]
    return Table(
        title=f"Audit: privacy leakage (MUSE PrivLeak) on {text}, {split} (variant "
        f"{main_variant(results)}, both modalities)",
        columns=("Method", "AUC (LOSS)", *(f"PrivLeak {name}" for _, name in AUDIT_ATTACKS)),
        rows=body,
        note=f"Membership inference of {compared}: AUC of each attack "
        "(higher score = member), PrivLeak = (AUC_model − AUC_gold) / AUC_gold: 0 = as gold, "
        "> 0 the model still tells the forget persons apart (remembers), < 0 over-unlearned. "
        "Gold against itself is 0 by definition; the reseeded gold is the noise floor. Mean "
        f"over the seeds [{level(results) * 100:g} % interval: person bootstrap, members and "
        "non-members resampled separately, the same draws for every model and seed]. "
        "docs/audits.md.",
    )


SEEDS_RANGE = ("Each cell: mean over the audited seeds [min, max over them] (the audit files "
               "hold no bootstrap replicates).")


def audit_names(entries: list[tuple[str, Entry]]) -> list[str]:
    """The audits with a P of the entries' robust forgetting, but the headline, in order."""
    return [a for a in unique(a for _, e in entries for a in e["robust_forgetting"]["audits"])
            if a != HEADLINE]


def robust_table(results: dict[str, Any], split: str) -> Table | None:
    """Robust forgetting beside the headline P: per audited model the lowest P over every
    audit, the audit that gave it and every audit's P (the heatmap's numbers); None for a run
    without audits that yield a P (all but membership)."""
    entries = audited(results, split, "robust_forgetting")
    if not entries:
        return None
    names = audit_names(entries)
    body = tuple(
        (name, cell(e, "forgetting_progress"), fmt(e["robust_forgetting"]["progress"]),
         e["robust_forgetting"]["audit"] or DASH,
         *(fmt(e["robust_forgetting"]["audits"].get(a)) for a in names))
        for name, e in entries)
    return Table(
        title=f"Robust forgetting, {split}: the lowest P over every audit",
        columns=("Method", "P (1 = gold)", "Robust P", "Lowest under", *names),
        rows=body,
        note="Robust P: the lowest forgetting progress P of the model over the headline (the "
        "main table's P, its interval there) and every audit with a P (the other columns, "
        "drawn in the heatmap below); 1 = gold's level under each. Robustness C: P under "
        "condition C, (K_vanilla − K) / (K_vanilla − K_gold) with vanilla's and gold's K "
        "under C. Relearn A: the lowest P over the grid's steps after relearning attack A, "
        "against gold after the same steps, (K_vanilla − K(s)) / (K_vanilla − K_gold(s)); "
        "gold itself is 1. Precision T: P after transform or packaging T, with vanilla's "
        "and gold's K after the same. Crossmodal describe: P of the model (both modalities "
        "unlearned) asked to describe a person it is told the name of, the one probe that is "
        "no task of the evaluation (the others split the headline by task). Means over the "
        "audited seeds; – where vanilla and gold know the same. docs/audits.md.",
    )


def robustness_table(results: dict[str, Any], split: str) -> Table | None:
    """Forget knowledge K of every robustness-audited model under each condition; None for a
    run without the robustness audit."""
    entries = audited(results, split, "robustness")
    if not entries:
        return None
    conditions = unique(c for _, e in entries for c in e["robustness"]["conditions"])

    def k(entry: Entry, condition: str) -> str:
        value = entry["robustness"]["conditions"].get(condition, {}).get("forget_knowledge")
        return fmt_interval(Interval(**value)) if value else DASH

    return Table(
        title=f"Audit: robustness, {split}: forget knowledge K under each condition",
        columns=("Method", *(f"K {c}" for c in conditions), "Seeds"),
        rows=tuple((name, *(k(e, c) for c in conditions),
                    " ".join(map(str, e["robustness"]["seeds"]))) for name, e in entries),
        note="K (lower = forgot more) on the forget tasks as they are (as_is), with the images "
        "cropped, blurred, JPEG-compressed, in grayscale, mirrored or colour-jittered, asked in "
        "wordings no training data uses (held_out_wording), and with sampled answers (sampled: "
        "a row counts as known when any sample states its fact). Compare with vanilla's and "
        f"gold's rows: K falls for every model where vanilla's does. {SEEDS_RANGE}",
    )


def relearn_table(results: dict[str, Any], split: str) -> Table | None:
    """Each relearning attack's K curve, lowest P and verdict of every relearn-audited model;
    None for a run without the relearning attack."""
    entries = audited(results, split, "relearn")
    if not entries:
        return None
    attacks = unique(a for _, e in entries for a in e["relearn"]["attacks"])
    steps = unique(s for _, e in entries for c in e["relearn"]["attacks"].values()
                   for s in c["steps"])

    def cells(entry: Entry, attack: str) -> tuple[str, str]:
        curve = entry["relearn"]["attacks"].get(attack)
        if curve is None:
            return DASH, DASH
        passed = curve["passed"]
        return (" / ".join(fmt(v["mean"]) for v in curve["forget_knowledge"]),
                f"{sum(passed)} of {len(passed)}")

    return Table(
        title=f"Audit: relearning attack, {split}: K after {', '.join(map(str, steps))} steps",
        columns=("Method", *(h for a in attacks for h in (f"K {a}", f"Passed {a} (seeds)")),
                 "Seeds"),
        rows=tuple((name, *(c for a in attacks for c in cells(e, a)),
                    " ".join(map(str, e["relearn"]["seeds"]))) for name, e in entries),
        note="K on half the forget persons (mean over the audited seeds) after each step of "
        "fine-tuning on the other half's rows (forget_half) or on as many retain rows (retain), "
        "step 0 first; gold's row is gold relearning from scratch. A seed passes an attack "
        "when at no step the model's K exceeds gold's after the same steps by more than 0.05 "
        "beyond its person-bootstrap interval. docs/audits.md.",
    )


def _spread_cell(value: dict[str, float | None] | None) -> str:
    return fmt_interval(Interval(**value)) if value and value["mean"] is not None else DASH


def skipped_by_reason(entries: list[tuple[str, Entry]]) -> dict[str, tuple[list[str],
                                                                             list[str]]]:
    """Why precision transforms were skipped: reason → (the transforms, the models)."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    for name, entry in entries:
        for kind, transform in entry["precision"]["transforms"].items():
            if "skipped" in transform:
                kinds, names = found.setdefault(transform["skipped"], ([], []))
                kinds += [kind] if kind not in kinds else []
                names += [name] if name not in names else []
    return found


def precision_table(results: dict[str, Any], split: str) -> Table | None:
    """P of every precision-audited model after each transform that ran, and the transforms
    flagged; None for a run without the precision audit."""
    entries = audited(results, split, "precision")
    if not entries:
        return None
    kinds = unique(k for _, e in entries for k, t in e["precision"]["transforms"].items()
                   if "skipped" not in t)
    skipped = [f"{', '.join(of_kinds)} ("
               f"{'every model' if len(names) == len(entries) else ', '.join(names)}): {reason}"
               for reason, (of_kinds, names) in skipped_by_reason(entries).items()]

    def flagged(entry: Entry) -> str:
        transforms = entry["precision"]["transforms"]
        found = [f"{k} ({sum(t['flagged'])} of {len(t['flagged'])})"
                 for k, t in transforms.items() if any(t.get("flagged", []))]
        return ", ".join(found) or "none"

    return Table(
        title=f"Audit: precision and packaging, {split}: P after each transform",
        columns=("Method", *(f"P {k}" for k in kinds), "Flagged (seeds)", "Seeds"),
        rows=tuple((name, *(_spread_cell(e["precision"]["transforms"][k].get("progress"))
                            if k in e["precision"]["transforms"] else DASH for k in kinds),
                    flagged(e), " ".join(map(str, e["precision"]["seeds"])))
                   for name, e in entries),
        note="P on the forget tasks after int8 dynamic quantization, bf16 and fp16 round "
        "trips and (LoRA runs) merging the unmerged adapter into the base or not before the "
        "round trip, with vanilla's and gold's K after the same; as_is is the headline's. A "
        "transform is flagged when P falls below P as is by more than half the width of P "
        "as is's interval and by more than 0.01. "
        f"Skipped: {'; '.join(skipped) or 'none'}. {SEEDS_RANGE}",
    )


def crossmodal_table(results: dict[str, Any], split: str) -> Table | None:
    """The cross-modal matrix (P per modality unlearned and probe) of every method audited;
    None for a run without the cross-modal audit."""
    entries = audited(results, split, "crossmodal")
    if not entries:
        return None
    probes = unique(p for _, e in entries for cells in e["crossmodal"]["matrix"].values()
                    for p in cells)
    rows = []
    for name, entry in entries:
        block = entry["crossmodal"]
        for modality, cells in block["matrix"].items():
            holds = ", ".join(f"{p} ({sum(v)} of {len(v)})" for p, v in block["claim"].items()
                              if any(v)) or "none"
            rows.append((name if modality == "both" else f"{name} · {modality} only",
                         *(_spread_cell(cells.get(p, {}).get("progress")) for p in probes),
                         holds if modality == "both" else "",
                         " ".join(map(str, entry["crossmodal"]["seeds"]))))
    return Table(
        title=f"Audit: cross-modal leakage, {split}: P per modality unlearned and probe",
        columns=("Method", *(f"P {p}" for p in probes), "Both forgets more (seeds)", "Seeds"),
        rows=tuple(rows),
        note="P of each method's models unlearned on text only, images only and both (the "
        "modality study's, at the main variant), probed by the forget QA without image "
        "(qa), face→name, captioning and a text prompt naming the person answered with their "
        "captions (describe). Both forgets more on a probe when P(both) exceeds P(text) and "
        "P(visual) beyond their paired person-bootstrap intervals (undefined where vanilla "
        f"and gold are not separable on the probe). {SEEDS_RANGE}",
    )


def cv_table(cv: dict[str, Any]) -> Table:
    """The vision-only track's results (``cv_results.json``) like the paper's Table 2."""
    settings = cv.get("settings", {})
    cells = tuple(
        (row["method"], fmt(row.get("forget_accuracy")), fmt(row.get("retain_accuracy")),
         fmt(row.get("holdout_accuracy")), fmt(row.get("u_lira")), fmt(row.get("u_mia")),
         row.get("status", "ok"))
        for row in cv["rows"]
    )
    return Table(
        title=f"Vision-only track, {settings.get('forget_split', '?')} (network "
        f"{settings.get('network', '?')}, {settings.get('shadows', '?')} shadow replicas)",
        columns=("Method", "Forget acc↓", "Retain acc↑", "Holdout acc", "U-LiRA (0.5)",
                 "U-MIA (0.5)", "Status"),
        rows=cells,
        note="Identification accuracy: nearest mean enrolment embedding by cosine (5 enrolment "
        "images per identity, gallery of every CLEAR and holdout person); it and U-MIA are "
        "means over the target and shadow replicas. U-LiRA: per-example "
        "Gaussian likelihood-ratio attack, unlearned vs retrained (gold), leave-one-out over "
        "the target and shadow replicas; U-MIA: cross-validated threshold attack, forget "
        "images vs never-seen persons. 0.5 is ideal for both. A diverged network (non-finite "
        "embeddings in any replica) has no numbers.",
    )


def _pair(pair: tuple[str, str]) -> str:
    return " → ".join(pair)


def _progress_table(found: dict[str, crosstrack.Track], at: float) -> Table:
    """P [interval] and rank of every method in every track."""
    ranked = {name: crosstrack.ranks({m: s.point for m, s in t.progress.items()})
              for name, t in found.items()}

    def cells(name: str, method: str) -> tuple[str, str]:
        progress = found[name].progress.get(method)
        if progress is None:
            return DASH, DASH
        return fmt_interval(interval_of(progress, at)), f"{ranked[name][method]:g}"

    vision = ("Vision P = (a_vanilla − a) / (a_vanilla − a_gold), a the forget identification "
              "accuracy; its interval resamples the replicas (the same draws for vanilla, gold "
              "and the method). The vision track's neggrad is ga. ") if "vision" in found else ""
    return Table(
        title="Forgetting progress P and rank per track",
        columns=("Method", *(f"{h} ({name})" for name in found for h in ("P", "Rank"))),
        rows=tuple((method, *(c for name in found for c in cells(name, method)))
                   for method in unique(m for t in found.values() for m in t.progress)),
        note="P, forgetting progress, is the headline of every track and compares across "
        "them: each track normalises by its own vanilla → gold gap (0 = as vanilla, 1 = as "
        "gold). Tracks: " + "; ".join(f"{name}: {t.source}" for name, t in found.items())
        + f". {vision}Rank 1 = the highest P (most forgetting); ties share the average rank. "
        f"Each P: point [{at * 100:g} % percentile interval of its bootstrap replicates]; – "
        "where the track did not score the method."
        + "".join(f" {name} has no P (diverged, or vanilla and gold tie) for "
                  f"{', '.join(t.unscored)}." for name, t in found.items() if t.unscored),
    )


def _rho_table(found: dict[str, crosstrack.Track], at: float) -> Table:
    """Spearman's ρ of each pair of tracks, the methods it compares and the published ρ."""
    compared = crosstrack.comparisons(found, at)

    def left_out(c: crosstrack.Comparison) -> str:
        return ", ".join(f"{m} ({next(t for t in c.pair if m in found[t].progress)} only)"
                         for m in c.left_out) or "none"

    published = crosstrack.PUBLISHED_RHO
    return Table(
        title="Spearman's ρ between the tracks' rankings",
        columns=("Tracks", f"ρ [{at * 100:g} % interval]", "Methods compared",
                 "Published ρ (CLEAR)"),
        rows=tuple((_pair(c.pair), fmt_interval(c.rho),
                    f"{len(c.compared)}: {', '.join(c.compared)}" if c.compared else "0",
                    f"{published[c.pair]:g}" if c.pair in published else DASH)
                   for c in compared),
        note=f"ρ over the methods both tracks scored (– with fewer than "
        f"{crosstrack.MIN_METHODS}); interval: percentile interval of ρ recomputed on replicate "
        "b of each track (the tracks' independent bootstrap replicates paired by index). "
        "Replicates in which a compared method has no P, or either track ranks every method "
        "alike, are dropped; kept: " + "; ".join(f"{_pair(c.pair)} {c.kept} of {c.draws}"
                                                 for c in compared)
        + ". Left out (scored by one track of the pair only): "
        + "; ".join(f"{_pair(c.pair)}: {left_out(c)}" for c in compared) + ".",
    )


def crosstrack_tables(results: dict[str, Any]) -> tuple[Table, Table] | None:
    """P and rank of each method per track, then Spearman's ρ of each pair of tracks beside
    the published one (:mod:`.crosstrack`); None with fewer than two tracks."""
    found = crosstrack.tracks(results)
    if len(found) < 2:
        return None
    return _progress_table(found, level(results)), _rho_table(found, level(results))


def _cost_cell(key: str, value: Any) -> str:
    if not is_number(value):
        return DASH
    if key == "seconds":
        return f"{value:.1f}"
    if key == "peak_memory_gb":
        return f"{value:.2f}"
    return f"{int(value):,}"


def cost_table(results: dict[str, Any], split: str) -> Table:
    """What each model of the split cost to train, one row per model and seed."""
    body = tuple(
        (
            display_name(row["method"]),
            row.get("variant") or DASH,
            row.get("modality") or DASH,
            DASH if row.get("seed") is None else str(row["seed"]),
            *(_cost_cell(key, (row.get("cost") or {}).get(key)) for key, _ in COST_COLUMNS),
        )
        for row in of_split(results["rows"], split)
    )
    return Table(
        title=f"Cost, {split}",
        columns=("Method", "Variant", "Modality", "Seed", *(h for _, h in COST_COLUMNS)),
        rows=body,
    )


# --- leaderboard -------------------------------------------------------------------------


@dataclass(frozen=True)
class Ranked:
    """A summary entry's place on the leaderboard (baselines and null P: no rank)."""

    entry: Entry
    rank: int | None
    tied_with: tuple[str, ...]


def gold_distance(entry: Entry, at: float) -> Interval:
    """|1 − P|, how far a model's forgetting is from gold's level, with the ``at`` interval of
    its replicates."""
    progress = series(entry, "forgetting_progress")
    if progress is None:
        mean = estimate(entry, "forgetting_progress").mean
        return Interval(None if mean is None else abs(1 - mean), None, None)
    return interval_of(combine(lambda p: abs(1 - p), progress), at)


def _overlap(a: Interval, b: Interval) -> bool:
    return (a.low is not None and a.high is not None and b.low is not None
            and b.high is not None and a.low <= b.high and b.low <= a.high)


def ranking(entries: list[Entry], at: float) -> list[Ranked]:
    """The entries of one split in leaderboard order: unlearning models by the mean |1 − P|
    (closest to gold's level first, null P last and unranked), then the baselines. Two models
    are tied when their intervals of |1 − P| overlap; the rank is a competition rank in which
    a model tied with the one above shares its rank."""
    scored = [(e, gold_distance(e, at)) for e in entries if e["method"] not in BASELINES]
    scored.sort(key=lambda pair: (pair[1].mean is None, pair[1].mean or 0.0))
    out: list[Ranked] = []
    for i, (entry, distance) in enumerate(scored):
        tied = tuple(label(other) for other, d in scored
                     if other is not entry and _overlap(distance, d))
        if distance.mean is None:
            rank = None
        elif i and _overlap(distance, scored[i - 1][1]):
            rank = out[-1].rank
        else:
            rank = i + 1
        out.append(Ranked(entry, rank, tied))
    return out + [Ranked(e, None, ()) for e in entries if e["method"] in BASELINES]


LEADERBOARD_NOTE = (
    "leaderboard.csv has one record per model, forget split by forget split. Columns: method, "
    "variant, modality, forget_split, lora, l1, seeds (space separated), status; for every "
    "score S of the summary (forget_knowledge, forgetting_progress, retain, real, "
    "model_utility, forget_quality, forget_quality_qa, authors_real, authors_retain, "
    "authors_forget, authors_forget_quality, then any other) S, S_low and S_high (the mean "
    "over the seeds and its interval), and after forgetting_progress, in a run with "
    "audits that yield a P (all but membership), robust_forgetting (the lowest P over every audit, "
    "of the means over the audited seeds) and robust_forgetting_audit (the audit that gave "
    "it); rank; tied_with. Order: the unlearning models by "
    "|1 − P|, how far their forgetting is from gold's level (closest first; no P: last, "
    "unranked), then vanilla, gold and the reseeded gold model (unranked). Two models are tied "
    "when the intervals of |1 − P| from their bootstrap replicates overlap; rank is a "
    "competition rank in which a model tied with the one above shares its rank; tied_with "
    "lists (method/variant/modality, space separated) every model whose interval overlaps its "
    "own. Empty cells are nulls."
)


def leaderboard_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat record per summary entry, all with the same keys, in :func:`ranking` order
    split by split (columns: :data:`LEADERBOARD_NOTE`; ``rank`` None where unranked)."""
    names = score_names(results["summary"])
    robust = any("robust_forgetting" in e for e in results["summary"])
    records = []
    for split in forget_splits(results):
        for ranked in ranking(of_split(results["summary"], split), level(results)):
            entry = ranked.entry
            identity = {key: entry.get(key) for key in LEADERBOARD_IDENTITY}
            identity["seeds"] = " ".join(map(str, entry.get("seeds") or []))
            scores = {}
            for name in names:
                value = estimate(entry, name)
                scores |= {name: value.mean, f"{name}_low": value.low,
                           f"{name}_high": value.high}
                if robust and name == "forgetting_progress":
                    worst = entry.get("robust_forgetting", {})
                    scores |= {"robust_forgetting": worst.get("progress"),
                               "robust_forgetting_audit": worst.get("audit")}
            records.append({**identity, **scores, "rank": ranked.rank,
                            "tied_with": " ".join(ranked.tied_with)})
    return records
