"""The leaderboard: rank entries by downstream utility and publish the evidence.

Modules follow the data flow: ``validate``/``loading`` (read and merge results.json files),
``ranking`` (utility only), ``correlation`` (does fidelity predict utility?), ``schema``
(leaderboard.json), ``markdown``/``page``/``plots``/``build`` (the outputs), ``publish``
(submissions under leaderboard/) and ``cli`` (the ``medsynbench leaderboard`` command).
"""

from __future__ import annotations

from .build import build_site
from .correlation import correlations
from .loading import merge_results, read_results
from .markdown import render_markdown
from .publish import publish, regenerate_site
from .ranking import rank_entries
from .schema import read_leaderboard

__all__ = [
    "build_site",
    "correlations",
    "merge_results",
    "publish",
    "rank_entries",
    "read_leaderboard",
    "read_results",
    "regenerate_site",
    "render_markdown",
]
