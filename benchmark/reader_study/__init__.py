"""Reader studies: can people tell an entry's synthetic images from real ones?

The data flow: a finished run → ``build`` (a study folder: the page a reader's browser opens,
and the answer key kept apart) → readers answer in a browser, offline, and export their
answers → ``score`` (per-entry FIR, real-image error, HYPE∞ error, d′, κ, the HYPE-time
staircase threshold) → the leaderboard's "human fidelity" column (``--human-scores``).
Modules: ``layout`` (folder, marker, reader order), ``source`` (the run's images), ``build``,
``answers`` (reading and refusing answers files), ``stats``, ``score``, ``board``, ``cli``;
the page is ``static/``. See docs/reader-study.md.

Privacy: real images are copied only into the study folder; the folder holds a marker
(:data:`~.layout.MARKER`) by which ``leaderboard publish`` refuses it, and a ``.gitignore``.
"""

from __future__ import annotations

from .layout import MARKER, PROTOCOLS, find_study_folder

__all__ = ["MARKER", "PROTOCOLS", "find_study_folder"]
