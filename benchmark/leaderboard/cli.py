"""The ``leaderboard`` command of the ``medsynbench`` CLI.

    medsynbench leaderboard RESULTS.json... --out DIR [--include-real] [--human-scores FILE]
    medsynbench leaderboard publish RESULTS.json [--root leaderboard/] [--check] [--register-suite]

Both forms share one argparse parser (``publish`` is recognised as the first positional), so
options may be given in any order.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import MedSynBenchError
from .build import build_site
from .loading import read_results
from .publish import publish
from .ranking import is_ok

__all__ = ["add_parser", "handle"]

_DESCRIPTION = """\
Build a leaderboard from results files of one suite:
  medsynbench leaderboard RESULTS.json... --out DIR
Publish a submission into the repository's leaderboard/ (validate, store, regenerate the site):
  medsynbench leaderboard publish RESULTS.json [--root leaderboard/]
Entries are ranked by utility only; see docs/leaderboard.md."""


def add_parser(subparsers: Any) -> None:
    """Add the ``leaderboard`` command (with its ``publish`` form) to ``subparsers``."""
    parser = subparsers.add_parser(
        "leaderboard",
        help="rank results by utility and write leaderboard.json/.csv/.md and index.html",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="RESULTS.json",
                        help="results files of one suite (or: publish RESULTS.json)")
    build = parser.add_argument_group("building a leaderboard folder")
    build.add_argument("--out", type=Path, help="output folder (required unless publishing)")
    build.add_argument("--include-real", action="store_true",
                       help="also show sample mosaics of real training images (copy-real, ...)")
    build.add_argument("--human-scores", type=Path, metavar="FILE",
                       help="a reader study's scores.json: adds the human fidelity column "
                            "(shown, never ranked; see docs/reader-study.md)")
    pub = parser.add_argument_group("publish")
    pub.add_argument("--root", type=Path, default=Path("leaderboard"),
                     help="published leaderboard folder (default: leaderboard/)")
    pub.add_argument("--check", action="store_true",
                     help="only validate the submission; write nothing")
    pub.add_argument("--register-suite", action="store_true",
                     help="maintainers: add the submission's suite version and hash to suites.json")
    # accepted after the sub-command too; the top-level main() looks for it in argv
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(func=handle)


def _publish(args: argparse.Namespace, files: list[str]) -> int:
    if len(files) != 1:
        raise MedSynBenchError(
            f"leaderboard publish takes exactly one RESULTS.json (got {len(files)}); "
            "publish each submission separately"
        )
    if args.out is not None or args.include_real or args.human_scores is not None:
        raise MedSynBenchError(
            "--out, --include-real and --human-scores do not apply to publish (the site goes to "
            "ROOT/site, real images are never published, a board with human scores is built "
            "with `medsynbench leaderboard RESULTS.json --human-scores FILE --out DIR`)"
        )
    report = publish(files[0], args.root, args.register_suite, args.check)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    if report.stored is None:
        print(f"{files[0]}: valid submission {report.submission_id}")
    else:
        print(f"published {report.submission_id} → {report.stored}; site: {report.site}")
    return 0


def handle(args: argparse.Namespace) -> int:
    """Run ``medsynbench leaderboard`` (build or publish); return the exit code."""
    inputs: list[str] = list(args.inputs)
    if inputs[0] == "publish":
        return _publish(args, inputs[1:])
    if args.check or args.register_suite:
        raise MedSynBenchError("--check and --register-suite only apply to `leaderboard publish`")
    if args.out is None:
        raise MedSynBenchError(
            "leaderboard: --out DIR is required (the folder for leaderboard.json, .csv, .md, "
            "index.html, plots/ and samples/)"
        )
    loaded = [read_results(path) for path in inputs]
    human = None
    if args.human_scores is not None:
        from ..reader_study.board import read_scores

        human = read_scores(args.human_scores)
    document = build_site(loaded, args.out, include_real=args.include_real, human_scores=human,
                          human_source=str(args.human_scores))
    ranked = [e for e in document["entries"] if e.get("rank") is not None]
    failed = sum(1 for e in document["entries"] if not is_ok(e))
    references = len(document["entries"]) - len(ranked) - failed
    print(
        f"leaderboard of suite {document['suite'].get('name')!r}: {len(ranked)} ranked, "
        f"{references} reference rows, {failed} failed → {Path(args.out) / 'index.html'}"
    )
    return 0
