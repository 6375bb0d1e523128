"""``reader-study build``: a self-contained study folder from a finished run.

For each chosen entry the study shows N synthetic images (its sampled set) and N real images
(its reference split — the split it was fitted on — drawn without replacement across all
entries, so no real image is shown twice), both stratified by class: N is split evenly over the
chosen classes, the first classes listed taking one more when it does not divide. A few
attention pairs (a real image and uniform noise) are added. Every image is resized to the
display size (Lanczos) and written once as PNG under a name that is the hash of its bytes;
trial ids are salted hashes, and the page lists trials in id order, so nothing a reader's
browser loads says which image is real or which entry made it. That answer key is
``key/manifest.json`` (see :mod:`.layout`). The whole folder is written under a temporary
name and renamed into place when complete, so a failed build leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..cache import temp_name
from ..data import ImageSet
from ..errors import DataError, OutputError, ParameterError
from ..params import did_you_mean
from .layout import (
    KEY_DIR,
    MANIFEST,
    MARKER,
    PAGE_DIR,
    PROTOCOLS,
    answer_token,
)
from .source import RunImages, load_run
from .stats import DOWN, LADDER_MS, START_RUNG

__all__ = ["FIXATION_MS", "STATIC_FILES", "BuildReport", "StudyOptions", "build_study"]

#: Files of the study page, copied from this package's static/ folder.
STATIC_FILES = ("index.html", "study.js", "study.css")
#: Fixation screen before each image of a timed study (ms), unless asked otherwise.
FIXATION_MS = 500
_PRIVACY = (
    "This folder holds REAL images of the run's dataset. Keep it on the machine(s) used for the "
    "study; do not publish, upload or commit it (a .gitignore inside stops git from adding it, "
    "and `medsynbench leaderboard publish` refuses it). Only the scores written by "
    "`medsynbench reader-study score` may leave. medsynbench cannot check images for burned-in "
    "identifiers (names, dates, record numbers in the pixels): look at every image in page/images "
    "before a reader does."
)


@dataclass(frozen=True)
class StudyOptions:
    """What ``reader-study build`` is asked for (its command-line options)."""

    images: int = 10
    entries: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    display_size: int = 256
    protocol: str = "unlimited"
    seed: int = 0
    attention_pairs: int = 3
    fixation_ms: int = FIXATION_MS
    cache_dir: Path | None = None

    def check(self) -> None:
        """Raise ParameterError for a value no study can have."""
        if self.protocol not in PROTOCOLS:
            raise ParameterError(
                f"--protocol {self.protocol!r}{did_you_mean(self.protocol, list(PROTOCOLS))}; "
                f"choose one of {', '.join(PROTOCOLS)}"
            )
        if self.images < 1:
            raise ParameterError(f"--images {self.images}: show at least 1 image of each kind")
        if not 32 <= self.display_size <= 2048:
            raise ParameterError(f"--display-size {self.display_size}: choose 32 to 2048 px")
        if self.attention_pairs < 0:
            raise ParameterError(f"--attention-pairs {self.attention_pairs}: must be ≥ 0")
        if not 0 <= self.fixation_ms <= 5000:
            raise ParameterError(f"--fixation-ms {self.fixation_ms}: choose 0 to 5000 ms")


@dataclass
class BuildReport:
    """What :func:`build_study` wrote."""

    folder: Path
    study_id: str
    trials: int
    real_images: int
    notes: list[str] = field(default_factory=list)


def _per_class(total: int, classes: list[int]) -> dict[int, int]:
    base, extra = divmod(total, len(classes))
    return {c: base + (1 if i < extra else 0) for i, c in enumerate(classes)}


def _classes(run: RunImages, wanted: tuple[str, ...]) -> list[int]:
    names = list(run.data.class_names)
    if not wanted:
        return list(range(len(names)))
    chosen = []
    for name in dict.fromkeys(wanted):
        if name not in names:
            raise DataError(f"--classes {name!r}: the dataset has no such class"
                            f"{did_you_mean(name, names)} (classes: {', '.join(names)})")
        chosen.append(names.index(name))
    return chosen


def _png(image: np.ndarray, size: int) -> bytes:
    """One C×H×W uint8 image as PNG bytes at size×size (no metadata, deterministic)."""
    array = image[0] if image.shape[0] == 1 else np.transpose(image, (1, 2, 0))
    picture = Image.fromarray(np.ascontiguousarray(array))
    if picture.size != (size, size):
        picture = picture.resize((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _select(run: RunImages, options: StudyOptions) -> list[dict[str, Any]]:
    """Trials (before rendering): kind, entry, class, image array and where it came from."""
    rng = np.random.default_rng(options.seed)
    classes = _classes(run, options.classes)
    per_class = _per_class(options.images, classes)
    asked = f"(--images {options.images} over {len(classes)} class(es))"
    trials = _synthetic_trials(run, per_class, asked, rng)
    trials += _real_trials(run, per_class, asked, options.attention_pairs, rng)
    channels = run.data.image_shape[0]
    for _ in range(options.attention_pairs):
        noise = rng.integers(0, 256, size=(channels, options.display_size, options.display_size),
                             dtype=np.uint8)
        trials.append({"kind": "attention-noise", "entry": None, "class": None, "image": noise,
                       "source": {"noise": "uniform"}})
    return trials


def _synthetic_trials(run: RunImages, per_class: dict[int, int], asked: str,
                      rng: np.random.Generator) -> list[dict[str, Any]]:
    class_names = run.data.class_names
    trials = []
    for name, synthetic in run.synthetic.items():
        for c, need in per_class.items():
            pool = np.flatnonzero(synthetic.labels == c)
            if len(pool) < need:
                raise DataError(
                    f"entry {name!r} has {len(pool)} synthetic image(s) of class "
                    f"{class_names[c]!r}; the study asks for {need} {asked}: lower --images, or "
                    "give the entry a larger sample (its count) and re-run"
                )
            for index in np.sort(rng.choice(pool, size=need, replace=False)):
                trials.append({"kind": "synthetic", "entry": name, "class": class_names[c],
                               "image": synthetic.images[index],
                               "source": {"sample_unit": run.sample_keys[name],
                                          "index": int(index)}})
    return trials


def _real_trials(run: RunImages, per_class: dict[int, int], asked: str, attention: int,
                 rng: np.random.Generator) -> list[dict[str, Any]]:
    """Each entry's real images from its reference split — one draw without replacement per
    split and class for all entries on that split — and the attention pairs' real images."""
    class_names = run.data.class_names
    by_split: dict[str, list[str]] = {}
    for entry in run.results["entries"]:
        if entry["name"] in run.synthetic:
            split = str((entry.get("params") or {}).get("split") or "train")
            by_split.setdefault(split, []).append(str(entry["name"]))
    first = (next(iter(by_split)), next(iter(per_class)))  # where the attention images come from
    trials = []
    for split, names in by_split.items():
        if split not in run.data.splits:
            raise DataError(f"the run's prepared data has no split {split!r} (entries "
                            f"{', '.join(names)} were fitted on it)")
        real = run.data[split]
        for c, need in per_class.items():
            extra = attention if (split, c) == first else 0
            pool = np.flatnonzero(real.labels == c)
            total = need * len(names) + extra
            if len(pool) < total:
                raise DataError(
                    f"split {split!r} has {len(pool)} real image(s) of class {class_names[c]!r}; "
                    f"the study needs {total} ({need} for each of {len(names)} entr"
                    f"{'y' if len(names) == 1 else 'ies'} {asked}"
                    f"{f' + {extra} for attention checks' if extra else ''}, no image twice): "
                    "lower --images or choose fewer entries"
                )
            drawn = rng.choice(pool, size=total, replace=False)
            for k, name in enumerate(names):
                for index in np.sort(drawn[k * need:(k + 1) * need]):
                    trials.append(_real_trial("real", name, class_names[c], real, split, index))
            for index in np.sort(drawn[need * len(names):]):
                trials.append(_real_trial("attention-real", None, class_names[c], real, split,
                                          index))
    return trials


def _real_trial(kind: str, entry: str | None, cls: str, real: ImageSet, split: str,
                index: int) -> dict[str, Any]:
    source: dict[str, Any] = {"split": split, "index": int(index)}
    if real.names is not None:
        source["name"] = str(real.names[index])
    return {"kind": kind, "entry": entry, "class": cls, "image": real.images[index],
            "source": source}


def _target(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(
            f"{out} already exists and is not empty; a study folder is written once — choose "
            "another --out or remove that one"
        )


def build_study(run: str | Path, out: str | Path, options: StudyOptions) -> BuildReport:
    """Build the study folder ``out`` from the finished run in ``run`` (module docstring)."""
    options.check()
    target = Path(out)
    _target(target)
    images = load_run(run, list(options.entries) or None, options.cache_dir)
    trials = _select(images, options)
    results = images.results
    suite = results.get("suite") or {}
    secret = hashlib.sha256(json.dumps(
        ["medsynbench-study", options.seed, options.protocol, suite.get("hash"),
         list(images.synthetic), options.images, options.classes, options.display_size],
    ).encode()).hexdigest()
    files: dict[str, bytes] = {}
    for index, trial in enumerate(trials):
        data = _png(np.asarray(trial.pop("image")), options.display_size)
        trial["file"] = f"images/{hashlib.sha256(data).hexdigest()[:20]}.png"
        files[trial["file"]] = data
        trial["id"] = hashlib.sha256(f"{secret}:{index}".encode()).hexdigest()[:12]
    trials.sort(key=lambda t: t["id"])
    study_id = hashlib.sha256(json.dumps(
        [options.protocol, [(t["id"], t["file"], t["kind"], t["entry"]) for t in trials]]
    ).encode()).hexdigest()[:16]
    entries = list(images.synthetic)
    groups = {name: g for g, name in enumerate(
        sorted(entries, key=lambda n: hashlib.sha256(f"{secret}:{n}".encode()).hexdigest()))}
    timed = options.protocol == "timed"
    for trial in trials:
        trial["truth"] = "fake" if trial["kind"] in ("synthetic", "attention-noise") else "real"
        trial["group"] = groups[trial["entry"]] if timed and trial["entry"] is not None else None
    page = _page_data(study_id, options, trials, timed)
    copies = {e["name"] for e in results["entries"] if e.get("samples_real")}
    n_real = sum(t["truth"] == "real" or t["entry"] in copies for t in trials)
    manifest = {
        "kind": "medsynbench-reader-study-key", "schema_version": 1, "study_id": study_id,
        "protocol": options.protocol, "seed": options.seed,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "options": {"images": options.images, "classes": list(options.classes),
                    "display_size": options.display_size,
                    "attention_pairs": options.attention_pairs,
                    "fixation_ms": options.fixation_ms},
        "run": {"results": str(images.results_path.resolve()),
                "suite": {k: suite.get(k) for k in ("name", "version", "hash", "protocol_hash")},
                "dataset": (results.get("dataset") or {}).get("plugin")},
        "entries": entries,
        "staircase": page.get("timed"),
        "trials": trials,
    }
    marker = {"kind": "medsynbench-reader-study", "schema_version": 1, "study_id": study_id,
              "protocol": options.protocol, "trials": len(trials), "privacy": _PRIVACY}
    _write(target, files, page, manifest, marker)
    notes = [
        f"{target} holds {n_real} real image(s): keep it on the study machine; never publish "
        "or commit it (`leaderboard publish` refuses it); only the scores may leave",
        "medsynbench cannot check images for burned-in identifiers (names, dates, record "
        f"numbers in the pixels): look at every image in {target / PAGE_DIR / 'images'} first",
        f"readers open {target / PAGE_DIR / 'index.html'}; copy only {PAGE_DIR}/ to a reading "
        f"machine — {KEY_DIR}/ is the answer key",
    ]
    return BuildReport(target, study_id, len(trials), n_real, notes)


def _page_data(study_id: str, options: StudyOptions, trials: list[dict[str, Any]],
               timed: bool) -> dict[str, Any]:
    shown = []
    for trial in trials:
        item: dict[str, Any] = {"id": trial["id"], "src": trial["file"]}
        if timed:
            item["g"] = trial["group"]
            item["c"] = answer_token(study_id, trial["id"], trial["truth"])
        shown.append(item)
    page: dict[str, Any] = {
        "kind": "medsynbench-reader-study-page", "study_id": study_id,
        "protocol": options.protocol, "display_size": options.display_size, "trials": shown,
        "confidence": ["guessing", "fairly sure", "certain"],
        "attention_checks": options.attention_pairs > 0,  # whether to mention them, no more
    }
    if timed:
        page["timed"] = {"ladder_ms": list(LADDER_MS), "start_rung": START_RUNG, "down": DOWN,
                         "fixation_ms": options.fixation_ms, "attention_ms": LADDER_MS[0]}
    return page


def _write(target: Path, files: dict[str, bytes], page: dict[str, Any],
           manifest: dict[str, Any], marker: dict[str, Any]) -> None:
    """Write the folder under a temporary name and rename it into place when complete."""
    staging = temp_name(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        (staging / PAGE_DIR / "images").mkdir(parents=True)
        (staging / KEY_DIR).mkdir()
        for name, data in files.items():
            (staging / PAGE_DIR / name).write_bytes(data)
        static = resources.files("medsynbench.reader_study") / "static"
        for name in STATIC_FILES:
            (staging / PAGE_DIR / name).write_bytes((static / name).read_bytes())
        script = json.dumps(page, indent=1).replace("</", "<\\/")
        (staging / PAGE_DIR / "study-data.js").write_text(
            f"window.MEDSYNBENCH_STUDY = {script};\n", encoding="utf-8")
        marker_text = json.dumps(marker, indent=2) + "\n"
        (staging / MARKER).write_text(marker_text, encoding="utf-8")
        (staging / PAGE_DIR / MARKER).write_text(marker_text, encoding="utf-8")
        (staging / KEY_DIR / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n",
                                                  encoding="utf-8")
        (staging / "READ-ME-FIRST.txt").write_text(_PRIVACY + "\n", encoding="utf-8")
        (staging / ".gitignore").write_text("*\n", encoding="utf-8")
        if target.exists():
            target.rmdir()  # empty (checked before): the rename needs it gone
        os.replace(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(
            f"cannot write the study folder {target}: {exc.strerror or exc}; nothing was written "
            "— free space there or choose another --out"
        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
