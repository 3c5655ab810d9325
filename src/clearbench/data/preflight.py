"""Preflight: every config and column a command will read, checked before any weights load.

A command (or a whole run) lists what its stages read as :class:`Need` items; :func:`preflight`
loads and validates each one (loads are cached, so the stages reuse them) and raises one
:class:`~clearbench.data.schema.DataError` listing every problem, each naming its source,
config, column and likely cause.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import datasets

from clearbench.data.loading import DataSource, load_clear, load_tofu
from clearbench.data.schema import DataError


@dataclass(frozen=True)
class Need:
    """One config a stage reads: ``dataset`` is ``clear`` or ``tofu``."""

    dataset: str
    config: str
    why: str = field(default="", compare=False)
    """What reads it, where a problem needs that said (e.g. an option to change)."""


def preflight(source: DataSource, needs: Iterable[Need]) -> dict[Need, datasets.Dataset]:
    """Load and validate every needed config; raise one DataError naming all problems."""
    loaded: dict[Need, datasets.Dataset] = {}
    problems: dict[str, str] = {}  # error → how it is reported
    for need in dict.fromkeys(needs):
        load = load_clear if need.dataset == "clear" else load_tofu
        try:
            loaded[need] = load(source, need.config)
        except DataError as err:  # a missing source is one problem, not one per config
            problems.setdefault(str(err), f"{err} [read for {need.why}]" if need.why else str(err))
    if problems:
        raise DataError(
            f"{len(problems)} data problem(s), found before loading any weights:\n"
            + "\n".join(f"  - {problem}" for problem in problems.values())
        )
    return loaded
