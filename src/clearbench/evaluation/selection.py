"""The tuning protocol's selection rule as a pure function of a grid's validation scores.

Stated before any number is seen (docs/tuning.md): among the grid points whose model utility
on the validation evaluation is at least ``min_utility_ratio`` × the vanilla model's, choose the
one with the highest Forgetting progress P, capped at 1 (forgetting more than the gold model,
which never saw the persons, is not better: P 1.3 and P 1.0 tie); ties go to the higher MU,
then to the earlier grid point. A point whose run diverged, or whose P or MU is missing, is
never chosen. When no point keeps enough utility, the one with the highest MU is chosen and
the choice says that the constraint was not met.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

P_CAP = 1.0
"""P above this (forgetting more than gold) counts as this much."""


@dataclass(frozen=True)
class Candidate:
    """One grid point's validation scores (means over the tuning seeds)."""

    progress: float | None
    """Forgetting progress P; None when the run diverged or P is undefined."""
    utility: float | None
    """Model utility MU; None when the run diverged."""


@dataclass(frozen=True)
class Choice:
    index: int
    """Position of the chosen point in the grid."""
    constraint_met: bool
    """Whether the chosen point keeps MU ≥ ratio × vanilla's MU."""
    floor: float
    """The MU floor: ratio × vanilla's MU."""


def _usable(candidate: Candidate) -> bool:
    return all(value is not None and math.isfinite(value)
               for value in (candidate.progress, candidate.utility))


def choose(candidates: Sequence[Candidate], vanilla_utility: float,
           min_utility_ratio: float = 0.9) -> Choice:
    """The chosen grid point under the rule of this module; ValueError when every point
    diverged (there is nothing to choose)."""
    if not 0 < min_utility_ratio <= 1:
        raise ValueError(f"min_utility_ratio must lie in (0, 1], got {min_utility_ratio}")
    usable = [i for i, candidate in enumerate(candidates) if _usable(candidate)]
    if not usable:
        raise ValueError(f"no grid point has finite scores ({len(candidates)} points: all "
                         "diverged or undefined); widen the grid towards smaller rates")
    floor = min_utility_ratio * vanilla_utility
    kept = [i for i in usable if candidates[i].utility >= floor]
    if not kept:
        best = max(usable, key=lambda i: (candidates[i].utility, -i))
        return Choice(best, False, floor)
    best = max(kept, key=lambda i: (min(candidates[i].progress, P_CAP),
                                    candidates[i].utility, -i))
    return Choice(best, True, floor)
