"""The leaderboard: rank entries by downstream utility and publish the evidence.

Public API:

- :func:`rank_entries` — order entries by utility (fidelity never affects the rank).
- :func:`render_markdown` — the ranked table of a results document as Markdown.
"""

from __future__ import annotations

from .markdown import render_markdown
from .ranking import rank_entries

__all__ = ["rank_entries", "render_markdown"]
