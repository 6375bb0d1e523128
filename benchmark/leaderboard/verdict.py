"""The utility verdict of one board: Δ, intervals, p-values, multiplicity, rank intervals, ties.

Everything here is computed from the raw per-seed (and per-test-image) scores that results.json
keeps, over exactly the entries on the board — so a board built from one run and a board merged
from several runs of the same protocol give identical numbers for the same entries.

For each utility task (see :func:`~.ranking.utility_tasks`):

* every entry's Δ = treated − real-only on the task's primary score, per seed, summarised by
  :func:`medsynbench.stats.paired_comparison` (mean Δ in pp, Student-t 95% CI, exact Wilcoxon);
* **two multiplicity families**, each Holm-corrected: the *ranked* entries (generators) and the
  *reference rows* (memoriser, classical augmentation, positive and negative controls). A
  result is ``significant`` when its Holm-adjusted p < α, in either direction
  (``direction`` says which); ``ci_simultaneous_pp`` is the Bonferroni interval of its family;
* each entry's Δ against classical augmentation (the studies' headline comparison), paired by
  seed, when the board has a ``reference = "classical"`` row.

For the first task only, the ranked entries get a 95% **rank interval**
(:func:`medsynbench.stats.rank_intervals`, resampling seeds and test images); entries whose
intervals overlap are **tied**. Board-derived metric quantities (variety V) are filled in here
too (:func:`derive_board_quantities`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..stats import (
    holm,
    min_adjusted_p,
    paired_comparison,
    rank_intervals,
    seeds_needed,
    t_interval,
    unpack_correct,
)
from .ranking import is_ok

__all__ = [
    "ALPHA",
    "BOARD_RULES",
    "apply_verdict",
    "derive_board_quantities",
    "is_reference",
    "real_only_rows",
]

ALPHA = 0.05
#: Board rules for metric quantities derived across the entries of one board.
BOARD_RULES = ("inverse-minmax",)
#: One test image worth this many percentage points or more is flagged as a coarse test set.
_COARSE_PP = 0.5


def is_reference(entry: Mapping[str, Any]) -> bool:
    """A reference row (real-image baseline or control): shown, never ranked."""
    return bool(entry.get("reference")) or entry.get("baseline") is True


def _record(entry: Mapping[str, Any], task: str) -> dict[str, Any] | None:
    utility = entry.get("utility") or {}
    found = utility.get(task) if isinstance(utility, Mapping) else None
    return found if isinstance(found, dict) else None


def _primary_scores(record: Mapping[str, Any], arm: str) -> list[float] | None:
    scores = (record.get(arm) or {}).get(record.get("primary"))
    if not isinstance(scores, list) or not scores:
        return None
    if not all(isinstance(v, int | float) and math.isfinite(float(v)) for v in scores):
        return None
    return [float(v) for v in scores]


def _correct(record: Mapping[str, Any], arm: str) -> np.ndarray | None:
    packed, n_eval = record.get(f"{arm}_correct"), record.get("n_eval")
    if not isinstance(packed, list) or not isinstance(n_eval, int) or n_eval < 1:
        return None
    if not all(isinstance(p, str) for p in packed):
        return None
    return np.stack([unpack_correct(p, n_eval) for p in packed])


# ------------------------------------------------------------------------ board quantities
def derive_board_quantities(entries: list[dict[str, Any]]) -> None:
    """Fill in metric values declared with a ``board_rule`` over the completed entries."""
    targets: dict[str, tuple[str, str]] = {}
    for entry in entries:
        for key, record in (entry.get("metrics") or {}).items():
            if isinstance(record, Mapping) and record.get("board_rule"):
                targets.setdefault(key, (str(record["board_rule"]), str(record.get("source"))))
    for key, (rule, source) in targets.items():
        if rule not in BOARD_RULES:
            raise ValueError(f"metric {key!r}: unknown board rule {rule!r} (known: {BOARD_RULES})")
        raw: dict[int, float] = {}
        for index, entry in enumerate(entries):
            value = ((entry.get("metrics") or {}).get(source) or {}).get("value")
            if is_ok(entry) and isinstance(value, int | float) and math.isfinite(float(value)):
                raw[index] = float(value)
        low, high = (min(raw.values()), max(raw.values())) if raw else (0.0, 0.0)
        for index, entry in enumerate(entries):
            record = (entry.get("metrics") or {}).get(key)
            if not isinstance(record, dict):
                continue
            if index in raw:
                span = high - low
                record["value"] = 1.0 if span == 0 else 1.0 - (raw[index] - low) / span
            else:
                record["value"] = None
            record["board_entries"] = len(raw)


# ------------------------------------------------------------------------------- families
def _compare(entries: list[dict[str, Any]], task: str, family: str, alpha: float) -> None:
    """Paired comparison with real only for every member of one family, Holm inside it."""
    members = []
    for entry in entries:
        record = _record(entry, task)
        if record is None:
            continue
        base, treat = _primary_scores(record, "baseline"), _primary_scores(record, "treated")
        if base is None or treat is None or len(base) != len(treat):
            record["note"] = "no per-seed scores for the primary score: nothing to compare"
            continue
        members.append((entry, record, base, treat))
    size = len(members)
    for _, record, base, treat in members:
        record.update(paired_comparison(base, treat, alpha=alpha, family_size=size))
    adjusted = holm([record.get("p_value") for _, record, _, _ in members])
    for (_, record, _, _), p_adj in zip(members, adjusted, strict=True):
        record["family"] = family
        record["family_size"] = size
        record["correction"] = "holm"
        record["p_value_adj"] = p_adj
        significant = p_adj is not None and p_adj < alpha
        delta = record.get("delta_pp") or 0.0
        record["significant"] = bool(significant)
        record["direction"] = ("better" if delta > 0 else "worse") if significant else None
        n = len(record.get("seeds") or []) or record.get("n") or 0
        if min_adjusted_p(int(n), size) >= alpha:
            record.setdefault("flags", []).append(
                f"underpowered: {n} seeds cannot reach p < {alpha:g} after Holm over {size} "
                f"comparisons (needs {seeds_needed(size, alpha)} seeds)"
            )
        n_eval = record.get("n_eval")
        if isinstance(n_eval, int) and n_eval > 0 and 100 / n_eval >= _COARSE_PP:
            message = f"one test image = {100 / n_eval:.2g} pp ({n_eval} test images)"
            if message not in record.setdefault("flags", []):
                record["flags"].append(message)


def _versus_classical(entries: list[dict[str, Any]], task: str, alpha: float) -> None:
    classical = [
        e for e in entries if e.get("reference") == "classical" and _record(e, task) is not None
    ]
    if not classical:
        return
    for entry in entries:
        record = _record(entry, task)
        if record is None or entry.get("reference") == "classical":
            continue
        same_source = [c for c in classical if c.get("source") == entry.get("source")]
        other = (same_source or classical)[0]
        theirs = _primary_scores(_record(other, task) or {}, "treated")
        ours = _primary_scores(record, "treated")
        if theirs is None or ours is None or len(theirs) != len(ours):
            continue
        if (_record(other, task) or {}).get("seeds") != record.get("seeds"):
            continue
        comparison = paired_comparison(theirs, ours, alpha=alpha)
        record["vs_classical"] = {
            "entry": other.get("name"),
            "delta_pp": comparison["delta_pp"],
            "ci95_pp": comparison["ci95_pp"],
            "p_value": comparison["p_value"],
        }


# -------------------------------------------------------------------------- rank intervals
def _rank(ranked: list[dict[str, Any]], task: str) -> str:
    """Order ``ranked`` in place by Δ, set rank, rank_interval, rank_label and tied_with."""

    def delta(entry: Mapping[str, Any]) -> float | None:
        value = (_record(entry, task) or {}).get("delta_pp")
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None

    ranked.sort(key=lambda e: (delta(e) is None, -(delta(e) or 0.0), str(e.get("name", ""))))
    for position, entry in enumerate(ranked, start=1):
        entry["rank"] = position
        entry["rank_interval"], entry["tied_with"], entry["rank_label"] = None, [], str(position)
    scored = [e for e in ranked if delta(e) is not None]
    records = [_record(e, task) or {} for e in scored]
    if len(scored) < 2:
        for entry in scored:
            entry["rank_interval"] = [1, 1]
        return "a single ranked entry" if scored else "no ranked entry"
    seeds = {tuple(r.get("seeds") or ()) for r in records}
    if len(seeds) != 1:
        return "no rank intervals: the entries were run with different seeds"
    base = np.array([_primary_scores(r, "baseline") for r in records])
    treat = np.array([_primary_scores(r, "treated") for r in records])
    bc = [_correct(r, "baseline") for r in records]
    tc = [_correct(r, "treated") for r in records]
    usable = all(c is not None and c.shape == bc[0].shape for c in (*bc, *tc))  # type: ignore[union-attr]
    if usable:
        bca, tca = np.stack(bc), np.stack(tc)  # type: ignore[arg-type]
        consistent = np.allclose(bca.mean(axis=2), base) and np.allclose(tca.mean(axis=2), treat)
        usable = bool(consistent)  # per-image bits must be the primary score's predictions
    intervals, method = rank_intervals(
        base, treat, bca if usable else None, tca if usable else None
    )
    for entry, (low, high) in zip(scored, intervals.tolist(), strict=True):
        entry["rank_interval"] = [int(low), int(high)]
    for entry in scored:
        low, high = entry["rank_interval"]
        entry["tied_with"] = [
            str(other["name"]) for other in scored
            if other is not entry
            and other["rank_interval"][0] <= high and low <= other["rank_interval"][1]
        ]
    # Tie groups in rank order: an entry joins the group above when its interval overlaps
    # the interval of every member; the group shares its first rank, shown as "=k".
    groups: list[list[dict[str, Any]]] = []
    for entry in scored:
        if groups and all(str(m["name"]) in entry["tied_with"] for m in groups[-1]):
            groups[-1].append(entry)
        else:
            groups.append([entry])
    for group in groups:
        first = group[0]["rank"]
        for entry in group:
            entry["rank_label"] = f"={first}" if len(group) > 1 else str(first)
    return method


# ------------------------------------------------------------------------------ statements
def _pp(value: Any) -> str:
    return f"{value:+.2f} pp" if isinstance(value, int | float) else "—"


def _statements(
    ranked: Sequence[Mapping[str, Any]], references: Sequence[Mapping[str, Any]], task: str,
    alpha: float,
) -> list[str]:
    """Plain-language sentences saying which differences on the board are real."""
    lines: list[str] = []
    better = [e for e in ranked if (_record(e, task) or {}).get("direction") == "better"]
    worse = [e for e in ranked if (_record(e, task) or {}).get("direction") == "worse"]
    neutral = [e for e in ranked if e not in better and e not in worse and _record(e, task)]

    def names(group: Sequence[Mapping[str, Any]]) -> str:
        return ", ".join(
            f"{e.get('name')} ({_pp((_record(e, task) or {}).get('delta_pp'))}, Holm p = "
            f"{(_record(e, task) or {}).get('p_value_adj', float('nan')):.3g})"
            for e in group
        )

    if better:
        lines.append(f"Significantly more useful than real data alone: {names(better)}.")
    if worse:
        lines.append(f"Significantly harmful (worse than real data alone): {names(worse)}.")
    if neutral:
        lines.append(
            "Not distinguishable from real data alone at α = "
            f"{alpha:g} (Holm): {', '.join(str(e.get('name')) for e in neutral)}."
        )
    scored = [e for e in ranked if e.get("rank_interval")]
    for position, entry in enumerate(scored):
        below = [
            str(o.get("name")) for o in scored[position + 1 :]
            if o["rank_interval"][0] > entry["rank_interval"][1]
        ]
        if below:
            lines.append(
                f"{entry.get('name')} (rank interval {entry['rank_interval'][0]}–"
                f"{entry['rank_interval'][1]}) is ahead of {', '.join(below)}: that ordering "
                "holds across the resampled seeds and test images."
            )
    groups: dict[str, list[str]] = {}
    for entry in scored:
        if str(entry.get("rank_label", "")).startswith("="):
            groups.setdefault(str(entry["rank_label"]), []).append(str(entry.get("name")))
    for label, members in groups.items():
        lines.append(
            f"Tied at rank {label[1:]} (overlapping 95% rank intervals; the data cannot order "
            f"them): {', '.join(members)}."
        )
    loose = [
        e for e in scored
        if e.get("tied_with") and not str(e.get("rank_label", "")).startswith("=")
    ]
    for entry in loose:  # overlaps that do not form a group with the entries around it
        lines.append(
            f"{entry.get('name')}'s rank interval also overlaps {', '.join(entry['tied_with'])}."
        )
    for entry in references:
        record = _record(entry, task) or {}
        kind = entry.get("reference")
        if kind == "positive-control":
            if record.get("direction") == "better":
                lines.append(
                    f"Positive control {entry.get('name')}: {_pp(record.get('delta_pp'))}, "
                    "significant — the task can detect a real gain."
                )
            else:
                lines.append(
                    f"Positive control {entry.get('name')}: {_pp(record.get('delta_pp'))}, NOT "
                    "significantly positive — this task cannot detect even real extra data, so "
                    "a generator's non-significant Δ here says little."
                )
        if kind == "negative-control":
            verdict = (
                "significant — the task detects harmful data"
                if record.get("direction") == "worse"
                else "NOT significantly negative — the task is insensitive to harmful data"
            )
            lines.append(
                f"Negative control {entry.get('name')}: {_pp(record.get('delta_pp'))}, {verdict}."
            )
    return lines


# ---------------------------------------------------------------------------------- entry
def apply_verdict(
    entries: list[dict[str, Any]], tasks: Sequence[str], alpha: float = ALPHA
) -> dict[str, Any]:
    """Compute the verdict in place on ``entries`` (deep copies owned by the caller).

    Returns the board-level summary: the families, the rank method, the statements.
    Entries end up with ``rank`` (ranked entries 1..n; None for references and failures),
    ``rank_interval``, ``rank_label`` and ``tied_with``; utility records with the fields of
    :func:`~medsynbench.stats.paired_comparison` plus ``p_value_adj``, ``family``,
    ``significant``, ``direction`` and ``vs_classical``.
    """
    derive_board_quantities(entries)
    ok = [e for e in entries if is_ok(e)]
    ranked = [e for e in ok if not is_reference(e)]
    references = [e for e in ok if is_reference(e)]
    families = []
    for task in tasks:
        _compare(ranked, task, "ranked entries", alpha)
        _compare(references, task, "reference rows", alpha)
        _versus_classical(ok, task, alpha)
        for family, members in (("ranked entries", ranked), ("reference rows", references)):
            names = [str(e.get("name")) for e in members if _record(e, task) is not None]
            if names:
                families.append({"task": task, "family": family, "correction": "holm",
                                 "size": len(names), "members": names})
    for entry in entries:
        entry["rank"], entry["rank_interval"], entry["rank_label"] = None, None, None
        entry["tied_with"] = []
    rank_task = tasks[0] if tasks else None
    method = _rank(ranked, rank_task) if rank_task else "no utility task"
    if not rank_task:
        ranked.sort(key=lambda e: str(e.get("name", "")))
        for position, entry in enumerate(ranked, start=1):
            entry["rank"], entry["rank_label"] = position, str(position)
    entries[:] = ranked + references + [e for e in entries if not is_ok(e)]
    return {
        "alpha": alpha,
        "families": families,
        "rank_task": rank_task,
        "rank_method": method,
        "statements": _statements(ranked, references, rank_task, alpha) if rank_task else [],
    }


def real_only_rows(entries: Sequence[Mapping[str, Any]], tasks: Sequence[str]) -> dict[str, Any]:
    """The real-only reference row of each task: mean primary score and CI over seeds."""
    rows: dict[str, Any] = {}
    for task in tasks:
        for entry in entries:
            record = _record(entry, task)
            base = _primary_scores(record, "baseline") if record else None
            if record is None or base is None:
                continue
            interval = t_interval(base)
            rows[task] = {
                "primary": record.get("primary"),
                "mean_pct": 100 * float(np.mean(base)),
                "ci95_pct": [100 * v for v in interval] if interval else None,
                "seeds": len(base),
                "delta_pp": 0.0,
            }
            break
    return rows
