"""Human fidelity on the leaderboard: a scores file's values as metric records of its entries.

``medsynbench leaderboard RESULTS.json... --human-scores scores.json`` adds, to every entry the
study scored, ``reader-study.fir`` (the human fake-identification rate, lower is better) and, for
a timed study, ``reader-study.threshold_ms`` (higher is better) — fidelity-axis records, so
the board shows them beside the other fidelity metrics and correlates them with utility, and,
like every metric, never ranks by them. The scores must come from a study of the board's suite.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ResultsError
from .layout import SCORES_KIND

__all__ = ["FIR_KEY", "THRESHOLD_KEY", "human_records", "read_scores"]

FIR_KEY = "reader-study.fir"
THRESHOLD_KEY = "reader-study.threshold_ms"


def read_scores(path: str | Path) -> dict[str, Any]:
    """A scores file written by ``reader-study score``; ResultsError when it is not one."""
    file = Path(path)
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"human scores file {file} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultsError(f"cannot read human scores {file}: {exc}") from None
    if not isinstance(document, dict) or document.get("kind") != SCORES_KIND:
        raise ResultsError(
            f"{file} is not a reader-study scores file (write one with `medsynbench "
            "reader-study score ANSWERS... --study DIR`)"
        )
    if not isinstance(document.get("entries"), list):
        raise ResultsError(f"{file}: 'entries' must be a list")
    return document


def _identity(suite: Mapping[str, Any]) -> str:
    return str(suite.get("protocol_hash") or suite.get("hash") or "")


def human_records(
    scores: Mapping[str, Any], suite: Mapping[str, Any], entry_names: list[str], source: str
) -> dict[str, dict[str, dict[str, Any]]]:
    """entry name → metric key → record, for merging into a board of ``suite`` whose entries
    are ``entry_names``; ResultsError when the scores belong to another suite or entry."""
    theirs = scores.get("suite") or {}
    if _identity(theirs) != _identity(suite):
        raise ResultsError(
            f"{source}: the human scores come from a study of suite {theirs.get('name')!r} "
            f"({_identity(theirs)[:12]}…), not this board's {suite.get('name')!r} "
            f"({_identity(suite)[:12]}…); build the study from a run of this suite"
        )
    readers = scores.get("readers") or []
    excluded = [r.get("reader") for r in readers if not r.get("included", True)]
    records: dict[str, dict[str, dict[str, Any]]] = {}
    for row in scores["entries"]:
        name = str(row.get("entry"))
        if name not in entry_names:
            raise ResultsError(f"{source}: entry {name!r} of the human scores is not on this "
                               f"board (entries: {', '.join(entry_names)})")
        flags = []
        if excluded:
            flags.append(f"{len(excluded)} reader(s) left out for failing attention checks")
        if (row.get("readers") or 0) < 2:
            flags.append("one reader only: no inter-reader agreement")
        common = {"axis": "fidelity", "encoder": None, "flags": flags,
                  "source": f"reader study {scores.get('study_id')} ({scores.get('protocol')})",
                  "readers": row.get("readers"), "images": row.get("synthetic_images")}
        found = {FIR_KEY: {"value": row.get("fir"), "higher_is_better": False,
                           "ci95": row.get("fir_ci95"), **common}}
        if scores.get("protocol") == "timed":
            found[THRESHOLD_KEY] = {"value": row.get("threshold_ms"), "higher_is_better": True,
                                    **common}
        records[name] = found
    return records
