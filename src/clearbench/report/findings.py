"""Judge the qualitative findings of spec §6 on a run, per forget split, with paired bootstrap
tests.

Each claim reduces to per-method differences D computed replicate by replicate on the run's
shared bootstrap draws (same persons, same seeds: a paired bootstrap, spec §7). A per-method
claim "D < 0" (or "D > 0") *holds* when the whole interval of D (the run's level, 95 %) lies on
the claimed side of 0, *does not hold* when it lies wholly on the other side, and is *not
separable at this size* when it contains 0. Models that lack the replicates are left out and
named. Unless said otherwise, methods are taken at the main variant with both modalities
unlearned.

- Collapse: m collapses when Retain_m − 0.5 × Retain_vanilla < 0. "GA, GD, KL and RMU
  collapse the retain metrics": the all-rule over those present.
- Keeps utility: Retain_m − 0.8 × Retain_vanilla > 0; forgets little: P_m − 0.5 < 0. A method
  holds when both hold, does not hold when either does not, else is not separable. "IDK, SCRUB
  and NPO ...": the all-rule over those present.
- Both modalities: K_m(both) − min(K_m(text), K_m(visual)) < 0 (the minimum taken replicate by
  replicate), for every method with all three models: the share-rule.
- ℓ1: needs a LoRA variant with λ = 0 and one with λ > 0. For each method that collapses
  (holds) at λ = 0: Retain_m,ℓ1 − 0.5 × Retain_vanilla > 0; the all-rule; not measured when
  nothing collapses at λ = 0.

All-rule: "not measured" when no method is measured; "does not hold" when any does not hold;
"holds" when all hold; otherwise "not separable at this size". Share-rule: "holds" when more
than two thirds of the measured methods hold, "does not hold" when more than two thirds do not
hold, otherwise "not separable at this size" ("not measured" when none is measured).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from clearbench.report.results import (
    Entry,
    Interval,
    Series,
    combine,
    estimate,
    find_entry,
    fmt_interval,
    fmt_signed,
    forget_splits,
    interval_of,
    label,
    level,
    main_variant,
    methods,
    of_split,
    series,
    variants,
)

COLLAPSE_RATIO = 0.5
KEEP_UTILITY_RATIO = 0.8
FORGET_LITTLE_PROGRESS = 0.5
HOLDS, DOES_NOT_HOLD = "holds", "does not hold"
NOT_SEPARABLE, NOT_MEASURED = "not separable at this size", "not measured"

COLLAPSE_CLAIM = "GA, GD, KL and RMU collapse the retain metrics"
COLLAPSE_METHODS = ("ga", "gd", "kl", "rmu")
UTILITY_CLAIM = "IDK, SCRUB and NPO keep utility but forget little"
UTILITY_METHODS = ("idk", "scrub", "npo")
MODALITY_CLAIM = "Unlearning both modalities at once forgets more than one modality alone"
L1_CLAIM = "ℓ1 on LoRA weights prevents the collapse"

ALL_RULE = ("The claim holds when every measured method holds, does not hold when any does "
            "not hold, and is not separable otherwise.")


@dataclass(frozen=True)
class Finding:
    forget_split: str
    claim: str
    verdict: str
    evidence: str


@dataclass(frozen=True)
class MethodTest:
    """One method's paired test: the difference with its interval, and the verdict."""

    method: str
    difference: Interval
    verdict: str

    def text(self) -> str:
        return f"{self.method} {fmt_signed(self.difference)} ({self.verdict})"


def verdict_basis(at: float) -> str:
    """The sentence that says which test every verdict comes from."""
    return (
        "Each verdict comes from paired bootstrap tests: for each method, the difference the "
        "claim is about is computed replicate by replicate on the run's shared bootstrap draws "
        f"(same persons, same seeds), and its {at * 100:g} % percentile interval decides — "
        "\"holds\" when the whole interval is on the claimed side of 0, \"does not hold\" when "
        "it is wholly on the other side, \"not separable at this size\" when it contains 0; "
        "\"not measured\" when the run lacks the models."
    )


def findings(results: dict[str, Any]) -> list[Finding]:
    """The four findings of spec §6 for each forget split of a results payload."""
    variant, at = main_variant(results), level(results)
    out = []
    for split in forget_splits(results):
        entries = of_split(results["summary"], split)
        out += [
            Finding(split, COLLAPSE_CLAIM, *_collapse(entries, variant, at)),
            Finding(split, UTILITY_CLAIM, *_utility(entries, variant, at)),
            Finding(split, MODALITY_CLAIM, *_modalities(entries, variant, at)),
            Finding(split, L1_CLAIM, *_l1(entries, variant, at)),
        ]
    return out


def tuned_findings(results: dict[str, Any]) -> list[Finding]:
    """The per-method findings (collapse; keeps utility but forgets little) judged again at
    the tuned settings of a run with tuning (none without)."""
    if "tuning" not in results:
        return []
    variant, at = results["tuning"]["tuned_variant"], level(results)
    out = []
    for split in forget_splits(results):
        entries = of_split(results["summary"], split)
        out += [Finding(split, COLLAPSE_CLAIM, *_collapse(entries, variant, at)),
                Finding(split, UTILITY_CLAIM, *_utility(entries, variant, at))]
    return out


# --- tests and rules ---------------------------------------------------------------------


def decide(difference: Interval, below: bool) -> str:
    """The verdict on "difference < 0" (``below``) or "> 0" from its interval."""
    low, high = difference.low, difference.high
    if low is None or high is None:
        return NOT_SEPARABLE
    claimed, other = (high < 0, low > 0) if below else (low > 0, high < 0)
    return HOLDS if claimed else DOES_NOT_HOLD if other else NOT_SEPARABLE


def paired_test(method: str, fn: Callable[..., float], operands: list[Series], below: bool,
                at: float) -> MethodTest:
    """Test "fn(operands) < 0" (``below``) or "> 0", replicate by replicate."""
    difference = interval_of(combine(fn, *operands), at)
    return MethodTest(method, difference, decide(difference, below))


def all_rule(verdicts: list[str]) -> str:
    if not verdicts:
        return NOT_MEASURED
    if DOES_NOT_HOLD in verdicts:
        return DOES_NOT_HOLD
    return HOLDS if all(v == HOLDS for v in verdicts) else NOT_SEPARABLE


def share_rule(verdicts: list[str]) -> str:
    """More than two thirds hold: holds; more than two thirds do not: does not hold."""
    if not verdicts:
        return NOT_MEASURED
    if 3 * verdicts.count(HOLDS) > 2 * len(verdicts):
        return HOLDS
    if 3 * verdicts.count(DOES_NOT_HOLD) > 2 * len(verdicts):
        return DOES_NOT_HOLD
    return NOT_SEPARABLE


def _side_rule(at: float, below: bool) -> str:
    claimed, other = ("below", "above") if below else ("above", "below")
    return (f"per method, the paired difference and its {at * 100:g} % interval; holds when the "
            f"interval is wholly {claimed} 0, does not hold when wholly {other} 0, else not "
            "separable")


def _series(entries: list[Entry], method: str, variant: str | None, modality: str | None,
            name: str, excluded: list[str]) -> Series | None:
    """A model's score with its replicates, or None with the reason appended to ``excluded``."""
    entry = find_entry(entries, method, variant, modality)
    if entry is None:
        wanted = "/".join(p for p in (method, variant, modality) if p is not None)
        excluded.append(f"no {wanted} model")
        return None
    found = series(entry, name)
    if found is None or found.point is None:
        reason = "no value" if entry["status"] == "ok" else entry["status"]
        excluded.append(f"{label(entry)}: {name} {reason}")
        return None
    return found


def _retain_tests(entries: list[Entry], variant: str | None, wanted: list[str], ratio: float,
                  below: bool, at: float, excluded: list[str]) -> list[MethodTest]:
    """Per method: Retain_m − ratio × Retain_vanilla, below or above 0."""
    vanilla = _series(entries, "vanilla", None, None, "retain", excluded)
    if vanilla is None:
        return []
    tests = []
    for method in wanted:
        retain = _series(entries, method, variant, "both", "retain", excluded)
        if retain is not None:
            tests.append(paired_test(method, lambda m, v: m - ratio * v, [retain, vanilla],
                                     below, at))
    return tests


def _listed(tests: list[MethodTest]) -> str:
    return "; ".join(t.text() for t in tests) or "none measured"


def _tail(excluded: list[str], absent: Sequence[str] = ()) -> str:
    out = f" Excluded: {'; '.join(excluded)}." if excluded else ""
    return out + (f" Not run: {', '.join(absent)}." if absent else "")


def _vanilla_retain(entries: list[Entry]) -> str:
    return fmt_interval(estimate(find_entry(entries, "vanilla"), "retain"))


# --- the claims --------------------------------------------------------------------------


def _collapse(entries: list[Entry], variant: str | None, at: float) -> tuple[str, str]:
    present = methods(entries)
    excluded: list[str] = []
    tests = _retain_tests(entries, variant, [m for m in COLLAPSE_METHODS if m in present],
                          COLLAPSE_RATIO, True, at, excluded)
    evidence = (
        f"Collapse = Retain − {COLLAPSE_RATIO} × vanilla Retain < 0 (vanilla Retain "
        f"{_vanilla_retain(entries)}), at variant {variant}, both modalities; "
        f"{_side_rule(at, below=True)}: {_listed(tests)}. {ALL_RULE}"
        + _tail(excluded, [m for m in COLLAPSE_METHODS if m not in present])
    )
    return all_rule([t.verdict for t in tests]), evidence


def _utility(entries: list[Entry], variant: str | None, at: float) -> tuple[str, str]:
    present = methods(entries)
    excluded: list[str] = []
    wanted = [m for m in UTILITY_METHODS if m in present]
    keeps = {t.method: t for t in _retain_tests(entries, variant, wanted, KEEP_UTILITY_RATIO,
                                                False, at, excluded)}
    parts, verdicts = [], []
    for method in (m for m in wanted if m in keeps):
        progress = _series(entries, method, variant, "both", "forgetting_progress", excluded)
        if progress is None:
            continue
        little = paired_test(method, lambda p: p - FORGET_LITTLE_PROGRESS, [progress], True, at)
        verdict = all_rule([keeps[method].verdict, little.verdict])
        verdicts.append(verdict)
        parts.append(f"{method}: Retain − {KEEP_UTILITY_RATIO} × vanilla Retain "
                     f"{fmt_signed(keeps[method].difference)} ({keeps[method].verdict}), "
                     f"P − {FORGET_LITTLE_PROGRESS} {fmt_signed(little.difference)} "
                     f"({little.verdict}) → {verdict}")
    evidence = (
        f"Keeps utility = Retain − {KEEP_UTILITY_RATIO} × vanilla Retain > 0 (vanilla Retain "
        f"{_vanilla_retain(entries)}); forgets little = P − {FORGET_LITTLE_PROGRESS} < 0 "
        f"(P = 1 is gold's level); a method holds when both hold, does not hold when either "
        f"does not; at variant {variant}, both modalities; each test from the paired "
        f"difference's {at * 100:g} % interval (wholly on the claimed side of 0: holds; wholly "
        f"on the other: does not hold; else not separable). {'; '.join(parts) or 'None measured'}"
        f". {ALL_RULE}" + _tail(excluded, [m for m in UTILITY_METHODS if m not in present])
    )
    return all_rule(verdicts), evidence


def _modalities(entries: list[Entry], variant: str | None, at: float) -> tuple[str, str]:
    excluded: list[str] = []
    tests = []
    for method in methods(entries):
        if any(find_entry(entries, method, variant, m) is None for m in ("both", "text", "visual")):
            continue
        found = [_series(entries, method, variant, m, "forget_knowledge", excluded)
                 for m in ("both", "text", "visual")]
        operands = [s for s in found if s is not None]
        if len(operands) == len(found):
            tests.append(paired_test(method, lambda b, t, v: b - min(t, v), operands, True, at))
    verdicts = [t.verdict for t in tests]
    counts = (f"of {len(tests)}: {verdicts.count(HOLDS)} hold, {verdicts.count(DOES_NOT_HOLD)} "
              f"do not hold, {verdicts.count(NOT_SEPARABLE)} not separable")
    evidence = (
        f"Per method: K(both) − min(K(text), K(visual)) < 0, the minimum taken replicate by "
        f"replicate, at variant {variant}; {_side_rule(at, below=True)}: {_listed(tests)}. "
        f"The claim holds when more than two thirds of the methods with all three models hold, "
        f"does not hold when more than two thirds do not hold, else is not separable "
        f"({counts})." + _tail(excluded)
    )
    return share_rule(verdicts), evidence


def _l1_pair(entries: list[Entry], main: str | None) -> tuple[str, str] | None:
    """(LoRA variant with λ = 0, preferably the main one; first LoRA variant with λ > 0)."""
    found = variants(entries)
    plain = [name for name, (lora, l1) in found.items() if lora and l1 == 0]
    with_l1 = [name for name, (lora, l1) in found.items() if lora and l1 > 0]
    if not plain or not with_l1:
        return None
    return (main if main in plain else plain[0]), with_l1[0]


def _l1(entries: list[Entry], main: str | None, at: float) -> tuple[str, str]:
    pair = _l1_pair(entries, main)
    if pair is None:
        listed = ", ".join(f"{name} ({'LoRA' if lora else 'full'}, λ={l1:g})"
                           for name, (lora, l1) in variants(entries).items())
        return NOT_MEASURED, ("Not measured: needs a LoRA variant with λ = 0 and one with "
                              f"λ > 0; this run has {listed or 'no unlearning variants'}.")
    plain, with_l1 = pair
    excluded: list[str] = []
    wanted = [m for m in methods(entries) if find_entry(entries, m, plain, "both") is not None]
    collapse = _retain_tests(entries, plain, wanted, COLLAPSE_RATIO, True, at, excluded)
    collapsed = [t.method for t in collapse if t.verdict == HOLDS]
    rule = (f"Collapse = Retain − {COLLAPSE_RATIO} × vanilla Retain < 0 (vanilla Retain "
            f"{_vanilla_retain(entries)}); {_side_rule(at, below=True)}. Without ℓ1 ({plain}, "
            f"λ=0, both modalities): {_listed(collapse)}.")
    if not collapsed:
        return NOT_MEASURED, (f"Not measured: no method is shown to collapse without ℓ1, so "
                              f"there is no collapse to prevent. {rule}" + _tail(excluded))
    prevented = _retain_tests(entries, with_l1, collapsed, COLLAPSE_RATIO, False, at, excluded)
    evidence = (
        f"{rule} With ℓ1 ({with_l1}, λ={variants(entries)[with_l1][1]:g}), for the methods "
        f"that collapse without it, prevented = Retain − {COLLAPSE_RATIO} × vanilla Retain > 0 "
        f"(wholly above 0: holds; wholly below: does not hold; else not separable): "
        f"{_listed(prevented)}. {ALL_RULE}" + _tail(excluded)
    )
    return all_rule([t.verdict for t in prevented]), evidence
