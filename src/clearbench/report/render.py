"""Write a run's report from ``RUN_DIR/results.json``: ``report.md``, a self-contained
``report.html`` (plots embedded), ``leaderboard.csv`` and the plots in ``RUN_DIR/plots/``, then
``report.json``, the manifest naming the results they show (:mod:`clearbench.report.manifest`).

The content is built once as a list of blocks, then rendered to Markdown and to HTML. Every file
is written atomically, so a reader never sees half of one; the manifest is deleted first and
written last, so a report interrupted half-way is never taken as complete.
"""

from __future__ import annotations

import base64
import csv
import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearbench.io import write_text_atomic
from clearbench.report.findings import Finding, findings, tuned_findings, verdict_basis
from clearbench.report.manifest import forget_manifest, write_manifest
from clearbench.report.plots import Plot, write_plots
from clearbench.report.results import (
    forget_splits,
    gate_warnings,
    level,
    load_results,
    main_variant,
    variants,
)
from clearbench.report.tables import (
    LEADERBOARD_IDENTITY,
    LEADERBOARD_NOTE,
    Table,
    audit_table,
    authors_table,
    cost_table,
    crossmodal_table,
    crosstrack_tables,
    cv_table,
    fmt_lambda,
    interval_text,
    l1_table,
    leaderboard_rows,
    main_table,
    modality_table,
    precision_table,
    relearn_table,
    robust_table,
    robustness_table,
    text_table,
    tuned_table,
    tuning_table,
)

FINDINGS_TITLE = "Paper findings (spec §6) on this run"
CSS = """
body{font-family:system-ui,sans-serif;max-width:110em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.3em 0 .5em;font-size:.9em;display:block;max-width:100%;
overflow-x:auto}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
td{white-space:nowrap}
th:first-child,td:first-child{text-align:left}
th{background:#f3f3f3}
caption{font-weight:bold;text-align:left;padding:.3em 0}
.note{color:#555;font-size:.85em;margin-bottom:1.5em}
figure{margin:1em 0}
img{max-width:100%}
.verdict{font-weight:bold}
.holds{color:#1a7f37}.not-separable-at-this-size{color:#9a6700}.does-not-hold{color:#cf222e}
.not-measured{color:#57606a}
figcaption{color:#555;font-size:.85em}
"""


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class TableBlock:
    table: Table
    html_id: str | None = None


@dataclass(frozen=True)
class FindingList:
    items: list[Finding]


Block = Heading | Paragraph | TableBlock | FindingList | Plot


def write_report(run_dir: Path) -> list[Path]:
    """Write the report of the run in ``run_dir``; the paths written (plots first, the
    manifest last)."""
    results = load_results(run_dir)
    forget_manifest(run_dir)
    plots = write_plots(results, run_dir / "plots")
    blocks = report_blocks(results, run_dir.name, plots)
    written = [plot.path for split in forget_splits(results) for plot in plots[split]]
    for name, text in (
        ("report.md", to_markdown(blocks, run_dir)),
        ("report.html", to_html(blocks, run_dir.name)),
        ("leaderboard.csv", leaderboard_csv(results)),
    ):
        write_text_atomic(run_dir / name, text)
        written.append(run_dir / name)
    return [*written, write_manifest(run_dir, results, written)]


def terminal_summary(run_dir: Path) -> str:
    """Gate warnings, then per forget split the main table (and robust forgetting) and the
    findings' verdicts, then the text-only, vision-only and cross-track tables, as plain
    text."""
    results = load_results(run_dir)
    found = findings(results)
    parts = gate_warnings(results["rows"])
    for split in forget_splits(results):
        parts.append(markdown_table(main_table(results, split)))
        robust = robust_table(results, split)
        if robust is not None:
            parts.append(markdown_table(robust))
        parts.append("\n".join(f"- {f.claim}: {f.verdict}"
                               for f in found if f.forget_split == split))
    parts += [markdown_table(block.table) for _, tables in track_sections(results)
              for block in tables]
    return "\n\n".join(parts)


def track_sections(results: dict[str, Any]) -> list[tuple[str, list[TableBlock]]]:
    """The text-only, vision-only and cross-track sections the results have: (heading,
    tables)."""
    sections = []
    text, cross = text_table(results), crosstrack_tables(results)
    if text is not None:
        sections.append(("Text-only track", [TableBlock(text, "text-table")]))
    if "cv" in results:
        sections.append(("Vision-only track (paper Table 2)",
                         [TableBlock(cv_table(results["cv"]), "cv-table")]))
    if cross is not None:
        sections.append(("Cross-track rankings", [TableBlock(cross[0], "crosstrack-table"),
                                                  TableBlock(cross[1], "spearman-table")]))
    return sections


def header(results: dict[str, Any]) -> str:
    """The report's opening paragraph: what ran, with which seeds and intervals."""
    run, summary = results["run"], results["summary"]
    listed = ", ".join(
        f"{v} ({'LoRA' if lora else 'full'}, {fmt_lambda(l1)})"
        for v, (lora, l1) in variants(summary).items()
    )
    seeds = ", ".join(map(str, run.get("seeds") or [])) or "not recorded"
    unscored = sum(row["status"] != "ok" for row in results["rows"])
    return (
        f"Config {run.get('config', 'unknown')}; data {run.get('data', 'unknown')}; main "
        f"variant {main_variant(results)}; variants: {listed or 'none'}; forget splits: "
        f"{', '.join(forget_splits(results)) or 'none'}; unlearning seeds: {seeds}. "
        f"{len(summary)} models, {len(results['rows'])} model-seed runs ({unscored} without "
        f"scores). Every score is the mean over a model's seeds with its "
        f"{interval_text(results)}."
    )


def report_blocks(results: dict[str, Any], name: str, plots: dict[str, list[Plot]]) -> list[Block]:
    """The report's content: tables and plots per forget split, findings, audits, cost."""
    splits = forget_splits(results)
    blocks: list[Block] = [
        Heading(1, f"CLEAR run report: {name}"),
        Paragraph(header(results)),
        *(Paragraph(warning) for warning in gate_warnings(results["rows"])),
    ]
    for i, split in enumerate(splits):
        html_id = "main-table" if i == 0 else f"main-table-{split}"
        blocks += [
            Heading(2, f"Forget split {split}"),
            TableBlock(main_table(results, split), html_id),
        ]
        extra = (robust_table(results, split), authors_table(results, split),
                 modality_table(results, split), l1_table(results, split))
        blocks += [TableBlock(table) for table in extra if table is not None]
        blocks += plots.get(split, [])
    found = findings(results)
    blocks += [Heading(2, FINDINGS_TITLE), Paragraph(verdict_basis(level(results)))]
    for split in splits:
        blocks += [Heading(3, split), FindingList([f for f in found if f.forget_split == split])]
    audits = [table for split in splits for table in (
        audit_table(results, split), audit_table(results, split, "qa_audit"),
        robustness_table(results, split),
        relearn_table(results, split), precision_table(results, split),
        crossmodal_table(results, split)) if table is not None]
    if audits:
        blocks += [Heading(2, "Audits: does the model really forget?")]
        blocks += [TableBlock(table) for table in audits]
    if "tuning" in results:
        blocks += [Heading(2, "Tuned settings (chosen on validation persons)"),
                   TableBlock(tuning_table(results), "tuning-table")]
        blocks += [TableBlock(tuned_table(results, split)) for split in splits]
        again = tuned_findings(results)
        for split in splits:
            blocks += [Heading(3, f"Findings at the tuned settings, {split}"),
                       FindingList([f for f in again if f.forget_split == split])]
    for heading, tables in track_sections(results):
        blocks += [Heading(2, heading), *tables]
    blocks += [Heading(2, "Leaderboard"), Paragraph(LEADERBOARD_NOTE), Heading(2, "Cost")]
    blocks += [TableBlock(cost_table(results, split)) for split in splits]
    return blocks


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(table: Table) -> str:
    """``table`` as a Markdown table under its bold title (and its note)."""
    lines = [
        f"**{table.title}**",
        "",
        "| " + " | ".join(_md_cell(c) for c in table.columns) + " |",
        "|" + "|".join([":---", *["---:"] * (len(table.columns) - 1)]) + "|",
        *("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows),
    ]
    if table.note:
        lines += ["", f"*{table.note}*"]
    return "\n".join(lines)


def to_markdown(blocks: list[Block], run_dir: Path) -> str:
    """The blocks as Markdown; plots are linked relative to ``run_dir``."""
    parts = []
    for block in blocks:
        match block:
            case Heading(level, text):
                parts.append(f"{'#' * level} {text}")
            case Paragraph(text):
                parts.append(text)
            case TableBlock(table):
                parts.append(markdown_table(table))
            case FindingList(items):
                parts.append("\n".join(
                    f"- **{f.claim}**: *{f.verdict}*. {f.evidence}" for f in items
                ))
            case Plot(path, caption):
                parts.append(f"![{caption}]({path.relative_to(run_dir).as_posix()})")
    return "\n\n".join(parts) + "\n"


def _html_table(block: TableBlock) -> str:
    table, esc = block.table, html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in table.rows
    )
    id_attr = f' id="{esc(block.html_id)}"' if block.html_id else ""
    out = (f"<table{id_attr}><caption>{esc(table.title)}</caption>"
           f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return out + (f'<p class="note">{esc(table.note)}</p>' if table.note else "")


def _html_findings(items: list[Finding]) -> str:
    lis = "".join(
        f"<li><strong>{html.escape(f.claim)}</strong>: "
        f'<span class="verdict {f.verdict.replace(" ", "-")}">{html.escape(f.verdict)}</span>. '
        f"{html.escape(f.evidence)}</li>"
        for f in items
    )
    return f"<ul>{lis}</ul>"


def _html_plot(plot: Plot) -> str:
    data = base64.b64encode(plot.path.read_bytes()).decode("ascii")
    caption = html.escape(plot.caption)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>")


def to_html(blocks: list[Block], title: str) -> str:
    """The blocks as one self-contained HTML page (plots embedded as data URIs)."""
    parts = []
    for block in blocks:
        match block:
            case Heading(level, text):
                parts.append(f"<h{level}>{html.escape(text)}</h{level}>")
            case Paragraph(text):
                parts.append(f"<p>{html.escape(text)}</p>")
            case TableBlock():
                parts.append(_html_table(block))
            case FindingList(items):
                parts.append(_html_findings(items))
            case Plot():
                parts.append(_html_plot(block))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>CLEAR run report: {html.escape(title)}</title>\n<style>{CSS}</style>\n"
        "</head>\n<body>\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )


def leaderboard_csv(results: dict[str, Any]) -> str:
    """:func:`.tables.leaderboard_rows` as CSV with a header; null values are empty."""
    records = leaderboard_rows(results)
    columns = list(records[0]) if records else [*LEADERBOARD_IDENTITY, "rank", "tied_with"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([["" if r[c] is None else r[c] for c in columns] for r in records])
    return buffer.getvalue()
