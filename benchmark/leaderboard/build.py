"""Build a leaderboard folder: leaderboard.json, .csv, .md, index.html, plots/ and samples/.

Sample mosaics are copied next to the page — only files inside their results file's folder
(:func:`~.loading.sample_path`; an absolute path or a ``..`` escape is not read and the entry's
``samples_note`` says why), with their pixel size (``samples_size``). Mosaics that show real
images — entries flagged ``samples_real: true``, reference rows, or made by a generator in
:data:`REAL_IMAGE_GENERATORS` (for results that predate the flag) — are withheld unless
``include_real`` is set, so a published site never shows patient images by accident.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..cache import write_atomic, write_atomic_many
from ..errors import OutputError
from .loading import Loaded, Merged, merge_results
from .markdown import render_markdown
from .page import render_html
from .schema import build_leaderboard, check_leaderboard, columns_of

__all__ = ["REAL_IMAGE_GENERATORS", "build_site", "render_csv", "shows_real_images"]

#: Generators whose "synthetic" images are real training images (or transforms of them).
REAL_IMAGE_GENERATORS = frozenset({"copy-real", "classical-augment"})
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def shows_real_images(entry: Mapping[str, Any]) -> bool:
    """Whether the entry's sample mosaic shows real training images."""
    return (
        entry.get("samples_real") is True
        or bool(entry.get("reference"))
        or entry.get("generator") in REAL_IMAGE_GENERATORS
    )


def _spreadsheet_safe(value: str) -> str:
    # A cell starting with = + - @ is a formula in spreadsheet programs: make it inert text.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def render_csv(document: Mapping[str, Any]) -> str:
    """One row per entry (rank order), with utility, metric and efficiency columns."""
    tasks = list(document.get("utility_tasks", []))
    columns = columns_of(document)
    task_fields = ("delta_pp", "ci95_low", "ci95_high", "ci_simultaneous_low",
                   "ci_simultaneous_high", "p_value", "p_value_adj", "family", "significant",
                   "direction", "vs_classical_delta_pp", "flags")
    header = ["rank", "rank_label", "rank_low", "rank_high", "tied_with", "name", "generator",
              "reference", "status", "source"]
    header += [f"{task}.{field}" for task in tasks for field in task_fields]
    header += [c.key if c.source == "metric" else f"efficiency.{c.key}" for c in columns]
    header += ["failed_stage", "error"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for entry in document.get("entries", []):
        interval = entry.get("rank_interval") or [None, None]
        row: list[Any] = [entry.get("rank"), entry.get("rank_label"), interval[0], interval[1],
                          "; ".join(entry.get("tied_with") or []), entry.get("name"),
                          entry.get("generator"), entry.get("reference") or "",
                          entry.get("status"), entry.get("source")]
        utility = entry.get("utility") or {}
        for task in tasks:
            found = utility.get(task)
            result: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
            ci = _pair(result.get("ci95_pp"))
            simultaneous = _pair(result.get("ci_simultaneous_pp"))
            versus = result.get("vs_classical") or {}
            row += [result.get("delta_pp"), ci[0], ci[1], simultaneous[0], simultaneous[1],
                    result.get("p_value"), result.get("p_value_adj"), result.get("family"),
                    result.get("significant"), result.get("direction"),
                    versus.get("delta_pp"), "; ".join(result.get("flags") or [])]
        row += [column.value(entry) for column in columns]
        row += [entry.get("failed_stage"), entry.get("error")]
        writer.writerow(
            ["" if v is None else _spreadsheet_safe(v) if isinstance(v, str) else v for v in row]
        )
    return buffer.getvalue()


def _pair(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) and len(value) == 2 else [None, None]


def _slug(name: str, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60] or "entry"
    slug, counter = base, 1
    while slug in used:
        counter += 1
        slug = f"{base}-{counter}"
    used.add(slug)
    return slug


def _copy_samples(
    document: dict[str, Any], merged: Merged, site: Path, include_real: bool
) -> None:
    used: set[str] = set()
    for entry in document["entries"]:
        declared = entry.get("samples")
        entry["samples"], entry["samples_note"], entry["samples_size"] = None, None, None
        source = merged.sample_files.get(str(entry.get("name")))
        if not declared:
            continue
        if shows_real_images(entry) and not include_real:
            entry["samples_note"] = (
                "Mosaic withheld: it shows real training images "
                f"(generator {entry.get('generator')}). Build with --include-real to show it."
            )
            continue
        if source is None:
            entry["samples_note"] = merged.sample_problems.get(
                str(entry.get("name")), f"Sample mosaic {declared} was not found."
            )
            continue
        try:
            with source.open("rb") as handle:
                header = handle.read(24)
                is_png = header[:8] == _PNG_MAGIC
        except OSError:
            entry["samples_note"] = f"Sample mosaic {declared} was not found next to the results."
            continue
        if not is_png:
            entry["samples_note"] = f"Sample mosaic {declared} is not a PNG file; not shown."
            continue
        target = site / "samples" / f"{_slug(str(entry['name']), used)}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, source.read_bytes())  # never a truncated PNG on a full disk
        entry["samples"] = f"samples/{target.name}"
        # IHDR: width and height (big-endian) let the page draw the mosaic at an integer scale
        entry["samples_size"] = [int.from_bytes(header[16:20], "big"),
                                 int.from_bytes(header[20:24], "big")]


def _merge_human(merged: Merged, scores: Mapping[str, Any], source: str) -> None:
    from ..reader_study.board import human_records

    names = [str(entry["name"]) for entry in merged.entries]
    records = human_records(scores, merged.suite, names, source)
    for entry in merged.entries:
        found = records.get(str(entry["name"]))
        if found:
            entry["metrics"] = {**(entry.get("metrics") or {}), **found}


def _finite_json(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by null, so leaderboard.json is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_json(v) for v in value]
    return value


def _previous_document(path: Path) -> dict[str, Any] | None:
    """The leaderboard document already in ``path`` (None: none, or not readable as one)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _same_board(previous: Mapping[str, Any], document: Mapping[str, Any]) -> bool:
    """Whether two leaderboard documents differ only in when they were generated: then the
    rebuilt folder keeps the old date, so republishing a site leaves unchanged boards
    byte-identical (the plots are deterministic too, :mod:`.plots`)."""
    strip = {"generated"}
    return ({k: v for k, v in previous.items() if k not in strip}
            == {k: v for k, v in document.items() if k not in strip}
            and "generated" in previous)


def build_site(
    loaded: Sequence[Loaded],
    out: str | Path,
    include_real: bool = False,
    duplicates: str = "error",
    human_scores: Mapping[str, Any] | None = None,
    human_source: str = "human scores",
) -> dict[str, Any]:
    """Merge ``loaded`` results, rank them and write the whole leaderboard folder ``out``.

    Returns the validated leaderboard document (also written to ``out/leaderboard.json``).
    Previously generated ``plots/`` and ``samples/`` are replaced when ``out`` already holds a
    leaderboard. ``human_scores`` (a reader-study scores document, read from ``human_source``)
    adds the human fidelity column (:mod:`medsynbench.reader_study.board`): shown and
    correlated with utility like any fidelity metric, never used to rank.
    """
    merged = merge_results(loaded, duplicates=duplicates)
    if human_scores is not None:
        _merge_human(merged, human_scores, human_source)
    site = Path(out)
    try:
        site.mkdir(parents=True, exist_ok=True)
        previous = _previous_document(site / "leaderboard.json")
        if previous is not None:
            for folder in ("plots", "samples"):
                shutil.rmtree(site / folder, ignore_errors=True)
        document = build_leaderboard(merged)
        _copy_samples(document, merged, site, include_real)
        from .plots import write_plots  # matplotlib: imported only when plots are drawn

        document["plots"] = write_plots(document, site)
        document = check_leaderboard(_finite_json(document), site / "leaderboard.json")
        if previous is not None and _same_board(previous, document):
            document["generated"] = previous["generated"]  # unchanged board: unchanged files
        write_atomic_many({  # all four or none: a full disk never leaves a mixed or cut board
            site / "leaderboard.json": json.dumps(document, indent=2, allow_nan=False) + "\n",
            site / "leaderboard.csv": render_csv(document),
            site / "leaderboard.md": render_markdown(document),
            site / "index.html": render_html(document),
        })
    except OSError as exc:
        failed = exc.filename if exc.filename is not None else site
        raise OutputError(
            f"cannot write {failed}: {exc.strerror or exc}; the leaderboard in {site} was not "
            "updated; free space there or choose another --out folder"
        ) from None
    return document
