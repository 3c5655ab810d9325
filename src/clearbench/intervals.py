"""Percentile intervals of bootstrap replicates, shared by the statistics that compute them and
the report that combines them (numpy only, so reading a report stays light)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def percentile_interval(replicates: Iterable[float | None], level: float) -> tuple[float, float]:
    """The central ``level`` percentile interval of the replicates, leaving out missing ones
    (None or NaN); (NaN, NaN) when none is left."""
    values = np.array([np.nan if v is None else v for v in replicates], dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
