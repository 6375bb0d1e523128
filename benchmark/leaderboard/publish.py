"""Publishing: validate a submission, store it under ``leaderboard/`` and regenerate the site.

Layout of the published root (``leaderboard/`` in the repository)::

    suites.json                          registry of known suites: name → [{version, hash, file}]
    submissions/<suite>/<id>.json        one results document per submission (+ "submission")
    submissions/<suite>/<id>/samples/    its synthetic sample mosaics (never real images)
    site/index.html                      list of suites
    site/<suite>-<version>/              the leaderboard folder of each suite version

A submission is refused unless it is a valid results document (docs/results-schema.md) with
provenance (suite name/version/hash, code version, hardware, date), its suite version and
protocol hash are registered in ``suites.json``, it embeds no image data, and its mosaics are PNG
files inside the results folder. The protocol hash (``suite.protocol_hash``, see
:meth:`medsynbench.suite.Suite.protocol`) covers the seeds and the dataset, encoders, metrics and
tasks with their parameters **and plugin versions**, so results of other versions of those plugins
are refused; generator versions belong to the entries, so a new generator (or a new version of
one) is published against the same registered protocol. Mosaics of real training images are not
stored (see :func:`medsynbench.leaderboard.build.shows_real_images`), and nothing inside a
reader-study folder (:func:`medsynbench.reader_study.find_study_folder`: real images) is read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import ResultsError
from ..params import did_you_mean
from .build import build_site, shows_real_images
from .loading import Loaded, read_results, suite_identity
from .validate import Checker

__all__ = [
    "PublishReport",
    "find_embedded_images",
    "load_registry",
    "publish",
    "regenerate_site",
]

REGISTRY_FILE = "suites.json"
_IMAGE_MAGIC = {
    b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"BM": "BMP",
    b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"RIFF": "WebP",
}
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\r\n]+$")


@dataclass
class PublishReport:
    """What :func:`publish` did (or, with ``check_only``, would do)."""

    submission_id: str
    stored: Path | None
    site: Path | None
    notes: list[str] = field(default_factory=list)


def _walk(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{where}[{index}]")


def _image_kind(text: str) -> str | None:
    stripped = text.strip()
    if stripped[:5].lower() == "data:":
        return "data: URI"
    if len(stripped) < 64 or not _BASE64.match(stripped[:4096]):
        return None
    try:
        head = base64.b64decode(re.sub(r"\s+", "", stripped)[:64] + "==", validate=False)
    except (binascii.Error, ValueError):
        return None
    kinds = [kind for magic, kind in _IMAGE_MAGIC.items() if head.startswith(magic)]
    if kinds:
        return f"base64 {kinds[0]}"
    return "a large base64 payload" if len(stripped) > 4096 else None


def find_embedded_images(document: Any) -> list[str]:
    """JSON paths of strings that embed image data (data: URIs, base64 images or blobs)."""
    return [
        f"{where}: embedded image data ({kind}, {len(text):,} characters)"
        for where, text in _walk(document, "$")
        if (kind := _image_kind(text)) is not None
    ]


def load_registry(root: Path) -> dict[str, Any]:
    """Read ``root/suites.json``: ``{"suites": {name: [{"version", "hash", "file"}]}}``."""
    path = root / REGISTRY_FILE
    if not path.exists():
        return {"schema_version": 1, "suites": {}}
    try:
        registry = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(registry, dict) or not isinstance(registry.get("suites"), dict):
        raise ResultsError(f"{path}: expected {{\"suites\": {{name: [...]}}}}")
    return registry


def _check_provenance(document: dict[str, Any], source: Path) -> None:
    checker = Checker(source)
    suite, manifest = document.get("suite") or {}, document.get("manifest")
    for key in ("name", "version", "hash"):
        checker.string(suite, key, "$.suite")
    if not isinstance(manifest, dict):
        checker.add("$", "missing required field 'manifest' (code version, hardware, date)")
    else:
        for key in ("medsynbench", "platform", "device", "started"):
            checker.string(manifest, key, "$.manifest")
        if str(manifest.get("device", "")).startswith("cuda"):
            checker.string(manifest, "gpu", "$.manifest")
        started = manifest.get("started")
        if isinstance(started, str) and started:
            try:
                datetime.fromisoformat(started.replace("Z", "+00:00"))
            except ValueError:
                checker.add("$.manifest.started", f"not an ISO-8601 date: {started!r}")
    for problem in find_embedded_images(document):
        checker.add(*problem.split(": ", 1))
    checker.raise_if_any(
        "submission",
        "Submit the results.json written by `medsynbench run` unchanged: it records the suite, "
        "code version, hardware and date, and references sample mosaics by relative path.",
    )


def _check_suite(document: dict[str, Any], registry: dict[str, Any], root: Path) -> None:
    suite = document["suite"]
    name, version, suite_hash = suite["name"], suite["version"], suite_identity(document)
    known: dict[str, Any] = registry["suites"]
    where = root / REGISTRY_FILE
    if name not in known:
        raise ResultsError(
            f"suite {name!r} is not a known leaderboard suite{did_you_mean(name, list(known))} "
            f"(known: {', '.join(sorted(known)) or 'none'}; registry {where}). Run one of the "
            "suites under suites/, or ask the maintainers to register it (--register-suite)."
        )
    versions = known[name]
    match = [v for v in versions if v.get("hash") == suite_hash]
    if not match:
        expected = ", ".join(f"{v.get('version')}: {str(v.get('hash'))[:12]}…" for v in versions)
        raise ResultsError(
            f"suite {name!r} hash {suite_hash[:12]}… does not match the registered hash "
            f"({expected}; {where}). The results come from a modified suite file or from other "
            "versions of its dataset, encoder, metric or task plugins (`medsynbench plugins` "
            f"lists them): re-run {versions[0].get('file') or 'the suite'} unchanged with the "
            "code the suite was registered with, or ask the maintainers to register a new suite "
            "version."
        )
    if match[0].get("version") != version:
        raise ResultsError(
            f"suite {name!r} hash {suite_hash[:12]}… is registered as version "
            f"{match[0].get('version')!r} but the results say version {version!r}; fix "
            "[suite] version in the suite file and re-run."
        )


def _portable(file: str | None, repository: Path) -> str | None:
    """A suite file inside the repository as a relative path (the registry is committed)."""
    if not file:
        return file
    path = Path(file)
    if path.is_absolute() and path.resolve().is_relative_to(repository):
        return path.resolve().relative_to(repository).as_posix()
    return file


def _register(document: dict[str, Any], registry: dict[str, Any], root: Path) -> str:
    suite = document["suite"]
    versions = registry["suites"].setdefault(suite["name"], [])
    suite_hash = suite_identity(document)
    if any(v.get("hash") == suite_hash for v in versions):
        return f"suite {suite['name']!r} {suite_hash[:12]}… is already registered"
    clash = [v for v in versions if v.get("version") == suite["version"]]
    if clash:
        raise ResultsError(
            f"suite {suite['name']!r} version {suite['version']!r} is already registered with "
            f"hash {str(clash[0].get('hash'))[:12]}…; bump [suite] version when a suite changes"
        )
    versions.append({"version": suite["version"], "hash": suite_hash,
                     "file": _portable(suite.get("file"), root.resolve().parent)})
    (root / REGISTRY_FILE).write_text(json.dumps(registry, indent=2, sort_keys=True) + "\n")
    return f"registered suite {suite['name']!r} version {suite['version']!r}"


def _mosaics(loaded: Loaded) -> dict[str, Path]:
    """entry name → mosaic file to store; raises on paths outside the folder or non-PNG files."""
    found: dict[str, Path] = {}
    base = loaded.directory.resolve()
    for index, entry in enumerate(loaded.document["entries"]):
        samples = entry.get("samples")
        if not samples or shows_real_images(entry):
            continue
        where = f"{loaded.path}: $.entries[{index}].samples"
        path = (base / samples).resolve()
        if Path(samples).is_absolute() or not path.is_relative_to(base):
            raise ResultsError(f"{where}: {samples!r} must be a path inside the results folder")
        if not path.is_file():
            raise ResultsError(f"{where}: mosaic {samples!r} not found next to the results file")
        _refuse_study_folder(path)
        with path.open("rb") as handle:
            if handle.read(4) != b"\x89PNG":
                raise ResultsError(f"{where}: mosaic {samples!r} is not a PNG file")
        found[str(entry["name"])] = path
    return found


def _refuse_study_folder(path: str | Path) -> None:
    """A reader-study folder holds real images: nothing in it is ever published."""
    from ..reader_study.layout import find_study_folder

    study = find_study_folder(path)
    if study is not None:
        raise ResultsError(
            f"{path} is inside the reader-study folder {study}, which holds real images: a "
            "study folder is never published. Publish the run's own results.json; put a study's "
            "scores on a board with `medsynbench leaderboard RESULTS.json --human-scores "
            "scores.json --out DIR`"
        )


def _submission_id(document: dict[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:10]
    day = re.sub(r"[^0-9]", "", str(document["manifest"]["started"])[:10]) or "undated"
    return f"{day}-{digest}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "suite"


def publish(
    results: str | Path,
    root: str | Path = "leaderboard",
    register_suite: bool = False,
    check_only: bool = False,
) -> PublishReport:
    """Validate ``results`` as a submission, store it under ``root`` and regenerate the site."""
    root_dir = Path(root)
    _refuse_study_folder(results)
    loaded = read_results(results)
    document = loaded.document
    _check_provenance(document, loaded.path)
    registry = load_registry(root_dir)
    notes: list[str] = []
    if register_suite and not check_only:
        root_dir.mkdir(parents=True, exist_ok=True)
        notes.append(_register(document, registry, root_dir))
    _check_suite(document, registry, root_dir)
    mosaics = _mosaics(loaded)
    submission_id = _submission_id(document)
    if check_only:
        return PublishReport(submission_id, None, None, notes)
    folder = root_dir / "submissions" / _slug(document["suite"]["name"])
    stored = dict(document)
    stored["entries"] = []
    for raw in document["entries"]:
        entry = dict(raw)
        name = str(entry["name"])
        if name in mosaics:
            target = folder / submission_id / "samples" / f"{_slug(name)}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(mosaics[name], target)
            entry["samples"] = f"{submission_id}/samples/{target.name}"
        elif entry.get("samples"):
            entry["samples"] = None
            notes.append(f"not stored: mosaic of {name!r} shows real training images")
        stored["entries"].append(entry)
    stored["submission"] = {
        "id": submission_id,
        "published": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "file": loaded.path.name,
    }
    target_file = folder / f"{submission_id}.json"
    if target_file.exists():
        notes.append(f"replaced the earlier identical submission {submission_id}")
    folder.mkdir(parents=True, exist_ok=True)
    target_file.write_text(json.dumps(stored, indent=2) + "\n", encoding="utf-8")
    site = regenerate_site(root_dir)
    return PublishReport(submission_id, target_file, site, notes)


def regenerate_site(root: str | Path = "leaderboard") -> Path:
    """Rebuild ``root/site`` from every stored submission (one leaderboard per suite version)."""
    root_dir = Path(root)
    groups: dict[tuple[str, str], list[Loaded]] = {}
    for path in sorted((root_dir / "submissions").glob("*/*.json")):
        loaded = read_results(path, label=path.stem)
        suite = loaded.document["suite"]
        groups.setdefault((suite["name"], str(suite.get("version", ""))), []).append(loaded)
    site = root_dir / "site"
    links = []
    for (name, version), members in sorted(groups.items()):
        folder = _slug(f"{name}-{version}" if version else name)
        document = build_site(members, site / folder, duplicates="qualify")
        ranked = [e for e in document["entries"] if e.get("rank") is not None]
        best = html.escape(str(ranked[0]["name"])) if ranked else "—"
        links.append(
            f'<li><a href="{html.escape(folder)}/index.html">{html.escape(name)} '
            f"(version {html.escape(version)})</a> — {len(members)} submission(s), "
            f"{len(ranked)} ranked entries, first: {best}</li>"
        )
    site.mkdir(parents=True, exist_ok=True)
    current = {_slug(f"{name}-{version}" if version else name) for name, version in groups}
    for stale in site.iterdir():  # leaderboards whose submissions were all removed
        if stale.is_dir() and stale.name not in current and (stale / "leaderboard.json").exists():
            shutil.rmtree(stale)
    (site / "index.html").write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">'
        "<title>MedSynBench leaderboards</title></head><body style=\"font-family:sans-serif\">"
        "<h1>MedSynBench leaderboards</h1><p>Generators ranked by downstream utility.</p><ul>"
        + "".join(links) + "</ul></body></html>\n",
        encoding="utf-8",
    )
    return site
