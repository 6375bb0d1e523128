"""``index.html``: a self-contained static page (inline CSS and JS, no network, no server).

Every user-supplied string (entry, plugin and metric names, errors, notes, provenance) goes
through :func:`html.escape`; the inline script reads only ``data-sort`` attributes and never
inserts markup, so a name like ``<script>alert(1)</script>`` shows up as text.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from .assets import CSS as _CSS
from .assets import JS as _JS
from .columns import (
    AXIS_TITLES,
    DOCS_SECTION,
    Column,
    describe_column,
    format_value,
    headline_columns,
)
from .markdown import (
    FLAG,
    SIGNIFICANCE_LEGEND,
    TOO_FEW,
    budget_line,
    column_label,
    correlation_cells,
    correlation_summary,
    delta_lines,
    flag_lines,
    rank_cell,
    utility_cell,
    value_formats,
    versus_classical_cell,
)
from .ranking import is_ok
from .schema import columns_of

__all__ = ["render_html"]


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num_attr(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _th(label: str, numeric: bool, css: str = "", title: str = "") -> str:
    attrs = f' data-type="{"num" if numeric else "text"}"'
    attrs += f' class="{css}"' if css else ""
    attrs += f' title="{_e(title)}"' if title else ""
    return f"<th{attrs}>{_e(label)}</th>"


def _column_th(column: Column) -> str:
    name, definition = describe_column(column)
    return _th(column_label(column), True, f"axis-{column.axis}",
               f"{column.axis} · {name}: {definition} ({column.key})")


def _keep_together(cell: str) -> str:
    """A Δ cell that may wrap between Δ, [interval] and p, never inside the interval."""
    return cell.replace(", ", ",\u00a0")


def _utility_td(result: Any, label: str) -> str:
    delta = result.get("delta_pp") if isinstance(result, Mapping) else None
    text = _e(_keep_together(utility_cell(result, escape=str)))
    css = "num delta"
    if isinstance(result, Mapping) and result.get("significant"):
        css += " sig" if result.get("direction") == "better" else " worse"
    sort = _num_attr(delta if isinstance(delta, int | float) else None)
    tips = []
    if isinstance(result, Mapping):
        tips += [str(result["note"])] if result.get("note") else []
        tips += [f"{FLAG} {f}" for f in result.get("flags") or []]
    tip = f' title="{_e(" | ".join(tips))}"' if tips else ""
    return f'<td class="{css}" data-label="{_e(label)}" data-sort="{sort}"{tip}>{text}</td>'


def _value_tds(
    entry: Mapping[str, Any], columns: Sequence[Column], decimals: Mapping[str, int]
) -> list[str]:
    cells = []
    for column in columns:
        value = column.value(entry)
        record = (entry.get("metrics") or {}).get(column.key) if column.source == "metric" else None
        flags = record.get("flags") if isinstance(record, Mapping) else None
        mark, tip = (f" {FLAG}", f' title="{_e(" | ".join(flags))}"') if flags else ("", "")
        cells.append(
            f'<td class="num" data-label="{_e(column.axis)}: {_e(column_label(column))}" '
            f'data-sort="{_num_attr(value)}"{tip}>'
            f"{_e(format_value(value, decimals.get(column.key, 3)))}{mark}</td>"
        )
    return cells


def _group_row(lead: int, utility: int, columns: Sequence[Column]) -> str:
    """The axis row above the column headers: utility · fidelity · variety · privacy · …"""
    cells = [f'<th colspan="{lead}"></th>'] if lead else []
    if utility:
        cells.append(f'<th colspan="{utility}" class="axis-utility">utility</th>')
    for axis in dict.fromkeys(c.axis for c in columns):
        span = sum(1 for c in columns if c.axis == axis)
        cells.append(f'<th colspan="{span}" class="axis-{_e(axis)}" '
                     f'title="{_e(AXIS_TITLES.get(axis, axis))}">{_e(axis)}</th>')
    return '<tr class="groups">' + "".join(cells) + "</tr>"


def _table(table_id: str, css: str, head: Sequence[str], group: str, rows: Sequence[str]) -> str:
    return (
        f'<div class="wrap"><table id="{table_id}" class="{css}"><thead>{group}'
        '<tr class="cols">' + "".join(head) + "</tr></thead><tbody>\n" + "\n".join(rows)
        + "\n</tbody></table></div>"
    )


def _ranked_table(
    document: Mapping[str, Any], ok: Sequence[Mapping[str, Any]], columns: Sequence[Column],
    decimals: Mapping[str, int],
) -> str:
    tasks = document.get("utility_tasks", [])
    classical = any(e.get("reference") == "classical" for e in document.get("entries", []))
    head = [_th("Rank (95% interval)", True), _th("Entry", False)]
    head += [_th(f"{t} Δ pp", True, "axis-utility", "Δ pp [95% simultaneous CI] Holm p")
             for t in tasks]
    if classical and tasks:
        head.append(_th("Δ vs classical", True, "axis-utility",
                        "Δ against classical augmentation, paired by seed [95% CI]"))
    head += [_column_th(c) for c in columns]
    rows = []
    for entry in ok:
        name = _e(entry.get("name", "?"))
        tied = entry.get("tied_with") or []
        tip = f' title="tied with {_e(", ".join(tied))}"' if tied else ""
        cells = [
            f'<td class="num" data-label="Rank (95% interval)" data-sort="{entry["rank"]}"{tip}>'
            f"{_e(rank_cell(entry))}</td>",
            f'<td class="name" data-label="Entry" data-sort="{name}" '
            f'title="generator {_e(entry.get("generator", ""))}">{name}</td>',
        ]
        utility = entry.get("utility") or {}
        cells += [_utility_td(utility.get(task), f"{task} Δ pp") for task in tasks]
        if classical and tasks:
            versus = _e(_keep_together(versus_classical_cell(utility.get(tasks[0]))))
            cells.append(f'<td class="num delta" data-label="Δ vs classical">{versus}</td>')
        cells += _value_tds(entry, columns, decimals)
        rows.append("<tr>" + "".join(cells) + "</tr>")
    utility_span = len(tasks) + (1 if classical and tasks else 0)
    return _table("leaderboard", "sortable cards", head, _group_row(2, utility_span, columns),
                  rows)


def _reference_table(
    document: Mapping[str, Any], references: Sequence[Mapping[str, Any]],
    columns: Sequence[Column], decimals: Mapping[str, int],
) -> str:
    tasks = document.get("utility_tasks", [])
    real_only = (document.get("verdict") or {}).get("real_only") or {}
    head = [_th("Reference row", False), _th("Kind", False)]
    head += [_th(f"{t} Δ pp", True, "axis-utility") for t in tasks]
    head += [_column_th(c) for c in columns]
    rows = []
    if real_only:
        cells = ['<td class="name" data-label="Reference row">real only</td>',
                 '<td data-label="Kind">reference (Δ = 0)</td>']
        for task in tasks:
            row = real_only.get(task)
            text = f"0 ({row['primary']} {row['mean_pct']:.2f}%)" if row else "—"
            cells.append(f'<td class="num" data-label="{_e(task)} Δ pp">{_e(text)}</td>')
        cells += [f'<td class="num" data-label="{_e(c.axis)}: {_e(column_label(c))}">—</td>'
                  for c in columns]
        rows.append('<tr class="baseline">' + "".join(cells) + "</tr>")
    for entry in references:
        utility = entry.get("utility") or {}
        cells = [f'<td class="name" data-label="Reference row">{_e(entry.get("name", "?"))}</td>',
                 f'<td data-label="Kind">{_e(entry.get("reference") or "baseline")}</td>']
        cells += [_utility_td(utility.get(task), f"{task} Δ pp") for task in tasks]
        cells += _value_tds(entry, columns, decimals)
        rows.append('<tr class="baseline">' + "".join(cells) + "</tr>")
    if not rows:
        return ""
    return ('<h2 id="references">Reference rows (not ranked)</h2>'
            + _table("references-table", "sortable cards", head,
                     _group_row(2, len(tasks), columns), rows))


def _full_table(
    entries: Sequence[Mapping[str, Any]], columns: Sequence[Column], decimals: Mapping[str, int],
    shown: int,
) -> str:
    if not entries or not columns:
        return ""
    head = [_th("Entry", False), _th("Generator", False)] + [_column_th(c) for c in columns]
    rows = [
        f'<tr><td class="name">{_e(e.get("name", "?"))}</td><td>{_e(e.get("generator", ""))}</td>'
        + "".join(_value_tds(e, columns, decimals)) + "</tr>"
        for e in entries
    ]
    return (
        f'<details id="all-columns"><summary>All {len(columns)} value columns, by axis '
        f"({len(columns) - shown} more than the table above), ranked and reference rows"
        "</summary>"
        + _table("leaderboard-full", "sortable", head, _group_row(2, 0, columns), rows)
        + "</details>"
    )


def _legend(columns: Sequence[Column]) -> str:
    items = []
    for column in columns:
        name, definition = describe_column(column)
        direction = f" {column.direction}" if column.direction else ""
        items.append(f"<dt>{_e(column_label(column))}</dt><dd>{_e(column.axis)} — "
                     f"<strong>{_e(name)}</strong>: {_e(definition)}.{direction}</dd>")
    return (
        '<h2 id="legend">What the columns mean</h2>'
        f'<dl class="legend">{"".join(items)}</dl>'
        f'<p class="small">Definitions and references: {_e(DOCS_SECTION)}.</p>'
    )


def _verdict(document: Mapping[str, Any], entries: Sequence[Mapping[str, Any]]) -> str:
    verdict = document.get("verdict") or {}
    items = "".join(f"<li>{_e(text)}</li>" for text in verdict.get("statements") or [])
    families = "".join(
        f"<li>{_e(f['task'])}, {_e(f['family'])} (m = {int(f['size'])}): "
        f"{_e(', '.join(f['members']))}</li>"
        for f in verdict.get("families") or []
    )
    flags = "".join(
        f"<li><strong>{_e(n)}</strong> · {_e(w)}: {_e(f)}</li>"
        for n, w, f in flag_lines(entries, document.get("dataset"))
    )
    parts = ['<h2 id="verdict">What the differences mean</h2>',
             f'<ul class="verdict">{items}</ul>']
    if families:
        parts.append(f'<p class="small">Multiplicity families (Holm within each):</p>'
                     f'<ul class="small">{families}</ul>')
    if verdict.get("rank_method"):
        parts.append(f'<p class="small">Rank intervals: {_e(verdict["rank_method"])}.</p>')
    if flags:
        parts.append(f'<h2 id="flags">Flags</h2><p class="small">Warnings raised while '
                     f'computing the values marked {FLAG}:</p><ul class="small">{flags}</ul>')
    return "".join(parts)


def _checks(checks: Sequence[Mapping[str, Any]]) -> str:
    if not checks:
        return ""
    passed = sum(1 for c in checks if c.get("passed") is True)
    rows = "".join(
        f"<tr><td>{_e(c.get('entry'))}</td><td>{_e(c.get('value'))}</td>"
        f"<td>{_e(c.get('expect'))}</td><td>{_e(c.get('observed'))}</td>"
        f"<td class=\"{ {True: 'sig', False: 'worse', None: ''}[c.get('passed')] }\">"
        f"{ {True: 'pass', False: 'FAIL', None: 'not judged'}[c.get('passed')] }</td>"
        f"<td>{_e(c.get('why') or '')}</td></tr>"
        for c in checks
    )
    return (
        '<h2 id="checks">Known-answer checks: does each metric react as it must?</h2>'
        f"<p>{passed} of {len(checks)} passed.</p>"
        '<div class="wrap"><table id="checks-table"><thead><tr><th>Entry</th><th>Value</th>'
        "<th>Expected</th><th>Observed</th><th>Result</th><th>Why</th></tr></thead><tbody>"
        + rows + "</tbody></table></div>"
    )


def _correlation_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "<p>No fidelity, variety or privacy metric and utility task to correlate.</p>"
    summary = "".join(
        f'<p class="warn" id="too-few">{_e(text)}</p>' if text.startswith(TOO_FEW)
        else f'<p class="small">{_e(text)}</p>'
        for text in correlation_summary(rows)
    )
    head = "".join([
        _th("Metric", False), _th("Axis", False), _th("Utility", False), _th("n", True),
        _th("Spearman ρ [95% CI] p", True), _th("Kendall τ p", True), _th("agreement", True),
        _th("note", False),
    ])
    body = []
    for row in rows:
        spearman, kendall = correlation_cells(row)
        agreement = row.get("agreement")
        label = column_label(Column(str(row.get("metric")), "metric", str(row.get("axis")),
                                    str(row.get("label") or row.get("metric")), None))
        body.append(
            f"<tr><td title=\"{_e(row.get('metric'))}\">{_e(label)}</td>"
            f"<td>{_e(row.get('axis'))}</td>"
            f"<td>{_e(str(row.get('utility')).split('.')[0])}</td>"
            f"<td class=\"num\">{int(row.get('n', 0))}</td>"
            f'<td class="num" data-sort="{_num_attr(row.get("spearman"))}">{_e(spearman)}</td>'
            f'<td class="num" data-sort="{_num_attr(row.get("kendall"))}">{_e(kendall)}</td>'
            f'<td class="num" data-sort="{_num_attr(agreement)}">'
            f"{'—' if agreement is None else f'{agreement:+.2f}'}</td>"
            f"<td>{_e(row.get('reason') or '')}</td></tr>"
        )
    return (
        summary + '<div class="wrap"><table id="correlations" class="sortable"><thead>'
        '<tr class="cols">' + head + "</tr></thead><tbody>\n" + "\n".join(body)
        + "\n</tbody></table></div>"
        '<p class="small">agreement = Spearman ρ oriented so that positive means “a better '
        "metric value goes with more utility”.</p>"
    )


def _plots(plots: Sequence[Mapping[str, Any]]) -> str:
    if not plots:
        return "<p>No plots (no completed entry with utility results).</p>"
    figures = [
        f'<figure class="plot-{_e(p["kind"])}"><img src="{_e(p["png"])}" '
        f'alt="{_e(p["title"])}" loading="eager">'
        f'<figcaption>{_e(p["title"])} — <a href="{_e(p["svg"])}">SVG</a></figcaption></figure>'
        for p in plots
    ]
    return '<div class="grid">' + "".join(figures) + "</div>"


#: Mosaics are drawn at this many screen pixels per image pixel (pixelated), narrower if large.
MOSAIC_SCALE = 3
_MOSAIC_MAX_WIDTH = 1100


def _mosaic(entry: Mapping[str, Any], classes: Sequence[str]) -> str:
    name = _e(entry.get("name", "?"))
    size = entry.get("samples_size")
    style = ""
    if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size):
        scale = max(1, min(MOSAIC_SCALE, _MOSAIC_MAX_WIDTH // max(1, size[0])))
        style = f' width="{size[0] * scale}" height="{size[1] * scale}"'
    rows = "".join(f"<li>{_e(c)}</li>" for c in classes)
    labels = f'<ol class="classes" aria-label="class of each row">{rows}</ol>' if rows else ""
    return (
        f'<figure class="samples"><div class="mosaic">{labels}<img src="{_e(entry["samples"])}"'
        f'{style} alt="synthetic samples of {name}, one row per class"></div>'
        f"<figcaption>{name}: synthetic samples, one row per class</figcaption></figure>"
    )


def _samples(entries: Sequence[Mapping[str, Any]], classes: Sequence[str]) -> str:
    figures = []
    for entry in entries:
        name = _e(entry.get("name", "?"))
        if entry.get("samples"):
            figures.append(_mosaic(entry, classes))
        elif entry.get("samples_note"):
            figures.append(
                f'<figure><div class="withheld">{_e(entry["samples_note"])}</div>'
                f"<figcaption>{name}</figcaption></figure>"
            )
    if not figures:
        return "<p>No sample mosaics were recorded.</p>"
    return '<div class="grid">' + "".join(figures) + "</div>"


def _failed(entries: Sequence[Mapping[str, Any]]) -> str:
    if not entries:
        return ""
    items = "".join(
        f"<li><strong>{_e(e.get('name', '?'))}</strong>"
        + (f" (stage <code>{_e(e['failed_stage'])}</code>)" if e.get("failed_stage") else "")
        + f": {_e(e.get('error') or 'no error message recorded')}</li>"
        for e in entries
    )
    return f'<h2 id="failed">Failed entries</h2><ul class="failed">{items}</ul>'


def _provenance(document: Mapping[str, Any]) -> str:
    items = []
    for source in document.get("sources", []):
        bits = [f"medsynbench {source.get('medsynbench')}", f"commit {source.get('git_commit')}",
                f"{source.get('device')} / {source.get('gpu') or 'no GPU'}",
                str(source.get("platform")), f"started {source.get('started')}",
                f"stack {source.get('float_stack_id') or 'unrecorded'}"]
        items.append(f"<li><code>{_e(source.get('label'))}</code>: {_e(', '.join(bits))}</li>")
    return "<ul class=\"small\">" + "".join(items) + "</ul>"


def render_html(document: Mapping[str, Any]) -> str:
    """The complete index.html of a leaderboard document (plots and mosaics as relative links).

    The ranked table shows the headline column of every axis (:func:`~.columns.headline_columns`)
    under an axis row; every column is in the folded full table. Below 760 px the ranked and
    reference tables turn into one card per entry, so a phone needs no horizontal scrolling.
    """
    suite = document.get("suite") or {}
    dataset = document.get("dataset") or {}
    entries = document.get("entries", [])
    ok = [e for e in entries if e.get("rank") is not None]
    failed = [e for e in entries if not is_ok(e)]
    references = [e for e in entries if e.get("rank") is None and e not in failed]
    tasks = document.get("utility_tasks", [])
    columns = columns_of(document)
    headline = headline_columns(columns)
    decimals = value_formats(columns, [*ok, *references])
    classes = [str(c) for c in dataset.get("class_names") or []]
    explain = [*delta_lines([*ok, *references], document.get("verdict") or {}, tasks,
                            document.get("suite"))]
    budget = budget_line(entries, tasks)
    explain += [f"Budget: {budget}"] if budget else []
    meta = (
        f"Suite <strong>{_e(suite.get('name', '?'))}</strong> "
        f"(hash <code>{_e(str(suite.get('hash', ''))[:12])}</code>)"
        + (f" · dataset {_e(dataset.get('plugin'))}" if dataset.get("plugin") else "")
        + (f" ({_e(dataset.get('modality'))})" if dataset.get("modality") else "")
        + f" · {len(ok)} ranked, {len(references)} reference rows, {len(failed)} failed"
        + f" · generated {_e(document.get('generated'))}"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>MedSynBench leaderboard — {_e(suite.get('name', '?'))}</title>
<style>{_CSS}</style></head>
<body>
<h1>MedSynBench leaderboard — {_e(suite.get('name', '?'))}</h1>
<p class="meta">{meta}</p>
{f'<p class="description">{_e(suite["description"])}</p>' if suite.get("description") else ""}
<p class="rule">{_e(document.get('ranking_rule', ''))}</p>
<ul class="explain" id="delta-explained">{"".join(f"<li>{_e(t)}</li>" for t in explain)}</ul>
{_ranked_table(document, ok, headline, decimals)}
<p class="small">{_e(SIGNIFICANCE_LEGEND)} Hover a header for its definition
(<a href="#legend">all definitions</a>); click it to sort.</p>
{_full_table([*ok, *references], columns, decimals, len(headline))}
{_reference_table(document, references, headline, decimals)}
{_legend(columns)}
{_verdict(document, [*ok, *references])}
{_checks(document.get('checks') or [])}
{_failed(failed)}
<h2 id="correlation">Does fidelity predict utility?</h2>
{_correlation_table(document.get('correlations', []))}
<h2 id="plots">Plots</h2>
{_plots(document.get('plots', []))}
<h2 id="samples">Synthetic samples</h2>
{_samples(entries, classes)}
<h2 id="provenance">Provenance</h2>
{_provenance(document)}
<script>{_JS}</script>
</body></html>
"""
