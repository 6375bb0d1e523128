"""Read results files and merge those of one suite into a single entry list.

Results can only be compared when they come from the same suite protocol: files with different
suite hashes (or schema versions) are refused with a message listing every file and its hash.
When the runner records ``suite.protocol_hash`` (the suite without its list of entries) that is
compared instead of ``suite.hash``, so that runs adding a generator to a suite still merge.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ResultsError
from .validate import check_results

__all__ = ["Loaded", "Merged", "merge_results", "read_results", "sample_path", "suite_identity"]


@dataclass(frozen=True)
class Loaded:
    """One validated results document and where it came from."""

    document: dict[str, Any]
    path: Path
    label: str

    @property
    def directory(self) -> Path:
        """The folder that relative paths in the document (sample mosaics) are relative to."""
        return self.path.parent


@dataclass
class Merged:
    """Entries of several results files of one suite, with the absolute path of each mosaic.

    ``sample_problems`` says, per entry name, why a declared mosaic path was not accepted (an
    absolute path or one escaping the results folder: only files inside it are read).
    """

    suite: dict[str, Any]
    dataset: dict[str, Any]
    entries: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    sample_files: dict[str, Path] = field(default_factory=dict)
    sample_problems: dict[str, str] = field(default_factory=dict)


def sample_path(directory: Path, samples: str) -> Path | None:
    """The mosaic ``samples`` relative to the results folder ``directory``, or None when it is
    absolute or resolves outside that folder (``..``, a symbolic link pointing out)."""
    if Path(samples).is_absolute():
        return None
    base = directory.resolve()
    path = (base / samples).resolve()
    return path if path.is_relative_to(base) else None


def read_results(path: str | Path, label: str | None = None) -> Loaded:
    """Read and validate one results.json; raise ResultsError naming the file when it is not."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"results file {file} does not exist") from None
    except OSError as exc:
        raise ResultsError(f"cannot read results file {file}: {exc.strerror}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(
            f"{file} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    return Loaded(check_results(document, file), file, label or str(file))


def suite_identity(document: Mapping[str, Any]) -> str:
    """The hash that decides whether two results are comparable (protocol hash if recorded)."""
    suite = document.get("suite") or {}
    return str(suite.get("protocol_hash") or suite.get("hash") or "")


def _differences(a: Any, b: Any, path: str, out: list[str], limit: int = 5) -> None:
    """Dotted paths (at most ``limit``) where two JSON values differ, with both values."""
    if len(out) >= limit:
        return
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b), key=str):
            _differences(a.get(key), b.get(key), f"{path}.{key}", out, limit)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            _differences(x, y, f"{path}[{index}]", out, limit)
    elif a != b:
        left, right = json.dumps(a, default=str)[:60], json.dumps(b, default=str)[:60]
        out.append(f"{path}: {left} vs {right}")


def _check_same_suite(loaded: Sequence[Loaded]) -> None:
    identities = {suite_identity(item.document) for item in loaded}
    if len(identities) <= 1:
        return
    first = loaded[0]
    for item in loaded[1:]:
        if suite_identity(item.document) == suite_identity(first.document):
            continue
        mine = (first.document.get("suite") or {}).get("protocol")
        theirs = (item.document.get("suite") or {}).get("protocol")
        if isinstance(mine, Mapping) and isinstance(theirs, Mapping):
            found: list[str] = []
            _differences(mine, theirs, "protocol", found)
            if found:
                raise ResultsError(
                    f"cannot merge {first.path} and {item.path}: they ran different protocols "
                    f"(differing field{'s' if len(found) > 1 else ''}: {'; '.join(found)}). "
                    "Build one leaderboard per protocol, or re-run one of them with the other's "
                    "suite settings and plugin versions."
                )
    listing = "\n".join(
        f"  - {item.path}: suite {item.document['suite'].get('name')!r} "
        f"hash {suite_identity(item.document)[:16]}…"
        for item in loaded
    )
    raise ResultsError(
        "cannot merge results of different suites (their suite hashes differ):\n"
        f"{listing}\nBuild one leaderboard per suite: pass only results of the same suite file, "
        "run with the same plugin versions."
    )


def _provenance(item: Loaded) -> dict[str, Any]:
    manifest = item.document.get("manifest") or {}
    keep = ("medsynbench", "git_commit", "python", "torch", "cuda", "gpu", "platform", "device",
            "started", "wall_seconds", "float_stack_id")
    return {"label": item.label, **{key: manifest.get(key) for key in keep}}


def merge_results(loaded: Sequence[Loaded], duplicates: str = "error") -> Merged:
    """Merge validated results of one suite.

    Each entry gains ``source`` (the label of its file). ``duplicates`` says what happens when two
    files hold an entry of the same name: ``"error"`` refuses, ``"qualify"`` renames the later
    ones to ``"<name> @ <label>"`` (used when publishing several submissions of one suite).
    """
    if not loaded:
        raise ResultsError("no results files given: pass at least one results.json")
    if duplicates not in ("error", "qualify"):
        raise ValueError(f"duplicates must be 'error' or 'qualify', not {duplicates!r}")
    _check_same_suite(loaded)
    first = loaded[0].document
    merged = Merged(dict(first.get("suite") or {}), dict(first.get("dataset") or {}), [], [])
    origin: dict[str, Path] = {}
    for item in loaded:
        merged.sources.append(_provenance(item))
        for raw in item.document["entries"]:
            entry = dict(raw)
            entry["source"] = item.label
            name = str(entry["name"])
            if name in origin:
                if duplicates == "error":
                    raise ResultsError(
                        f"entry {name!r} appears in both {origin[name]} and {item.path}; pass one "
                        "results file per entry (or rename the entry in one suite)"
                    )
                entry["name"] = name = f"{name} @ {item.label}"
            origin[name] = item.path
            samples = entry.get("samples")
            if isinstance(samples, str) and samples:
                path = sample_path(item.directory, samples)
                if path is None:
                    merged.sample_problems[name] = (
                        f"Sample mosaic {samples} is not shown: only files inside the results "
                        f"folder ({item.directory}) are read, and this path is "
                        f"{'absolute' if Path(samples).is_absolute() else 'outside it'}."
                    )
                else:
                    merged.sample_files[name] = path
            merged.entries.append(entry)
    return merged
