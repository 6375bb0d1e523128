"""``leaderboard.json``: a versioned document, built from merged results and validated on read.

Layout (version 2)::

    {
      "kind": "medsynbench-leaderboard", "schema_version": 2,
      "generated": "ISO-8601", "medsynbench": "0.1.0",
      "suite": {...}, "dataset": {...},          # copied from the first results file
      "sources": [{"label", "medsynbench", "git_commit", "gpu", "platform", "device", ...}],
      "ranking_rule": "...", "utility_tasks": ["augmentation", ...],
      "columns": [{"key", "source", "axis", "label", "higher_is_better"}],
      "entries": [entries of results-schema 2 in display order — ranked, then reference rows,
                  then failed — plus "rank" (1..n; null for reference rows and failures),
                  "rank_interval" [best, worst], "rank_label" ("=2" when tied), "tied_with",
                  "source", "samples" (path inside the site folder or null), "samples_note",
                  and per task the board's statistics (delta_pp, ci95_pp, ci_simultaneous_pp,
                  p_value, p_value_adj, family, significant, direction, vs_classical)],
      "verdict": {"alpha", "families", "rank_task", "rank_method", "statements", "real_only",
                  "stacks"},
      "checks": [{"entry", "value", "expect", "why", "observed", "passed"}],
      "correlations": [{"metric", "axis", "higher_is_better", "utility", "n", "spearman",
                        "spearman_p", "kendall", "kendall_p", "agreement", "reason"}],
      "plots": [{"kind", "title", "png", "svg"}]
    }
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import __version__
from ..checks import evaluate_checks
from ..errors import ResultsError
from .columns import Column, efficiency_columns, metric_columns
from .correlation import correlations
from .loading import Merged
from .markdown import RANKING_RULE
from .ranking import is_ok, judge, utility_tasks
from .validate import Checker, describe

__all__ = [
    "LEADERBOARD_KIND",
    "LEADERBOARD_SCHEMA_VERSION",
    "build_leaderboard",
    "check_leaderboard",
    "columns_of",
    "read_leaderboard",
]

LEADERBOARD_KIND = "medsynbench-leaderboard"
LEADERBOARD_SCHEMA_VERSION = 2


def columns_of(document: Mapping[str, Any]) -> list[Column]:
    """The value columns recorded in a leaderboard document."""
    return [
        Column(c["key"], c["source"], c["axis"], c["label"], c.get("higher_is_better"))
        for c in document.get("columns", [])
    ]


def build_leaderboard(merged: Merged) -> dict[str, Any]:
    """The leaderboard document of merged results (plots and sample paths are filled in later)."""
    ranked, verdict = judge(merged.entries)
    stacks = sorted({str(s.get("float_stack_id")) for s in merged.sources
                     if s.get("float_stack_id")})
    verdict["stacks"] = stacks
    if len(stacks) > 1:
        verdict["statements"].append(
            f"This board merges results computed on {len(stacks)} different hardware/software "
            "stacks (see Provenance): float results are bit-identical only on the same stack, "
            "so part of the spread between those entries is the stack, not the generator."
        )
    ok = [entry for entry in ranked if is_ok(entry)]
    columns = metric_columns(ok) + efficiency_columns(ok)
    return {
        "kind": LEADERBOARD_KIND,
        "schema_version": LEADERBOARD_SCHEMA_VERSION,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "medsynbench": __version__,
        "suite": merged.suite,
        "dataset": merged.dataset,
        "sources": merged.sources,
        "ranking_rule": RANKING_RULE,
        "utility_tasks": utility_tasks(ok),
        "columns": [
            {"key": c.key, "source": c.source, "axis": c.axis, "label": c.label,
             "higher_is_better": c.higher_is_better}
            for c in columns
        ],
        "entries": ranked,
        "verdict": verdict,
        "checks": evaluate_checks(merged.suite.get("checks") or [], ranked),
        "correlations": correlations(ranked),
        "plots": [],
    }


def check_leaderboard(document: Any, source: str | Path) -> dict[str, Any]:
    """Validate a leaderboard document; raise ResultsError listing every problem."""
    checker = Checker(source)
    top = checker.mapping(document, "$")
    if top is None or top.get("kind") != LEADERBOARD_KIND:
        raise ResultsError(
            f"{source} is not a leaderboard.json (no \"kind\": \"{LEADERBOARD_KIND}\"); "
            "create one with `medsynbench leaderboard RESULTS.json --out DIR`"
        )
    version = top.get("schema_version")
    if version != LEADERBOARD_SCHEMA_VERSION:
        raise ResultsError(
            f"{source} has leaderboard schema_version {describe(version)}; this medsynbench reads "
            f"version {LEADERBOARD_SCHEMA_VERSION}. Regenerate it from the results files with "
            "`medsynbench leaderboard`."
        )
    suite = checker.mapping(top.get("suite"), "$.suite")
    if suite is not None:
        checker.string(suite, "name", "$.suite")
        checker.string(suite, "hash", "$.suite")
    for key in ("sources", "columns", "entries", "correlations", "plots", "utility_tasks"):
        if not isinstance(top.get(key), list):
            checker.add(f"$.{key}", f"expected a list, got {describe(top.get(key))}")
    for index, column in enumerate(top.get("columns") or []):
        record = checker.mapping(column, f"$.columns[{index}]")
        if record is not None:
            for key in ("key", "source", "axis", "label"):
                checker.string(record, key, f"$.columns[{index}]")
    ranks: list[int] = []
    for index, entry in enumerate(top.get("entries") or []):
        record = checker.mapping(entry, f"$.entries[{index}]")
        if record is None:
            continue
        checker.string(record, "name", f"$.entries[{index}]")
        rank = record.get("rank", "missing")
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int)):
            checker.add(f"$.entries[{index}].rank", f"expected an integer or null, got {rank!r}")
        elif isinstance(rank, int):
            ranks.append(rank)
    if ranks != list(range(1, len(ranks) + 1)):
        checker.add("$.entries", f"ranks must be 1..{len(ranks)} in order, got {ranks}")
    for index, row in enumerate(top.get("correlations") or []):
        record = checker.mapping(row, f"$.correlations[{index}]")
        if record is not None:
            checker.string(record, "metric", f"$.correlations[{index}]")
            for key in ("spearman", "spearman_p", "kendall", "kendall_p"):
                checker.number(record, key, f"$.correlations[{index}]")
    checker.raise_if_any(
        f"leaderboard.json (schema {LEADERBOARD_SCHEMA_VERSION})",
        "Regenerate it with `medsynbench leaderboard RESULTS.json... --out DIR`.",
    )
    return dict(top)


def read_leaderboard(path: str | Path) -> dict[str, Any]:
    """Read and validate a leaderboard.json."""
    file = Path(path)
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"leaderboard file {file} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{file} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return check_leaderboard(document, file)
