"""The report of a ``clearbench run``: tables, spec §6 findings and plots from ``results.json``.

Layout (dependencies point one way): results -> crosstrack -> tables; results -> findings,
plots; tables, findings, plots -> render; compare only reads results.
"""

from clearbench.report.compare import compare_runs
from clearbench.report.render import terminal_summary, write_report

__all__ = ["compare_runs", "terminal_summary", "write_report"]
