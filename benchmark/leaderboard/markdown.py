"""Render a results or leaderboard document as a Markdown report (``leaderboard.md``)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..checks import evaluate_checks
from .columns import (
    AXIS_TITLES,
    DOCS_SECTION,
    QUANTITIES,
    Column,
    column_decimals,
    describe_column,
    describe_task,
    efficiency_columns,
    format_p,
    format_value,
    headline_columns,
    metric_columns,
)
from .correlation import ALPHA, EXACT_MAX_N, MC_RESAMPLES, MC_SEED, MIN_INTERVAL_N
from .correlation import correlations as compute_correlations
from .ranking import is_ok, judge, utility_tasks

__all__ = [
    "budget_line",
    "checks_section",
    "column_label",
    "correlation_cells",
    "correlation_summary",
    "delta_lines",
    "flag_lines",
    "md_escape",
    "rank_cell",
    "render_markdown",
    "utility_cell",
    "value_formats",
    "versus_classical_cell",
]

RANKING_RULE = (
    "Ranked by downstream utility only: mean Δ of the first utility task (augmentation first), "
    "with a 95% rank interval from resampling seeds and test images; entries whose rank "
    "intervals overlap are tied (=k). Reference rows (real only, the memoriser, classical "
    "augmentation, positive and negative controls) are shown beside the ranking, never ranked. "
    "Fidelity, variety, privacy and efficiency columns are shown for comparison and never "
    "affect the rank."
)
SIGNIFICANCE_LEGEND = (
    "Δ = primary score with synthetic data minus real only, in percentage points, mean over "
    "paired seeds; [interval] = 95% simultaneous Student-t CI (Bonferroni over the family of the "
    "comparison); p = exact two-sided Wilcoxon signed-rank over seeds, Holm-adjusted within the "
    "family. ▲ / ▼ = significantly better / worse than real only (Holm p < 0.05)."
)
FLAG = "⚑"
#: Opening words of the sentence shown when no row can reach p < α.
TOO_FEW = "Too few entries to conclude anything"


def md_escape(text: object) -> str:
    """Make any user-supplied value safe in a Markdown table cell: HTML and Markdown are inert.

    ``<``, ``>`` and ``&`` are escaped (no tag can start); quotes stay as they are, since without
    a tag there is no attribute to break out of, and ``&#x27;`` in an error message reads badly.
    """
    escaped = html.escape(" ".join(str(text).split()), quote=False)
    for char in ("\\", "|", "`", "*"):
        escaped = escaped.replace(char, "\\" + char)
    # "_" only emphasises at a word boundary; inside names like fidelity_privacy it stays as is
    escaped = re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", escaped)
    return escaped.replace("](", "\\](")


def utility_cell(result: Any, escape: Callable[[str], str] | None = None) -> str:
    """``+1.80 [+0.40, +3.10] p=0.031 ▲`` — Δ pp, simultaneous CI, Holm-adjusted p, verdict.

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
    ci = result.get("ci_simultaneous_pp") or result.get("ci95_pp")
    if isinstance(ci, Sequence) and len(ci) == 2 and all(isinstance(v, int | float) for v in ci):
        parts.append(f"[{ci[0]:+.2f}, {ci[1]:+.2f}]")
    p_adj = result.get("p_value_adj")
    if isinstance(p_adj, int | float):
        parts.append(f"p={format_p(float(p_adj))}")
    else:
        parts.append("p=—")  # the task's note says why (e.g. every seed gave Δ = 0)
    direction = result.get("direction")
    if result.get("significant") is True:
        parts.append("▲" if direction == "better" else "▼")
    if result.get("flags"):
        parts.append(FLAG)
    return " ".join(parts)


def rank_cell(entry: Mapping[str, Any]) -> str:
    """``=2 (1–3)``: the rank label and the 95% rank interval."""
    label = str(entry.get("rank_label") or entry.get("rank") or "—")
    interval = entry.get("rank_interval")
    if isinstance(interval, list) and len(interval) == 2:
        return f"{label} ({interval[0]}–{interval[1]})"
    return label


def versus_classical_cell(result: Any) -> str:
    """Δ of an entry against classical augmentation, with its 95% CI (paired by seed)."""
    versus = result.get("vs_classical") if isinstance(result, Mapping) else None
    if not isinstance(versus, Mapping) or not isinstance(versus.get("delta_pp"), int | float):
        return "—"
    ci = versus.get("ci95_pp")
    interval = f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if isinstance(ci, list) and len(ci) == 2 else ""
    return f"{versus['delta_pp']:+.2f}{interval}"


def flag_lines(
    entries: Sequence[Mapping[str, Any]], dataset: Mapping[str, Any] | None = None
) -> list[tuple[str, str, str]]:
    """(entries, where, flag) for every warning kept on the board's entries — first those of
    the data every entry shares (``dataset["flags"]``: duplicates across splits, upsampling);
    a warning raised for several entries in the same place is listed once with all their names."""
    data_flags = (dataset or {}).get("flags") or []
    found: dict[tuple[str, str], list[str]] = {
        ("data", str(flag)): ["every entry"] for flag in data_flags}
    for entry in entries:
        name = str(entry.get("name", "?"))
        places = [("generator", str(flag)) for flag in entry.get("flags") or []]
        for task, result in (entry.get("utility") or {}).items():
            flags = (result.get("flags") or []) if isinstance(result, Mapping) else []
            places += [(str(task), str(flag)) for flag in flags]
        for key, record in (entry.get("metrics") or {}).items():
            flags = (record.get("flags") or []) if isinstance(record, Mapping) else []
            places += [(str(key).split(".")[0], str(flag)) for flag in flags]
        for place in places:
            names = found.setdefault(place, [])
            if name not in names:
                names.append(name)
    return [(", ".join(names), where, flag) for (where, flag), names in found.items()]


def budget_line(entries: Sequence[Mapping[str, Any]], tasks: Sequence[str]) -> str:
    """How the utility arms were budgeted, per task."""
    bits = []
    for task in tasks:
        budgets = {
            str((e.get("utility") or {}).get(task, {}).get("budget"))
            for e in entries if isinstance((e.get("utility") or {}).get(task), Mapping)
        }
        if budgets == {"steps"}:
            bits.append(f"{task}: both arms take the same number of optimisation steps")
        elif budgets == {"epochs"}:
            bits.append(f"{task}: both arms take the same number of epochs (the paper's "
                        "protocol — the arm with synthetic data takes more steps)")
        elif budgets:
            bits.append(f"{task}: budget {', '.join(sorted(budgets))}")
    return "; ".join(bits) + "." if bits else ""


def column_label(column: Column) -> str:
    """The column's short human label with its better-direction arrow (``FID ↓``)."""
    known = QUANTITIES.get(column.key)
    return f"{known.label if known else column.label} {column.arrow}".rstrip()


def _column_header(column: Column) -> str:
    return md_escape(column_label(column))


def value_formats(
    columns: Sequence[Column], entries: Sequence[Mapping[str, Any]]
) -> dict[str, int]:
    """Decimals of every column over the entries shown (see :func:`~.columns.column_decimals`)."""
    return {column.key: column_decimals(column, entries) for column in columns}


def delta_lines(
    entries: Sequence[Mapping[str, Any]], verdict: Mapping[str, Any], tasks: Sequence[str],
    suite: Mapping[str, Any] | None = None,
) -> list[str]:
    """One sentence per utility task: what Δ measures, the real-only score and the seeds."""
    real_only = verdict.get("real_only") or {}
    lines = []
    for task in tasks:
        records = [r for e in entries
                   if isinstance(r := (e.get("utility") or {}).get(task), Mapping)]
        row = real_only.get(task) if isinstance(real_only, Mapping) else None
        primary = str((row or {}).get("primary") or
                      next((r.get("primary") for r in records if r.get("primary")), "score"))
        what = describe_task(task, primary, suite)  # by the task's plugin (suite.protocol)
        seeds = (row or {}).get("seeds") or max(
            (len(r.get("seeds") or []) for r in records), default=0)
        text = f"{task} Δ = {what}, in percentage points (pp)"
        text += f", mean over {seeds} paired seeds" if seeds else ""
        if row and isinstance(row.get("mean_pct"), int | float):
            text += f". Real only: {primary} {row['mean_pct']:.2f}%"
            ci = row.get("ci95_pct")
            if isinstance(ci, list) and len(ci) == 2:
                text += f" (95% CI {ci[0]:.2f}–{ci[1]:.2f}%)"
            text += f", so Δ = +1 pp means {row['mean_pct'] + 1:.2f}%"
        lines.append(text + ".")
    return lines


def correlation_cells(row: Mapping[str, Any]) -> tuple[str, str]:
    """(``ρ [CI] p``, ``τ p``) of a correlation row, ``—`` when undefined."""
    rho, tau = row.get("spearman"), row.get("kendall")
    if rho is None or tau is None:
        return "—", "—"
    ci = row.get("spearman_ci95")
    interval = f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if isinstance(ci, list) and len(ci) == 2 else ""
    return (f"{rho:+.2f}{interval} p={format_p(row.get('spearman_p'))}",
            f"{tau:+.2f} p={format_p(row.get('kendall_p'))}")


def correlation_summary(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Plain sentences: how the p-values were computed and what this many entries can show."""
    computed = [r for r in rows if r.get("spearman") is not None]
    if not computed:
        return ["No rank correlation could be computed (see the notes)."]
    sizes = sorted({int(r.get("n", 0)) for r in computed})
    n_text = " or ".join(str(n) for n in sizes)
    exact = all(r.get("method") == "exact" for r in computed)
    how = (f"every one of the n! orderings of the entries enumerated (exact, up to "
           f"{EXACT_MAX_N} entries)" if exact else
           f"{MC_RESAMPLES:,} random orderings (seed {MC_SEED}) above {EXACT_MAX_N} entries, "
           "every ordering below")
    lines = [f"p = two-sided permutation p over {how}; per row, not corrected for the "
             f"{len(computed)} rows."]
    if all(not r.get("conclusive") for r in computed):
        smallest = min(float(r.get("min_p") or 1.0) for r in computed)
        lines.insert(0, f"{TOO_FEW}: with {n_text} entries no "
                        f"ordering can reach p < {ALPHA:g} (the smallest possible p is "
                        f"{smallest:.3g}), so this table cannot show whether any metric "
                        "predicts utility.")
    elif all(r.get("spearman_ci95") is None for r in computed):
        lines.append(f"No interval on ρ: {n_text} entries are too few for one (the Fisher-z "
                     f"interval needs {MIN_INTERVAL_N}); read ρ as a rough indication only.")
    else:
        lines.append("[interval] = 95% Fisher-z interval of ρ (Bonett–Wright standard error).")
    return lines


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
        *[text.replace(TOO_FEW, f"**{TOO_FEW}**") for text in correlation_summary(correlations)],
        "",
        "| Metric | Utility | n | Spearman ρ [CI] p | Kendall τ p | agreement | note |",
        "|---|---|---:|---|---|---:|---|",
    ]
    for row in correlations:
        spearman, kendall = correlation_cells(row)
        agreement = row.get("agreement")
        name = QUANTITIES[row["metric"]].label if row.get("metric") in QUANTITIES else row.get(
            "metric", "")
        reason = row.get("reason") or ""
        lines.append(
            f"| {md_escape(name)} | {md_escape(str(row.get('utility', '')).split('.')[0])} "
            f"| {row.get('n', 0)} | {spearman} | {kendall} "
            f"| {'—' if agreement is None else f'{agreement:+.2f}'} "
            f"| {md_escape(reason)} |"
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


def _verdict_section(verdict: Mapping[str, Any]) -> list[str]:
    lines = ["## What the differences mean", ""]
    lines += [f"- {md_escape(text)}" for text in verdict.get("statements") or []]
    families = verdict.get("families") or []
    if families:
        lines += ["", "Multiplicity families (Holm within each):"]
        lines += [
            f"- {md_escape(f['task'])}, {md_escape(f['family'])} (m = {f['size']}): "
            f"{md_escape(', '.join(f['members']))}"
            for f in families
        ]
    if verdict.get("rank_method"):
        lines += ["", f"Rank intervals: {md_escape(verdict['rank_method'])}."]
    return [*lines, ""]


def _reference_section(
    references: Sequence[Mapping[str, Any]], verdict: Mapping[str, Any], tasks: Sequence[str],
    columns: Sequence[Column], decimals: Mapping[str, int],
) -> list[str]:
    header = ["Reference row", "Kind"] + [f"{md_escape(t)} Δ pp" for t in tasks]
    header += [_column_header(c) for c in columns]
    lines = ["## Reference rows (not ranked)", "",
             "| " + " | ".join(header) + " |",
             "|" + "|".join(["---", "---"] + ["---"] * len(tasks) + ["---:"] * len(columns)) + "|"]
    real_only = verdict.get("real_only") or {}
    if real_only:
        cells = ["real only", "reference (Δ = 0)"]
        for task in tasks:
            row = real_only.get(task)
            cells.append(
                f"0 ({md_escape(row['primary'])} {row['mean_pct']:.2f}%)" if row else "—"
            )
        cells += ["—"] * len(columns)
        lines.append("| " + " | ".join(cells) + " |")
    for entry in references:
        utility = entry.get("utility") or {}
        cells = [md_escape(entry.get("name", "?")), md_escape(entry.get("reference") or "baseline")]
        cells += [utility_cell(utility.get(task)) for task in tasks]
        cells += [format_value(c.value(entry), decimals.get(c.key, 3)) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _legend(columns: Sequence[Column]) -> list[str]:
    lines = ["## What the columns mean", ""]
    for column in columns:
        name, definition = describe_column(column)
        direction = f" {column.direction}" if column.direction else ""
        lines.append(f"- **{_column_header(column)}** ({md_escape(column.axis)}) — "
                     f"{md_escape(name)}: {md_escape(definition)}.{direction}")
    return [*lines, "", f"Definitions and references: {DOCS_SECTION}.", ""]


def _full_section(
    entries: Sequence[Mapping[str, Any]], columns: Sequence[Column], decimals: Mapping[str, int]
) -> list[str]:
    lines = ["## All values, by axis", ""]
    for axis in dict.fromkeys(c.axis for c in columns):
        group = [c for c in columns if c.axis == axis]
        lines += [f"### {md_escape(AXIS_TITLES.get(axis, axis))}", "",
                  "| Entry | " + " | ".join(_column_header(c) for c in group) + " |",
                  "|---|" + "---:|" * len(group)]
        for entry in entries:
            cells = [md_escape(entry.get("name", "?"))]
            cells += [format_value(c.value(entry), decimals.get(c.key, 3)) for c in group]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def checks_section(checks: Sequence[Mapping[str, Any]]) -> list[str]:
    """The known-answer checks: does each metric react as it must?"""
    passed = sum(1 for c in checks if c.get("passed") is True)
    lines = ["## Known-answer checks: does each metric react as it must?", "",
             f"{passed} of {len(checks)} passed.", "",
             "| Entry | Value | Expected | Observed | Result | Why |",
             "|---|---|---|---|---|---|"]
    for check in checks:
        result = {True: "pass", False: "**FAIL**", None: "not judged"}[check.get("passed")]
        lines.append(
            f"| {md_escape(check.get('entry', ''))} | {md_escape(check.get('value', ''))} "
            f"| {md_escape(check.get('expect', ''))} | {md_escape(check.get('observed', ''))} "
            f"| {result} | {md_escape(check.get('why', ''))} |"
        )
    return [*lines, ""]


def render_markdown(results: dict[str, Any]) -> str:
    """The ranked leaderboard of a results (or leaderboard) document as Markdown.

    A results document is judged here (:func:`~.ranking.judge`); a leaderboard document
    carries its verdict already. Sections: the compact ranked table (rank with its 95% interval,
    Δ per task with simultaneous CI, Holm p and ▲/▼, Δ against classical augmentation, then one
    or two headline columns per axis), what Δ means (real-only score, seeds), the reference
    rows, what the columns mean, what the differences mean, checks, flags, rank correlations,
    every value by axis and failed entries.
    Every user-supplied string is escaped, so names cannot inject HTML or Markdown.
    """
    raw_entries = results.get("entries") or []
    if isinstance(results.get("verdict"), Mapping):
        entries, verdict = [dict(e) for e in raw_entries], results["verdict"]
    else:
        entries, verdict = judge([dict(e) for e in raw_entries])
    ranked = [e for e in entries if e.get("rank") is not None]
    failed = [e for e in entries if not is_ok(e)]
    references = [e for e in entries if e.get("rank") is None and e not in failed]
    shown = [*ranked, *references]
    tasks = utility_tasks(shown)
    columns = metric_columns(shown) + efficiency_columns(shown)
    headline = headline_columns(columns)
    decimals = value_formats(columns, shown)
    has_classical = any(e.get("reference") == "classical" for e in references)

    header = ["Rank (95% interval)", "Entry"]
    header += [f"{md_escape(task)} Δ pp [CI] p" for task in tasks]
    if has_classical and tasks:
        header.append(f"{md_escape(tasks[0])} Δ vs classical")
    header += [_column_header(column) for column in headline]
    align = ["---:", "---"] + ["---"] * (len(header) - 2 - len(headline)) + ["---:"] * len(headline)

    suite_name = (results.get("suite") or {}).get("name", "?")
    lines = [
        f"# Leaderboard — {md_escape(suite_name)}",
        "",
        _suite_line(results, len(entries), len(failed)),
        "",
    ]
    description = (results.get("suite") or {}).get("description")
    if description:  # the suite's own words, e.g. "PIPELINE CHECK ... (not evidence)"
        lines += [f"> {md_escape(str(description))}", ""]
    lines += [
        RANKING_RULE,
        "",
    ]
    lines += [f"- {md_escape(text)}"
              for text in delta_lines(shown, verdict, tasks, results.get("suite"))]
    budget = budget_line(entries, tasks)
    if budget:
        lines += [f"- Budget: {md_escape(budget)}"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for entry in ranked:
        utility = entry.get("utility") or {}
        cells = [rank_cell(entry), md_escape(entry.get("name", "?"))]
        cells += [utility_cell(utility.get(task)) for task in tasks]
        if has_classical and tasks:
            cells.append(versus_classical_cell(utility.get(tasks[0])))
        cells += [format_value(c.value(entry), decimals[c.key]) for c in headline]
        lines.append("| " + " | ".join(cells) + " |")
    if not ranked:
        lines.append("| — | *no ranked entry completed* |" + " |" * (len(header) - 2))
    lines += ["", SIGNIFICANCE_LEGEND]
    if len(headline) < len(columns):
        lines.append(f"The table shows {len(headline)} of {len(columns)} value columns; every "
                     "value is under “All values, by axis” below.")
    lines.append("")
    if references or verdict.get("real_only"):
        lines += _reference_section(references, verdict, tasks, headline, decimals)
    lines += _legend(columns)
    lines += _verdict_section(verdict)
    checks = results.get("checks")
    if checks is None:  # a plain results document: evaluate the suite's checks here
        checks = evaluate_checks((results.get("suite") or {}).get("checks") or [], entries)
    if checks:
        lines += checks_section(checks)
    flags = flag_lines(shown, results.get("dataset"))
    if flags:
        lines += ["## Flags", "", f"Warnings raised while computing these values ({FLAG}):", ""]
        lines += [f"- **{md_escape(n)}** · {md_escape(w)}: {md_escape(f)}" for n, w, f in flags]
        lines.append("")

    correlations = results.get("correlations")
    if correlations is None:  # a plain results document: compute them here
        correlations = compute_correlations(entries)
    if isinstance(correlations, list) and correlations:
        lines += _correlation_section(correlations)
    if columns and shown:
        lines += _full_section(shown, columns, decimals)
    if failed:
        lines += _failed_section(failed)
    return "\n".join(lines).rstrip() + "\n"
