"""The ``reader-study`` command of the ``medsynbench`` CLI.

    medsynbench reader-study build RUN_DIR --out DIR [--images N] [--entries A,B]
                                   [--classes X,Y] [--display-size PX] [--protocol unlimited|timed]
                                   [--seed S] [--attention-pairs K] [--fixation-ms MS]
                                   [--cache-dir DIR]
    medsynbench reader-study score ANSWERS.json... --study DIR [--out DIR] [--keep-flagged]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .layout import PROTOCOLS

__all__ = ["add_parser"]

_DESCRIPTION = """\
Measure human fidelity: can readers tell an entry's synthetic images from real ones?
  medsynbench reader-study build RUN_DIR --out DIR      a study folder from a finished run
  (readers open DIR/page/index.html in a browser, offline, and send their answers files)
  medsynbench reader-study score ANSWERS... --study DIR  per-entry FIR, HYPE, d′, κ
  medsynbench leaderboard RESULTS.json --human-scores DIR/scores/scores.json --out BOARD
The study folder holds real images: keep it local. See docs/reader-study.md."""


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _build(args: argparse.Namespace) -> int:
    from .build import StudyOptions, build_study

    options = StudyOptions(
        images=args.images, entries=_names(args.entries or ""),
        classes=_names(args.classes or ""), display_size=args.display_size,
        protocol=args.protocol, seed=args.seed, attention_pairs=args.attention_pairs,
        fixation_ms=args.fixation_ms,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
    )
    report = build_study(args.run, args.out, options)
    print(f"study {report.study_id} ({options.protocol}): {report.trials} images → "
          f"{report.folder}")
    for note in report.notes:
        print(f"privacy: {note}", file=sys.stderr)
    return 0


def _score(args: argparse.Namespace) -> int:
    from .answers import read_answers, read_study
    from .score import score_study, write_scores

    study = read_study(args.study)
    readers = read_answers(args.answers, study)
    scores = score_study(study, readers, keep_flagged=args.keep_flagged)
    out = Path(args.out) if args.out else Path(args.study) / "scores"
    json_file, csv_file = write_scores(scores, out)
    for reader in scores["readers"]:
        if reader["flagged"]:
            print(f"flagged: reader {reader['reader']} failed the attention checks "
                  f"({'kept' if reader['included'] else 'left out'})", file=sys.stderr)
    for row in scores["entries"]:
        interval = row["fir_ci95"] or [float("nan")] * 2
        extra = (f", threshold {row['threshold_ms']:.0f} ms" if row.get("threshold_ms")
                 is not None else "")
        print(f"{row['entry']}: FIR {row['fir']:.3f} [{interval[0]:.3f}, {interval[1]:.3f}], "
              f"error rate {row['error_rate']:.3f}, d′ {row['d_prime']:.2f}{extra}")
    print(f"→ {json_file}, {csv_file}")
    return 0


def add_parser(subparsers: Any) -> None:
    """Add ``reader-study build`` and ``reader-study score`` to ``subparsers``."""
    parser = subparsers.add_parser(
        "reader-study", help="human fake-identification study in a browser (build, score)",
        description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="reader_study_command", required=True)
    build = sub.add_parser("build", help="build a study folder from a finished run")
    build.add_argument("run", metavar="RUN_DIR", help="folder of a finished run (results.json)")
    build.add_argument("--out", required=True, help="new study folder (must not exist)")
    build.add_argument("--images", type=int, default=10,
                       help="synthetic and real images per entry, each (default 10)")
    build.add_argument("--entries", help="comma-separated entries (default: every completed one)")
    build.add_argument("--classes", help="comma-separated classes (default: all)")
    build.add_argument("--display-size", type=int, default=256,
                       help="image side on screen in CSS px (default 256)")
    build.add_argument("--protocol", choices=PROTOCOLS, default="unlimited",
                       help="unlimited (HYPE∞, with confidence) or timed (HYPE-time staircase)")
    build.add_argument("--seed", type=int, default=0, help="selection seed (default 0)")
    build.add_argument("--attention-pairs", type=int, default=3,
                       help="real/noise attention-check pairs (default 3)")
    build.add_argument("--fixation-ms", type=int, default=500,
                       help="timed: fixation cross before each image, ms (default 500)")
    build.add_argument("--cache-dir", help="the run's stage cache (default RUN_DIR/cache)")
    build.set_defaults(func=_build)
    score = sub.add_parser("score", help="score readers' answers files")
    score.add_argument("answers", nargs="+", metavar="ANSWERS.json")
    score.add_argument("--study", required=True, help="the study folder (with its key/)")
    score.add_argument("--out", help="folder for scores.json and scores.csv (default DIR/scores)")
    score.add_argument("--keep-flagged", action="store_true",
                       help="score readers who failed the attention checks too")
    score.set_defaults(func=_score)
    for command in (parser, build, score):
        command.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
