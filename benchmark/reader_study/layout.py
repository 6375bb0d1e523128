"""The study folder, its marker, and the order a reader sees the images in.

A study folder (``reader-study build --out DIR``)::

    DIR/medsynbench-study.json   the marker: study id, protocol, counts — no answer key
    DIR/READ-ME-FIRST.txt        what the folder holds (real images) and where it may go
    DIR/key/manifest.json        the answer key: which image is real, which entry made it;
                                 stays with the study coordinator, never on a reading machine
    DIR/page/                    what the reader's browser sees, and nothing else:
        index.html study.js study.css study-data.js medsynbench-study.json images/<hash>.png

The order of the images is drawn per reader in the browser and replayed here in Python
(:func:`reader_order`) from one 32-bit integer generator, so the scorer can check that an
answers file follows its reader's order: FNV-1a of ``"<study id>:<reader id>"`` seeds
mulberry32, and a Fisher–Yates shuffle takes ``next() % (i + 1)``. Both are integer-only, so
the two implementations agree exactly (tests drive the page in Chromium to prove it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = [
    "KEY_DIR",
    "MANIFEST",
    "MARKER",
    "PAGE_DIR",
    "PROTOCOLS",
    "READER_ID",
    "SCORES_KIND",
    "answer_token",
    "find_study_folder",
    "fnv1a",
    "reader_order",
]

#: The marker file at the top of a study folder and of its page/ folder.
MARKER = "medsynbench-study.json"
#: Sub-folder holding the answer key (kept apart from what the reader's browser sees).
KEY_DIR = "key"
MANIFEST = "manifest.json"
#: Sub-folder holding what a reader's browser loads.
PAGE_DIR = "page"
#: Study protocols: HYPE∞ (no time limit, real/fake with confidence) and HYPE-time.
PROTOCOLS = ("unlimited", "timed")
#: What a reader id may contain (it names the answers file and the browser's storage slot).
READER_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")

#: ``kind`` of a scores file written by ``reader-study score``.
SCORES_KIND = "medsynbench-reader-scores"

_MASK = 0xFFFFFFFF


def fnv1a(text: str) -> int:
    """32-bit FNV-1a of ``text``'s UTF-8 bytes (the page's ``fnv1a`` in study.js)."""
    value = 0x811C9DC5
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * 0x01000193) & _MASK
    return value


def _mulberry32(seed: int) -> Iterator[int]:
    state = seed & _MASK
    while True:
        state = (state + 0x6D2B79F5) & _MASK
        t = ((state ^ (state >> 15)) * (1 | state)) & _MASK
        t = ((t + (((t ^ (t >> 7)) * (61 | t)) & _MASK)) & _MASK) ^ t
        yield (t ^ (t >> 14)) & _MASK


def reader_order(study_id: str, reader: str, trial_ids: Sequence[str]) -> list[str]:
    """The order in which ``reader`` sees the trials (``trial_ids`` as study-data.js lists
    them): a Fisher–Yates shuffle driven by mulberry32 seeded with FNV-1a of
    ``"<study_id>:<reader>"`` — the same as ``readerOrder`` in study.js."""
    order = list(trial_ids)
    numbers = _mulberry32(fnv1a(f"{study_id}:{reader}"))
    for i in range(len(order) - 1, 0, -1):
        j = next(numbers) % (i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def answer_token(study_id: str, trial_id: str, truth: str) -> str:
    """The digest a timed study's page holds for a trial, so its staircase can tell a right
    answer from a wrong one without the label in plain view (8 hex digits of FNV-1a)."""
    return f"{fnv1a(f'{study_id}:{trial_id}:{truth}'):08x}"


def find_study_folder(path: str | Path) -> Path | None:
    """The study folder (or its page/ folder) that ``path`` is, or lies inside; else None."""
    here = Path(path).resolve()
    for folder in (here, *here.parents):
        if (folder / MARKER).is_file():
            return folder
    return None
