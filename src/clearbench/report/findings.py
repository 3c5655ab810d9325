"""Check the qualitative findings of spec §6 on a run's numbers, per forget split.

Nothing here knows an outcome: each verdict and evidence sentence is computed from the rows.
Every comparison uses the vanilla and gold rows of the same forget split and the unlearning rows
at the main variant with both modalities unlearned, unless said otherwise. Rows that diverged, or
whose needed values are null, are left out of a verdict and named in its evidence.

- Collapse: a method collapses when Retain < ``COLLAPSE_RATIO`` (0.5) × vanilla's Retain.
  "GA, GD, KL and RMU collapse the retain metrics" holds if all of them present collapse.
- Keeps utility: Retain ≥ ``KEEP_UTILITY_RATIO`` (0.8) × vanilla's Retain. Forgets little: it
  closes less than ``FORGET_LITTLE_SHARE`` (half) of the gap from vanilla's Forget to gold's,
  i.e. vanilla.forget − m.forget < 0.5 × (vanilla.forget − gold.forget). "IDK, SCRUB and NPO
  keep utility but forget little" holds if all of them present do both.
- Both modalities: a method forgets more with both modalities unlearned when
  Forget(both) < min(Forget(text), Forget(visual)); the finding holds if more than two thirds
  of the methods with all three rows do.
- ℓ1: needs a LoRA variant with λ = 0 and one with λ > 0. For each method that collapses
  without ℓ1, the finding holds if it does not collapse with ℓ1.

A verdict is "holds" (all measured cases pass, or the share above), "partly holds" (some),
"does not hold" (none) or "not measured" (no case could be measured).
"""

from __future__ import annotations

from dataclasses import dataclass

from clearbench.report.results import Row, find_row, methods, score, split_rows, unique, variants

COLLAPSE_RATIO = 0.5
KEEP_UTILITY_RATIO = 0.8
FORGET_LITTLE_SHARE = 0.5
HOLDS, PARTLY = "holds", "partly holds"
DOES_NOT_HOLD, NOT_MEASURED = "does not hold", "not measured"

COLLAPSE_CLAIM = "GA, GD, KL and RMU collapse the retain metrics"
COLLAPSE_METHODS = ("ga", "gd", "kl", "rmu")
UTILITY_CLAIM = "IDK, SCRUB and NPO keep utility but forget little"
UTILITY_METHODS = ("idk", "scrub", "npo")
MODALITY_CLAIM = "Unlearning both modalities at once forgets more than one modality alone"
L1_CLAIM = "ℓ1 on LoRA weights prevents the collapse"


@dataclass(frozen=True)
class Finding:
    forget_split: str
    claim: str
    verdict: str
    evidence: str


def findings(rows: list[Row], main_variant: str | None) -> list[Finding]:
    """The four findings of spec §6 for each forget split of ``rows``."""
    out = []
    for split in unique(row.get("forget_split") for row in rows):
        these = split_rows(rows, split)
        out += [
            Finding(split, COLLAPSE_CLAIM, *_collapse(these, main_variant)),
            Finding(split, UTILITY_CLAIM, *_utility(these, main_variant)),
            Finding(split, MODALITY_CLAIM, *_modalities(these, main_variant)),
            Finding(split, L1_CLAIM, *_l1(these, main_variant)),
        ]
    return out


def _verdict(passed: int, measured: int, holds: bool) -> str:
    if measured == 0:
        return NOT_MEASURED
    if holds:
        return HOLDS
    return PARTLY if passed else DOES_NOT_HOLD


def _values(
    rows: list[Row],
    method: str,
    variant: str | None,
    modality: str | None,
    keys: tuple[str, ...],
    excluded: list[str],
) -> list[float] | None:
    """The scores ``keys`` of a row, or ``None`` with the reason appended to ``excluded``."""
    where = f"{method} at {variant}/{modality}" if variant else method
    row = find_row(rows, method, variant, modality)
    if row is None:
        excluded.append(f"no {where} row")
        return None
    if row["status"] != "ok":
        excluded.append(f"{where} {row['status']}")
        return None
    values = [score(row, key) for key in keys]
    nulls = [key for key, v in zip(keys, values, strict=True) if v is None]
    if nulls:
        excluded.append(f"{where}: {', '.join(nulls)} null")
        return None
    return [v for v in values if v is not None]


def _excluded(reasons: list[str]) -> str:
    return f" Excluded: {'; '.join(reasons)}." if reasons else ""


def _not_run(rows: list[Row], wanted: tuple[str, ...]) -> str:
    absent = [m for m in wanted if m not in methods(rows)]
    return f" Not run: {', '.join(absent)}." if absent else ""


def _collapse_rule(threshold: float) -> str:
    return f"Collapse = Retain < {COLLAPSE_RATIO} × vanilla Retain = {threshold:.3f}"


def _collapse(rows: list[Row], variant: str | None) -> tuple[str, str]:
    excluded: list[str] = []
    vanilla = _values(rows, "vanilla", None, None, ("retain",), excluded)
    if vanilla is None:
        return NOT_MEASURED, f"Not measured: vanilla Retain unavailable ({excluded[0]})."
    if vanilla[0] <= 0:
        return NOT_MEASURED, "Not measured: vanilla's Retain is 0, so nothing can collapse."
    threshold = COLLAPSE_RATIO * vanilla[0]
    parts, passed = [], 0
    for method in (m for m in COLLAPSE_METHODS if m in methods(rows)):
        values = _values(rows, method, variant, "both", ("retain",), excluded)
        if values is not None:
            collapses = values[0] < threshold
            passed += collapses
            parts.append(f"{method} {values[0]:.3f} ({'collapses' if collapses else 'does not'})")
    evidence = (
        f"{_collapse_rule(threshold)}, at variant {variant}, both modalities. "
        f"Retain: {', '.join(parts) or 'none measured'}."
        + _excluded(excluded)
        + _not_run(rows, COLLAPSE_METHODS)
    )
    return _verdict(passed, len(parts), passed == len(parts)), evidence


def _utility(rows: list[Row], variant: str | None) -> tuple[str, str]:
    excluded: list[str] = []
    vanilla = _values(rows, "vanilla", None, None, ("retain", "forget"), excluded)
    gold = _values(rows, "gold", None, None, ("forget",), excluded)
    if vanilla is None or gold is None:
        return NOT_MEASURED, f"Not measured: {'; '.join(excluded)}."
    (v_retain, v_forget), (g_forget,) = vanilla, gold
    gap = v_forget - g_forget
    if gap <= 0:
        return NOT_MEASURED, (
            f"Not measured: gold's Forget ({g_forget:.3f}) is not below vanilla's "
            f"({v_forget:.3f}), so there is no forgetting gap to close."
        )
    keep = KEEP_UTILITY_RATIO * v_retain
    parts, passed = [], 0
    for method in (m for m in UTILITY_METHODS if m in methods(rows)):
        values = _values(rows, method, variant, "both", ("retain", "forget"), excluded)
        if values is None:
            continue
        retain, forget = values
        closed = (v_forget - forget) / gap
        keeps, little = retain >= keep, closed < FORGET_LITTLE_SHARE
        passed += keeps and little
        parts.append(
            f"{method}: Retain {retain:.3f} ({'keeps' if keeps else 'loses'} utility), "
            f"closes {closed:.0%} of the gap ({'forgets little' if little else 'forgets more'})"
        )
    evidence = (
        f"Keeps utility = Retain ≥ {KEEP_UTILITY_RATIO} × vanilla Retain = {keep:.3f}; forgets "
        f"little = closes < {FORGET_LITTLE_SHARE:.0%} of the Forget gap from vanilla "
        f"({v_forget:.3f}) to gold ({g_forget:.3f}); at variant {variant}, both modalities. "
        f"{'; '.join(parts) or 'None measured'}."
        + _excluded(excluded)
        + _not_run(rows, UTILITY_METHODS)
    )
    return _verdict(passed, len(parts), passed == len(parts)), evidence


def _modalities(rows: list[Row], variant: str | None) -> tuple[str, str]:
    parts, excluded, passed = [], [], 0
    for method in methods(rows):
        if any(find_row(rows, method, variant, m) is None for m in ("both", "text", "visual")):
            continue
        found = [_values(rows, method, variant, m, ("forget",), excluded)
                 for m in ("both", "text", "visual")]
        forgets = [values[0] for values in found if values is not None]
        if len(forgets) < len(found):
            continue
        both, text, visual = forgets
        more = both < min(text, visual)
        passed += more
        parts.append(
            f"{method}: both {both:.3f} {'<' if more else '≥'} min(text {text:.3f}, "
            f"visual {visual:.3f})"
        )
    measured = len(parts)
    evidence = (
        f"Holds for a method when Forget(both) < min(Forget(text), Forget(visual)), at variant "
        f"{variant}; the finding holds when more than two thirds of the methods with all three "
        f"rows do ({passed} of {measured}). "
        f"{'; '.join(parts) or 'No method has usable both, text and visual rows'}."
        + _excluded(excluded)
    )
    return _verdict(passed, measured, 3 * passed > 2 * measured), evidence


def _l1_pair(rows: list[Row], main_variant: str | None) -> tuple[str, str] | None:
    """(LoRA variant with λ = 0, preferably the main one; first LoRA variant with λ > 0)."""
    found = variants(rows)
    plain = [name for name, (lora, l1) in found.items() if lora and l1 == 0]
    with_l1 = [name for name, (lora, l1) in found.items() if lora and l1 > 0]
    if not plain or not with_l1:
        return None
    return (main_variant if main_variant in plain else plain[0]), with_l1[0]


def _l1(rows: list[Row], main_variant: str | None) -> tuple[str, str]:
    pair = _l1_pair(rows, main_variant)
    if pair is None:
        listed = ", ".join(
            f"{name} ({'LoRA' if lora else 'full'}, λ={l1:g})"
            for name, (lora, l1) in variants(rows).items()
        )
        return NOT_MEASURED, (
            "Not measured: needs a LoRA variant with λ = 0 and one with λ > 0; this run has "
            f"{listed or 'no unlearning variants'}."
        )
    plain, with_l1 = pair
    excluded: list[str] = []
    vanilla = _values(rows, "vanilla", None, None, ("retain",), excluded)
    if vanilla is None:
        return NOT_MEASURED, f"Not measured: vanilla Retain unavailable ({excluded[0]})."
    threshold = COLLAPSE_RATIO * vanilla[0]
    collapsed = []
    for method in methods(rows):
        values = _values(rows, method, plain, "both", ("retain",), excluded)
        if values is not None and values[0] < threshold:
            collapsed.append((method, values[0]))
    rule = (f"{_collapse_rule(threshold)}; {plain} (λ=0) vs {with_l1} "
            f"(λ={variants(rows)[with_l1][1]:g}), both modalities.")
    if not collapsed:
        return NOT_MEASURED, (
            f"Not measured: no method collapses without ℓ1 at {plain}, so there is no collapse "
            f"to prevent. {rule}" + _excluded(excluded)
        )
    parts, passed = [], 0
    for method, retain in collapsed:
        values = _values(rows, method, with_l1, "both", ("retain",), excluded)
        if values is not None:
            prevented = values[0] >= threshold
            passed += prevented
            parts.append(
                f"{method}: Retain {retain:.3f} → {values[0]:.3f} "
                f"({'prevented' if prevented else 'still collapses'})"
            )
    evidence = (
        f"{rule} Methods that collapse without ℓ1: "
        f"{'; '.join(parts) or 'none with a usable ℓ1 row'}." + _excluded(excluded)
    )
    return _verdict(passed, len(parts), passed == len(parts)), evidence
