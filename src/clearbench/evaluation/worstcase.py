"""The worst-case score (issue 20, item 6): robust forgetting, the lowest forgetting progress P
of a model over every audit that measures one, and the audit that gave it.

Pure functions of audit name → P mappings; an audit contributes a P where vanilla and gold
differ under it (elsewhere None or NaN, skipped). 1 is gold's level under every audit, so a
model whose forgetting holds everywhere keeps its headline P, and one that loses it anywhere
(a perturbed image, a held-out wording, a few steps of relearning) scores what it kept there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

HEADLINE = "headline"
"""The evaluation's own P: the forget tasks as they are."""


@dataclass(frozen=True)
class WorstCase:
    progress: float
    """The lowest P."""
    audit: str
    """The audit that gave it (the first in order on a tie)."""


def robust_forgetting(progress: Mapping[str, float | None]) -> WorstCase | None:
    """The lowest P of ``progress`` (audit name → P) and its audit; None where no audit has a
    finite P."""
    known = [(p, name) for name, p in progress.items() if p is not None and math.isfinite(p)]
    if not known:
        return None
    lowest = min(p for p, _ in known)
    return WorstCase(lowest, next(name for p, name in known if p == lowest))


def audit_progress(headline: float | None, robustness: Mapping[str, float | None],
                   relearn: Mapping[str, Sequence[float | None]],
                   precision: Mapping[str, float | None] | None = None,
                   crossmodal: Mapping[str, float | None] | None = None,
                   ) -> dict[str, float | None]:
    """Audit name → P of one model: :data:`HEADLINE` (the evaluation's P); ``robustness C``
    for each robustness condition C given (leave ``as_is`` out: the headline measures the
    tasks as they are); ``relearn A`` for each relearning attack A, the lowest P over the
    steps given (pass the grid's steps after 0: a relearning curve need not peak at its last
    step); ``precision T`` for each precision transform or packaging T given (leave out
    ``as_is`` and the skipped ones); ``crossmodal R`` for each cross-modal probe R given
    (the model's own row of the matrix; which probes: see ``clearbench.recipes.results``)."""
    lowest = {attack: [p for p in values if p is not None and math.isfinite(p)]
              for attack, values in relearn.items()}
    return {
        HEADLINE: headline,
        **{f"robustness {condition}": p for condition, p in robustness.items()},
        **{f"relearn {attack}": min(values) if values else None
           for attack, values in lowest.items()},
        **{f"precision {kind}": p for kind, p in (precision or {}).items()},
        **{f"crossmodal {probe}": p for probe, p in (crossmodal or {}).items()},
    }
