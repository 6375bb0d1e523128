"""Render a results or leaderboard document as a Markdown report (``leaderboard.md``)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .columns import Column, efficiency_columns, format_number, format_p, metric_columns
from .correlation import correlations as compute_correlations
from .ranking import rank_entries, utility_tasks

__all__ = ["md_escape", "render_markdown", "utility_cell"]

RANKING_RULE = (
    "Ranked by downstream utility only: augmentation Δ (significant results first, then larger Δ), "
    "then feature-extraction / cross-task Δ, then entry name. Fidelity, variety, privacy and "
    "efficiency columns are shown for comparison and never affect the rank."
)
SIGNIFICANCE_LEGEND = "✔ = significant (Holm-corrected p < 0.05 and Δ > 0)."


def md_escape(text: object) -> str:
    """Make any user-supplied value safe in a Markdown table cell: HTML and Markdown are inert."""
    escaped = html.escape(" ".join(str(text).split()), quote=True)
    for char in ("\\", "|", "`", "*"):
        escaped = escaped.replace(char, "\\" + char)
    # "_" only emphasises at a word boundary; inside names like fidelity_privacy it stays as is
    escaped = re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", escaped)
    return escaped.replace("](", "\\](")


def utility_cell(result: Any, escape: Callable[[str], str] | None = None) -> str:
    """``+1.80 [+0.40, +3.10] p=0.031 (Holm 0.062) ✔`` — Δ pp with CI, p-values, significance.

    ``escape`` (default :func:`md_escape`) is applied to the only free text, the task's note.
    """
    escape = escape or md_escape
    if not isinstance(result, Mapping):
        return "—"
    delta = result.get("delta_pp")
    if not isinstance(delta, int | float) or isinstance(delta, bool):
        note = result.get("note")
        return f"— ({escape(str(note))})" if note else "—"
    parts = [f"{delta:+.2f}"]
    ci = result.get("ci95_pp")
    if isinstance(ci, Sequence) and len(ci) == 2 and all(isinstance(v, int | float) for v in ci):
        parts.append(f"[{ci[0]:+.2f}, {ci[1]:+.2f}]")
    p_value, p_holm = result.get("p_value"), result.get("p_value_holm")
    if isinstance(p_value, int | float):
        parts.append(f"p={format_p(float(p_value))}")
    else:
        parts.append("p=—")  # the task's note says why (e.g. every seed gave Δ = 0)
    if isinstance(p_holm, int | float):
        parts.append(f"(Holm {format_p(float(p_holm))})")
    if result.get("significant") is True:
        parts.append("✔")
    return " ".join(parts)


def _column_header(column: Column) -> str:
    return f"{md_escape(column.label)} {column.arrow}".rstrip()


def _suite_line(results: Mapping[str, Any], n_entries: int, n_failed: int) -> str:
    suite = results.get("suite") or {}
    dataset = results.get("dataset") or {}
    bits = [f"Suite **{md_escape(suite.get('name', '?'))}**"]
    if suite.get("hash"):
        bits.append(f"hash `{md_escape(str(suite['hash'])[:12])}`")
    if dataset.get("plugin"):
        modality = f" ({md_escape(dataset['modality'])})" if dataset.get("modality") else ""
        bits.append(f"dataset {md_escape(dataset['plugin'])}{modality}")
    seeds = suite.get("seeds")
    if isinstance(seeds, list) and seeds:
        bits.append(f"{len(seeds)} seeds")
    bits.append(f"{n_entries} entries ({n_failed} failed)")
    return ", ".join(bits) + "."


def _correlation_section(correlations: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = [
        "## Does fidelity predict utility?",
        "",
        "Rank correlation across entries between each fidelity / variety / privacy metric and each "
        "utility Δ. *agreement* = ρ oriented so that positive means “better metric ↔ more useful”.",
        "",
        "| Metric | Utility | n | Spearman ρ (p) | Kendall τ (p) | agreement | note |",
        "|---|---|---:|---|---|---:|---|",
    ]
    for row in correlations:
        rho, tau = row.get("spearman"), row.get("kendall")
        rho_p, tau_p = row.get("spearman_p"), row.get("kendall_p")
        spearman = "—" if rho is None else f"{rho:+.3f} ({format_p(rho_p)})"
        kendall = "—" if tau is None else f"{tau:+.3f} ({format_p(tau_p)})"
        agreement = row.get("agreement")
        lines.append(
            f"| {md_escape(row.get('metric', ''))} | {md_escape(row.get('utility', ''))} "
            f"| {row.get('n', 0)} | {spearman} | {kendall} "
            f"| {'—' if agreement is None else f'{agreement:+.3f}'} "
            f"| {md_escape(row.get('reason') or '')} |"
        )
    return [*lines, ""]


def _failed_section(failed: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["## Failed entries", ""]
    for entry in failed:
        stage = entry.get("failed_stage")
        where = f" (stage `{md_escape(stage)}`)" if stage else ""
        error = entry.get("error") or "no error message recorded"
        lines.append(f"- **{md_escape(entry.get('name', '?'))}**{where}: {md_escape(error)}")
    return [*lines, ""]


def render_markdown(results: dict[str, Any]) -> str:
    """The ranked leaderboard of a results (or leaderboard) document as Markdown.

    Columns: rank, entry, baseline marker, one Δ column per utility task (pp, 95% CI, p and Holm
    p, ✔ when significant), then fidelity / variety / privacy / efficiency values, then the rank
    correlation of each metric with utility (the document's ``correlations``, computed when
    absent) and the failed entries with their errors.
    Every user-supplied string is escaped, so names cannot inject HTML or Markdown.
    """
    raw_entries = results.get("entries") or []
    entries = rank_entries([dict(e) for e in raw_entries])
    ok = [e for e in entries if e.get("rank") is not None]
    failed = [e for e in entries if e.get("rank") is None]
    tasks = utility_tasks(ok)
    columns = metric_columns(ok) + efficiency_columns(ok)

    header = ["Rank", "Entry", "Baseline"]
    header += [f"{md_escape(task)} Δ pp [95% CI] p" for task in tasks]
    header += [_column_header(column) for column in columns]
    align = ["---:", "---", ":---:"] + ["---"] * len(tasks) + ["---:"] * len(columns)

    suite_name = (results.get("suite") or {}).get("name", "?")
    lines = [
        f"# Leaderboard — {md_escape(suite_name)}",
        "",
        _suite_line(results, len(entries), len(failed)),
        "",
        RANKING_RULE,
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(align) + "|",
    ]
    for entry in ok:
        utility = entry.get("utility") or {}
        cells = [str(entry["rank"]), md_escape(entry.get("name", "?"))]
        cells.append("baseline" if entry.get("baseline") else "")
        cells += [utility_cell(utility.get(task)) for task in tasks]
        cells += [format_number(column.value(entry)) for column in columns]
        lines.append("| " + " | ".join(cells) + " |")
    if not ok:
        lines.append("| — | *no entry completed* |" + " |" * (len(header) - 2))
    lines += ["", SIGNIFICANCE_LEGEND, ""]

    correlations = results.get("correlations")
    if correlations is None:  # a plain results document: compute them here
        correlations = compute_correlations(entries)
    if isinstance(correlations, list) and correlations:
        lines += _correlation_section(correlations)
    if failed:
        lines += _failed_section(failed)
    return "\n".join(lines).rstrip() + "\n"
