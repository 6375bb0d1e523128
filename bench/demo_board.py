"""Regenerate the README's demo board from a demo run, with the machine it came from.

    medsynbench run suites/demo.toml --out runs/demo      # or: make demo
    python bench/demo_board.py runs/demo/results.json      # rewrites the block in README.md

The block between ``<!-- demo-board:start -->`` and ``<!-- demo-board:end -->`` in README.md is
replaced by a compact board built with the leaderboard's own verdict (the same numbers as
runs/demo/leaderboard.md) and a line naming the CPU, thread count, float stack id and wall time
recorded in the run's manifest. ``--check`` only says whether the README block is current.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from _checkout import ensure_medsynbench  # bench/ is sys.path[0] when run

ensure_medsynbench()
from medsynbench.leaderboard.markdown import rank_cell, utility_cell  # noqa: E402
from medsynbench.leaderboard.ranking import judge  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- demo-board:start -->", "<!-- demo-board:end -->"
METRICS = (("fid.fid", "FID ↓", 1), ("prdc.precision", "precision", 2),
           ("prdc.recall", "recall", 2), ("knn-privacy.privacy", "privacy P", 2),
           ("mean-image-jpeg.variety", "variety V", 2))


def _metric(entry: dict[str, Any], key: str, digits: int) -> str:
    value = ((entry.get("metrics") or {}).get(key) or {}).get("value")
    if not isinstance(value, int | float):
        return "—"
    return f"{0.0 if abs(value) < 10 ** -digits else value:.{digits}f}"


def board(results: dict[str, Any]) -> str:
    """The README block: machine line, ranked table, reference rows and the verdict sentences."""
    entries, verdict = judge(results["entries"])
    manifest = results["manifest"]
    stack = manifest.get("float_stack") or {}
    cpu = stack.get("cpu") if isinstance(stack.get("cpu"), dict) else {}
    real_only = (verdict.get("real_only") or {}).get("augmentation") or {}
    units = manifest.get("stage_units") or {}
    cached = sum(int(c.get("cached", 0)) for c in units.values())
    total = cached + sum(int(c.get("computed", 0)) for c in units.values())
    cache_note = ("with an empty cache" if cached == 0 else
                  f"reading {cached} of {total} units from the cache")
    lines = [
        f"Board of a demo run on: {cpu.get('model') or manifest.get('platform')} "
        f"({manifest.get('cpu_count')} cores), device {manifest.get('device')}, "
        f"cpu_threads {manifest.get('cpu_threads')}, torch {manifest.get('torch')}, float stack "
        f"`{manifest.get('float_stack_id')}`, commit `{str(manifest.get('git_commit'))[:12]}`, "
        f"wall {manifest.get('wall_seconds', 0) / 60:.1f} min {cache_note}. "
        f"Real-only accuracy {real_only.get('mean_pct', float('nan')):.2f}% "
        f"(mean of {real_only.get('seeds')} seeds).",
        "",
        "| rank (95% interval) | entry | augmentation Δ pp [simultaneous 95% CI], Holm p | "
        + " | ".join(label for _, label, _ in METRICS) + " |",
        "|---|---|---|" + "---:|" * len(METRICS),
    ]
    for entry in entries:
        if entry.get("status") != "ok":
            continue
        rank = rank_cell(entry) if entry.get("rank") else f"ref: {entry.get('reference')}"
        cell = utility_cell((entry.get("utility") or {}).get("augmentation"), escape=str)
        lines.append(
            f"| {rank} | {entry['name']} | {cell} | "
            + " | ".join(_metric(entry, key, digits) for key, _, digits in METRICS) + " |"
        )
    lines += ["", *[f"- {text}" for text in verdict.get("statements") or []]]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="runs/demo/results.json")
    parser.add_argument("--readme", default=str(ROOT / "README.md"))
    parser.add_argument("--check", action="store_true", help="only check the README is current")
    args = parser.parse_args()
    results = json.loads(Path(args.results).read_text())
    block = board(results)
    readme = Path(args.readme)
    text = readme.read_text()
    if START not in text or END not in text:
        print(f"error: {readme} has no {START} … {END} block", file=sys.stderr)
        return 2
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{block}\n{END}{tail}"
    if args.check:
        current = new == text
        print("README demo board is current" if current else "README demo board differs")
        return 0 if current else 1
    readme.write_text(new)
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
