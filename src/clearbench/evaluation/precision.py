"""The precision audit's pure parts (issue 20, item 3; docs/audits.md, "Precision"):
forgetting progress P under a transform against P as is, and the flag.

Inputs are ``(replicates + 1,)`` arrays of P on the same person-bootstrap draws (index 0: the
point, on every row), so differences between transforms are paired.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from clearbench.evaluation.statistics import Estimate, interval, paired_difference

MIN_DROP = 0.01
"""The smallest fall of P that flags: a point interval (one forget person: every bootstrap
replicate draws the same person) would otherwise flag rounding noise."""
RULE = ("flagged when P under the transform falls below P as is by more than half the width of "
        f"P as is's 95 % person-bootstrap interval, and by more than {MIN_DROP}")


def falls_beyond_interval(as_is: Estimate, progress: float) -> bool:
    """The flag rule (:data:`RULE`): ``as_is.mean − progress > max((as_is.high − as_is.low)
    / 2, MIN_DROP)``. Never flags where either P, or the interval, is undefined (NaN: vanilla
    and gold know the same)."""
    drop = as_is.mean - progress
    half_width = (as_is.high - as_is.low) / 2
    return not math.isnan(drop) and not math.isnan(half_width) and drop > max(half_width,
                                                                                 MIN_DROP)


def progress_under(p_as_is: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """P under a transform: its estimate, the paired difference P − P as is with its interval
    (< 0: forgetting was lost; None where undefined), and whether the transform is flagged."""
    p_as_is, p = np.asarray(p_as_is, dtype=float), np.asarray(p, dtype=float)
    as_is = interval(float(p_as_is[0]), p_as_is[1:])
    change = paired_difference(p[1:], p_as_is[1:], float(p[0] - p_as_is[0]))
    return {"progress": _defined(interval(float(p[0]), p[1:])),
            "progress_change": _defined(change),
            "flagged": falls_beyond_interval(as_is, float(p[0]))}


def _defined(estimate: Estimate) -> dict[str, float | None]:
    return {part: None if math.isnan(value) else value
            for part, value in estimate.as_dict().items()}
