"""``index.html``: a self-contained static page (inline CSS and JS, no network, no server).

Every user-supplied string (entry, plugin and metric names, errors, notes, provenance) goes
through :func:`html.escape`; the inline script reads only ``data-sort`` attributes and never
inserts markup, so a name like ``<script>alert(1)</script>`` shows up as text.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from .columns import format_number, format_p
from .markdown import (
    FLAG,
    SIGNIFICANCE_LEGEND,
    budget_line,
    flag_lines,
    rank_cell,
    utility_cell,
    versus_classical_cell,
)
from .schema import columns_of

__all__ = ["render_html"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1400px;
padding:1rem 1.5rem;color:#1b1f24;background:#fff}
h1{font-size:1.5rem;margin:.2rem 0}
h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.meta{color:#555}.rule{background:#f3f6fa;border-left:4px solid #1f5fa8;padding:.5rem .8rem}
.wrap{overflow-x:auto}table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #dde1e6;padding:.3rem .5rem;text-align:left;vertical-align:top}
td.name{white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
thead th{background:#eef1f5;position:sticky;top:0}
table.sortable th{cursor:pointer;user-select:none;white-space:nowrap}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2"}
table.sortable th[aria-sort=descending]::after{content:" \\25BC"}
tr.baseline td{background:#fafafa}.badge{font-size:11px;background:#e4e7eb;border-radius:3px;
padding:0 .3rem}.sig{color:#11772d;font-weight:600}.small{font-size:11px;color:#555}
.axis-fidelity{border-top:3px solid #1f5fa8}.axis-variety{border-top:3px solid #8a4fbd}
.axis-privacy{border-top:3px solid #c0392b}.axis-efficiency{border-top:3px solid #7f8c8d}
.axis-utility{border-top:3px solid #11772d}
.grid{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0;max-width:560px}
figure img{max-width:100%;border:1px solid #eee}
img.mosaic{width:320px;image-rendering:pixelated}figure.plot-scatter{max-width:430px}figcaption{font-size:12px;color:#444}
.withheld{padding:1rem;background:#fff4e5;border:1px dashed #d39b3a;font-size:12px}
.worse{color:#b3261e;font-weight:600}.tied{color:#555}ul.verdict li{margin:.2rem 0}
"""

_JS = """
(function(){
  function key(cell, numeric){
    var raw = cell.getAttribute('data-sort');
    if (raw === null) raw = cell.textContent.trim();
    if (!numeric) return raw.toLowerCase();
    var value = parseFloat(raw);
    return isNaN(value) ? null : value;
  }
  document.querySelectorAll('table.sortable').forEach(function(table){
    var headers = table.querySelectorAll('thead th');
    headers.forEach(function(th, index){
      th.setAttribute('tabindex', '0');
      function sort(){
        var numeric = th.getAttribute('data-type') === 'num';
        var ascending = th.getAttribute('aria-sort') !== 'ascending';
        headers.forEach(function(h){ h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function(a, b){
          var x = key(a.cells[index], numeric), y = key(b.cells[index], numeric);
          if (x === y) return 0;
          if (x === null) return 1;
          if (y === null) return -1;
          return (x < y ? -1 : 1) * (ascending ? 1 : -1);
        });
        rows.forEach(function(row){ body.appendChild(row); });
      }
      th.addEventListener('click', sort);
      th.addEventListener('keydown', function(e){ if (e.key === 'Enter') sort(); });
    });
  });
})();
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num_attr(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _th(label: str, numeric: bool, css: str = "", title: str = "") -> str:
    attrs = f' data-type="{"num" if numeric else "text"}"'
    attrs += f' class="{css}"' if css else ""
    attrs += f' title="{_e(title)}"' if title else ""
    return f"<th{attrs}>{_e(label)}</th>"


def _utility_td(result: Any) -> str:
    delta = result.get("delta_pp") if isinstance(result, Mapping) else None
    text = _e(utility_cell(result, escape=str))
    css = "num"
    if isinstance(result, Mapping) and result.get("significant"):
        css += " sig" if result.get("direction") == "better" else " worse"
    sort = _num_attr(delta if isinstance(delta, int | float) else None)
    tips = []
    if isinstance(result, Mapping):
        tips += [str(result["note"])] if result.get("note") else []
        tips += [f"{FLAG} {f}" for f in result.get("flags") or []]
    tip = f' title="{_e(" | ".join(tips))}"' if tips else ""
    return f'<td class="{css}" data-sort="{sort}"{tip}>{text}</td>'


def _value_tds(entry: Mapping[str, Any], columns: Sequence[Any]) -> list[str]:
    cells = []
    for column in columns:
        value = column.value(entry)
        record = (entry.get("metrics") or {}).get(column.key) if column.source == "metric" else None
        flags = record.get("flags") if isinstance(record, Mapping) else None
        mark, tip = (f" {FLAG}", f' title="{_e(" | ".join(flags))}"') if flags else ("", "")
        cells.append(
            f'<td class="num" data-sort="{_num_attr(value)}"{tip}>'
            f"{_e(format_number(value))}{mark}</td>"
        )
    return cells


def _ranked_table(document: Mapping[str, Any], ok: Sequence[Mapping[str, Any]]) -> str:
    tasks = document.get("utility_tasks", [])
    columns = columns_of(document)
    classical = any(e.get("reference") == "classical" for e in document.get("entries", []))
    head = [_th("Rank (95% interval)", True), _th("Entry", False), _th("Generator", False)]
    head += [_th(f"{t} Δ pp", True, "axis-utility", "Δ pp [95% simultaneous CI] Holm p")
             for t in tasks]
    if classical and tasks:
        head.append(_th(f"{tasks[0]} Δ vs classical", True, "axis-utility",
                        "Δ against classical augmentation, paired by seed [95% CI]"))
    head += [
        _th(f"{c.label} {c.arrow}".strip(), True, f"axis-{c.axis}", f"{c.axis}: {c.key}")
        for c in columns
    ]
    rows = []
    for entry in ok:
        name = _e(entry.get("name", "?"))
        tied = entry.get("tied_with") or []
        tip = f' title="tied with {_e(", ".join(tied))}"' if tied else ""
        cells = [
            f'<td class="num" data-sort="{entry["rank"]}"{tip}>{_e(rank_cell(entry))}</td>',
            f'<td class="name" data-sort="{name}">{name}</td>',
            f"<td>{_e(entry.get('generator', ''))}</td>",
        ]
        utility = entry.get("utility") or {}
        cells += [_utility_td(utility.get(task)) for task in tasks]
        if classical and tasks:
            cells.append(f'<td class="num">{_e(versus_classical_cell(utility.get(tasks[0])))}</td>')
        cells += _value_tds(entry, columns)
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<div class="wrap"><table id="leaderboard" class="sortable"><thead><tr>'
        + "".join(head) + "</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>"
    )


def _reference_table(document: Mapping[str, Any], references: Sequence[Mapping[str, Any]]) -> str:
    tasks = document.get("utility_tasks", [])
    columns = columns_of(document)
    real_only = (document.get("verdict") or {}).get("real_only") or {}
    head = [_th("Reference row", False), _th("Kind", False)]
    head += [_th(f"{t} Δ pp", True, "axis-utility") for t in tasks]
    head += [_th(f"{c.label} {c.arrow}".strip(), True, f"axis-{c.axis}") for c in columns]
    rows = []
    if real_only:
        cells = ["<td>real only</td>", "<td>reference (Δ = 0)</td>"]
        for task in tasks:
            row = real_only.get(task)
            text = f"0 ({row['primary']} {row['mean_pct']:.2f}%)" if row else "—"
            cells.append(f'<td class="num">{_e(text)}</td>')
        cells += ['<td class="num">—</td>'] * len(columns)
        rows.append('<tr class="baseline">' + "".join(cells) + "</tr>")
    for entry in references:
        utility = entry.get("utility") or {}
        cells = [f'<td class="name">{_e(entry.get("name", "?"))}</td>',
                 f"<td>{_e(entry.get('reference') or 'baseline')}</td>"]
        cells += [_utility_td(utility.get(task)) for task in tasks]
        cells += _value_tds(entry, columns)
        rows.append('<tr class="baseline">' + "".join(cells) + "</tr>")
    if not rows:
        return ""
    return (
        '<h2 id="references">Reference rows (not ranked)</h2>'
        '<div class="wrap"><table id="references-table" class="sortable"><thead><tr>'
        + "".join(head) + "</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>"
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
        f"<li><strong>{_e(n)}</strong> · {_e(w)}: {_e(f)}</li>" for n, w, f in flag_lines(entries)
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
    head = "".join([
        _th("Metric", False), _th("Axis", False), _th("Utility", False), _th("n", True),
        _th("Spearman ρ", True), _th("p", True), _th("Kendall τ", True), _th("p", True),
        _th("agreement", True), _th("note", False),
    ])
    body = []
    for row in rows:
        def num(key: str, p: bool = False, r: Mapping[str, Any] = row) -> str:
            value = r.get(key)
            shown = format_p(value) if p else ("—" if value is None else f"{value:+.3f}")
            return f'<td class="num" data-sort="{_num_attr(value)}">{shown}</td>'

        body.append(
            f"<tr><td>{_e(row.get('metric'))}</td><td>{_e(row.get('axis'))}</td>"
            f"<td>{_e(row.get('utility'))}</td><td class=\"num\">{int(row.get('n', 0))}</td>"
            + num("spearman") + num("spearman_p", True) + num("kendall") + num("kendall_p", True)
            + num("agreement") + f"<td>{_e(row.get('reason') or '')}</td></tr>"
        )
    return (
        '<div class="wrap"><table id="correlations" class="sortable"><thead><tr>' + head
        + "</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table></div>"
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


def _samples(entries: Sequence[Mapping[str, Any]]) -> str:
    figures = []
    for entry in entries:
        name = _e(entry.get("name", "?"))
        if entry.get("samples"):
            figures.append(
                f'<figure><img class="mosaic" src="{_e(entry["samples"])}" '
                f'alt="synthetic samples of {name}"><figcaption>{name}</figcaption></figure>'
            )
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
    """The complete index.html of a leaderboard document (plots and mosaics as relative links)."""
    suite = document.get("suite") or {}
    dataset = document.get("dataset") or {}
    entries = document.get("entries", [])
    ok = [e for e in entries if e.get("rank") is not None]
    failed = [e for e in entries if e.get("status", "ok") != "ok"]
    references = [e for e in entries if e.get("rank") is None and e not in failed]
    budget = budget_line(entries, document.get("utility_tasks", []))
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
<p class="rule">{_e(document.get('ranking_rule', ''))} {_e(SIGNIFICANCE_LEGEND)}
Click a column header to sort.</p>
{f'<p class="small">Budget: {_e(budget)}</p>' if budget else ''}
{_ranked_table(document, ok)}
{_reference_table(document, references)}
{_verdict(document, [*ok, *references])}
{_checks(document.get('checks') or [])}
{_failed(failed)}
<h2 id="correlation">Does fidelity predict utility?</h2>
{_correlation_table(document.get('correlations', []))}
<h2 id="plots">Plots</h2>
{_plots(document.get('plots', []))}
<h2 id="samples">Synthetic samples</h2>
{_samples(entries)}
<h2 id="provenance">Provenance</h2>
{_provenance(document)}
<script>{_JS}</script>
</body></html>
"""
