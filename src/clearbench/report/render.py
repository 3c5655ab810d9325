"""Write a run's report from ``RUN_DIR/results.json``: ``report.md``, a self-contained
``report.html`` (plots embedded), ``leaderboard.csv`` and the plots in ``RUN_DIR/plots/``.

The content is built once as a list of blocks, then rendered to Markdown and to HTML. Every file
is written atomically, so a reader never sees half of one.
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
from clearbench.report.findings import Finding, findings
from clearbench.report.plots import Plot, write_plots
from clearbench.report.results import (
    forget_splits,
    gate_warnings,
    load_results,
    main_variant,
    variants,
)
from clearbench.report.tables import (
    IDENTITY_KEYS,
    Table,
    cost_table,
    cv_table,
    fmt_lambda,
    l1_table,
    leaderboard_rows,
    main_table,
    modality_table,
)

FINDINGS_TITLE = "Paper findings (spec §6) on this run"
CSS = """
body{font-family:system-ui,sans-serif;max-width:75em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.3em 0 .5em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f3f3f3}
caption{font-weight:bold;text-align:left;padding:.3em 0}
.note{color:#555;font-size:.85em;margin-bottom:1.5em}
figure{margin:1em 0}
img{max-width:100%}
.verdict{font-weight:bold}
.holds{color:#1a7f37}.partly-holds{color:#9a6700}.does-not-hold{color:#cf222e}
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
    """Write the report of the run in ``run_dir``; the paths written (plots first)."""
    results = load_results(run_dir)
    rows, splits, variant = results["rows"], forget_splits(results), main_variant(results)
    plots = write_plots(rows, splits, variant, run_dir / "plots")
    blocks = report_blocks(results, run_dir.name, plots)
    written = [plot.path for split in splits for plot in plots[split]]
    for name, text in (
        ("report.md", to_markdown(blocks, run_dir)),
        ("report.html", to_html(blocks, run_dir.name)),
        ("leaderboard.csv", leaderboard_csv(rows)),
    ):
        write_text_atomic(run_dir / name, text)
        written.append(run_dir / name)
    return written


def terminal_summary(run_dir: Path) -> str:
    """The main table and the findings' verdicts of each forget split, as plain text."""
    results = load_results(run_dir)
    rows, variant = results["rows"], main_variant(results)
    found = findings(rows, variant)
    parts = gate_warnings(rows)
    for split in forget_splits(results):
        parts.append(markdown_table(main_table(rows, split, variant)))
        parts.append("\n".join(f"- {f.claim}: {f.verdict}"
                               for f in found if f.forget_split == split))
    if "cv" in results:
        parts.append(markdown_table(cv_table(results["cv"])))
    return "\n\n".join(parts)


def report_blocks(results: dict[str, Any], name: str, plots: dict[str, list[Plot]]) -> list[Block]:
    """The report's content: tables and plots per forget split, findings, cost."""
    rows, splits, variant = results["rows"], forget_splits(results), main_variant(results)
    listed = ", ".join(
        f"{v} ({'LoRA' if lora else 'full'}, {fmt_lambda(l1)})"
        for v, (lora, l1) in variants(rows).items()
    )
    failed = sum(row["status"] != "ok" for row in rows)
    blocks: list[Block] = [
        Heading(1, f"CLEAR run report: {name}"),
        Paragraph(
            f"Config {results.get('run', {}).get('config', 'unknown')}; main variant {variant}; "
            f"variants: {listed or 'none'}; forget splits: {', '.join(splits) or 'none'}; "
            f"{len(rows)} models, {failed} without scores."
        ),
        *(Paragraph(warning) for warning in gate_warnings(rows)),
    ]
    for i, split in enumerate(splits):
        html_id = "main-table" if i == 0 else f"main-table-{split}"
        blocks += [
            Heading(2, f"Forget split {split}"),
            TableBlock(main_table(rows, split, variant), html_id),
        ]
        extra = (modality_table(rows, split, variant), l1_table(rows, split))
        blocks += [TableBlock(table) for table in extra if table is not None]
        blocks += plots.get(split, [])
    found = findings(rows, variant)
    blocks += [
        Heading(2, FINDINGS_TITLE),
        Paragraph("Verdicts are computed from this run's numbers; each evidence sentence states "
                  "its threshold. Diverged rows and null values are left out and named."),
    ]
    for split in splits:
        blocks += [Heading(3, split), FindingList([f for f in found if f.forget_split == split])]
    if "cv" in results:
        blocks += [Heading(2, "Vision-only track (paper Table 2)"),
                   TableBlock(cv_table(results["cv"]), "cv-table")]
    blocks.append(Heading(2, "Cost"))
    blocks += [TableBlock(cost_table(rows, split)) for split in splits]
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


def leaderboard_csv(rows: list[dict[str, Any]]) -> str:
    """One CSV record per result row, with a header; null values are empty."""
    records = leaderboard_rows(rows)
    columns = list(records[0]) if records else list(IDENTITY_KEYS)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([["" if r[c] is None else r[c] for c in columns] for r in records])
    return buffer.getvalue()
