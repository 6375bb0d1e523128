"""Read a study's answer key and readers' answers files, refusing anything that does not fit.

Each bad input gets one message naming the file, what is wrong and the fix: a file cut short
(invalid JSON), answers of another study, answers mixing protocols, one reader's answers given
twice, a reader who did not answer every image, and a file whose order or trials do not match
what the page would have shown that reader (edited, or its reader id changed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ResultsError
from .layout import KEY_DIR, MANIFEST, PROTOCOLS, READER_ID, reader_order

__all__ = ["ANSWERS_KIND", "ReaderAnswers", "Study", "read_answers", "read_study"]

ANSWERS_KIND = "medsynbench-reader-answers"
_KEY_KIND = "medsynbench-reader-study-key"
_RE_EXPORT = ("re-export it from the study page (the reader's answers stay in that browser: "
              "open the page, enter the same reader id, download again)")


@dataclass(frozen=True)
class Study:
    """A study's answer key (``key/manifest.json``)."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def study_id(self) -> str:
        return str(self.manifest["study_id"])

    @property
    def protocol(self) -> str:
        return str(self.manifest["protocol"])

    @property
    def trials(self) -> dict[str, dict[str, Any]]:
        """trial id → trial (kind, entry, class, truth, group, file, source)."""
        return {str(t["id"]): t for t in self.manifest["trials"]}


@dataclass(frozen=True)
class ReaderAnswers:
    """One reader's validated answers, in the order they were given."""

    path: Path
    reader: str
    answers: list[dict[str, Any]]


def read_study(folder: str | Path) -> Study:
    """The study in ``folder`` (the folder ``reader-study build --out`` wrote)."""
    path = Path(folder) / KEY_DIR / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(
            f"{folder} is not a study folder with its answer key ({path} does not exist); pass "
            "the folder `medsynbench reader-study build --out DIR` wrote, with its key/ folder"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultsError(f"cannot read the answer key {path}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != _KEY_KIND:
        raise ResultsError(f"{path} is not a reader-study answer key")
    return Study(Path(folder), manifest)


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"answers file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"cannot read answers file {path}: {exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(
            f"{path} is truncated or not valid JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}); {_RE_EXPORT}"
        ) from None
    if not isinstance(document, dict) or document.get("kind") != ANSWERS_KIND:
        raise ResultsError(
            f"{path} is not a reader-study answers file (no \"kind\": \"{ANSWERS_KIND}\"); pass "
            "the files the study page downloads (answers-<study>-<reader>.json)"
        )
    for key, kind in (("study_id", str), ("protocol", str), ("reader", str), ("order", list),
                      ("answers", list)):
        if not isinstance(document.get(key), kind):
            raise ResultsError(f"{path}: field {key!r} is missing or not a {kind.__name__}; "
                               f"{_RE_EXPORT}")
    return document


def _check_one(path: Path, document: dict[str, Any], study: Study) -> list[dict[str, Any]]:
    reader = document["reader"]
    if not READER_ID.match(reader):
        raise ResultsError(f"{path}: reader id {reader!r} is not one the page accepts")
    trials = study.trials
    expected = reader_order(study.study_id, reader, sorted(trials))
    if document["order"] != expected:
        raise ResultsError(
            f"{path}: its image order is not the one the page shows reader {reader!r} — the file "
            f"was edited or its reader id changed; {_RE_EXPORT}"
        )
    answers = document["answers"]
    seen: set[str] = set()
    for position, answer in enumerate(answers):
        where = f"{path}: answer {position + 1}"
        if not isinstance(answer, dict):
            raise ResultsError(f"{where} is not an object; {_RE_EXPORT}")
        trial = answer.get("trial")
        if trial not in trials:
            raise ResultsError(f"{where} names image {trial!r}, which is not in this study")
        if trial in seen:
            raise ResultsError(f"{where} answers image {trial!r} a second time; {_RE_EXPORT}")
        seen.add(trial)
        if position >= len(expected) or trial != expected[position]:
            raise ResultsError(f"{where} is out of the page's order (no going back, no "
                               f"skipping ahead); {_RE_EXPORT}")
        if answer.get("answer") not in ("real", "fake"):
            raise ResultsError(f"{where}: answer must be 'real' or 'fake', got "
                               f"{answer.get('answer')!r}")
        rt = answer.get("rt_ms")
        if isinstance(rt, bool) or not isinstance(rt, int | float) or rt < 0:
            raise ResultsError(f"{where}: rt_ms must be a number ≥ 0, got {rt!r}")
        if study.protocol == "unlimited" and answer.get("confidence") not in (1, 2, 3):
            raise ResultsError(f"{where}: confidence must be 1, 2 or 3 in an unlimited-time "
                               f"study, got {answer.get('confidence')!r}")
    if len(answers) < len(expected):
        missing = len(expected) - len(answers)
        raise ResultsError(
            f"{path}: reader {reader!r} answered {len(answers)} of {len(expected)} images "
            f"({missing} not answered): every reader must see every image. Let the reader "
            "finish — the page resumes where they stopped when they enter the same reader id in "
            "the same browser — then export again; or leave this reader's file out"
        )
    return list(answers)


def read_answers(paths: Sequence[str | Path], study: Study) -> list[ReaderAnswers]:
    """Every answers file, validated against ``study``; raises ResultsError on the first problem
    (which file, what is wrong and the fix)."""
    if not paths:
        raise ResultsError("no answers files given: pass the readers' answers-*.json files")
    files = [Path(p) for p in paths]
    documents = [_load(path) for path in files]
    protocols = {str(d["protocol"]) for d in documents}
    if len(protocols) > 1 or not protocols <= set(PROTOCOLS):
        listing = ", ".join(f"{p.name} ({d['protocol']})" for p, d in zip(files, documents,
                                                                          strict=True))
        raise ResultsError(
            f"the answers mix protocols ({listing}): an unlimited-time and a timed study are "
            "scored separately — pass each study's answers with its own --study folder"
        )
    (protocol,) = protocols
    if protocol != study.protocol:
        raise ResultsError(
            f"the answers are from a study of protocol {protocol!r} but {study.folder} holds one "
            f"of protocol {study.protocol!r}: pass the --study folder these answers belong to"
        )
    for path, document in zip(files, documents, strict=True):
        if document["study_id"] != study.study_id:
            raise ResultsError(
                f"{path} answers study {document['study_id']!r}, not {study.study_id!r} "
                f"({study.folder}): pass only the answers of this study (the id is in each "
                "file's name, answers-<study id>-<reader>.json)"
            )
    seen: dict[str, Path] = {}
    digests: dict[str, Path] = {}
    for path, document in zip(files, documents, strict=True):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        twin = digests.get(digest) or seen.get(document["reader"])
        if twin is not None:
            raise ResultsError(
                f"duplicated answers: {twin} and {path} both hold reader "
                f"{document['reader']!r}; pass each reader's answers once (the later export "
                "holds everything the earlier one does)"
            )
        digests[digest] = path
        seen[document["reader"]] = path
    return [ReaderAnswers(path, str(document["reader"]), _check_one(path, document, study))
            for path, document in zip(files, documents, strict=True)]
