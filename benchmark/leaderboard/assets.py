"""The leaderboard page's inline stylesheet and script (no network, no external files).

The script only reads ``data-sort`` attributes and reorders rows; it never inserts markup.
"""

from __future__ import annotations

__all__ = ["CSS", "JS"]

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1400px;
padding:1rem 1.5rem;color:#1b1f24;background:#fff}
h1{font-size:1.5rem;margin:.2rem 0}
h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.meta{color:#555}.rule{background:#f3f6fa;border-left:4px solid #1f5fa8;padding:.5rem .8rem}
.wrap{overflow-x:auto;max-width:100%}table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #dde1e6;padding:.3rem .5rem;text-align:left;vertical-align:top}
td.name{white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
thead th{background:#eef1f5}
thead tr.groups th{text-align:center;font-weight:600;font-size:12px;cursor:default}
table.sortable tr.cols th{cursor:pointer;user-select:none;white-space:nowrap}
table.cards tr.cols th{white-space:normal;min-width:3.5em}
td.delta{white-space:normal;min-width:10em}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2"}
table.sortable th[aria-sort=descending]::after{content:" \\25BC"}
th abbr{text-decoration:none}
tr.baseline td{background:#fafafa}.badge{font-size:11px;background:#e4e7eb;border-radius:3px;
padding:0 .3rem}.sig{color:#11772d;font-weight:600}.small{font-size:11px;color:#555}
.axis-fidelity{border-top:3px solid #1f5fa8}.axis-variety{border-top:3px solid #8a4fbd}
.axis-privacy{border-top:3px solid #c0392b}.axis-efficiency{border-top:3px solid #7f8c8d}
.axis-utility{border-top:3px solid #11772d}
.explain{margin:.3rem 0 .8rem 1.2rem;padding:0}.explain li{margin:.15rem 0}
details{margin:.8rem 0}summary{cursor:pointer;font-weight:600}
dl.legend{display:grid;grid-template-columns:max-content 1fr;gap:.15rem .8rem;font-size:13px}
dl.legend dt{font-weight:600}dl.legend dd{margin:0}
.warn{background:#fff4e5;border-left:4px solid #d39b3a;padding:.4rem .8rem}
.grid{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0;max-width:100%}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figure.plot-scatter,figure.plot-boxplot{max-width:520px}figure.plot-heatmap{max-width:640px}
figcaption{font-size:12px;color:#444}
.mosaic{display:flex;align-items:stretch;max-width:100%}
.mosaic ol{list-style:none;margin:0 .4rem 0 0;padding:0;display:flex;flex-direction:column;
font-size:12px;color:#333;text-align:right}
.mosaic ol li{flex:1;display:flex;align-items:center;justify-content:flex-end}
.mosaic img{image-rendering:pixelated;min-width:0;flex-shrink:1}
.withheld{padding:1rem;background:#fff4e5;border:1px dashed #d39b3a;font-size:12px;max-width:420px}
.worse{color:#b3261e;font-weight:600}.tied{color:#555}ul.verdict li{margin:.2rem 0}
@media (max-width:760px){
body{padding:.6rem}
table.cards,table.cards tbody,table.cards tr,table.cards td{display:block;width:auto}
table.cards thead{display:none}
table.cards tr{border:1px solid #dde1e6;border-radius:4px;margin:0 0 .6rem;padding:.2rem .4rem}
table.cards td{border:0;border-bottom:1px solid #f0f2f4;text-align:right;white-space:normal;
padding:.2rem 0 .2rem 45%;position:relative;min-height:1.2em}
table.cards td::before{content:attr(data-label);position:absolute;left:0;width:43%;
text-align:left;font-weight:600;color:#444;white-space:normal}
table.cards td.name{font-weight:700}
}
"""

JS = """
(function(){
  function key(cell, numeric){
    var raw = cell.getAttribute('data-sort');
    if (raw === null) raw = cell.textContent.trim();
    if (!numeric) return raw.toLowerCase();
    var value = parseFloat(raw);
    return isNaN(value) ? null : value;
  }
  document.querySelectorAll('table.sortable').forEach(function(table){
    var rows = table.tHead.rows;
    var headers = rows[rows.length - 1].querySelectorAll('th');
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
