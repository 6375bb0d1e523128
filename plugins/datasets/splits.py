"""Split helpers shared by every dataset: stratified, group-aware, and checked for leakage.

Groups are whatever makes images near-copies of each other or of one person: a patient, a
slide, a CT volume, an LC25000 source tile. A group-aware split keeps every group on exactly
one side, so no near-duplicate leaks between train and test (or into real-vs-real metrics).

Duplicate images (exact or near copies found by :mod:`medsynbench.hygiene`, whatever their
names) follow the ``duplicates`` parameter, the user's choice, safe by default:

* ``group`` (default): before a random split every duplicate cluster joins one group (merged
  with the groups its images already had), so copies never straddle splits. Given split
  folders cannot be regrouped: held-out copies (val/test) of an image in an earlier split
  (train first) are dropped from the held-out side, counted and named in a warning.
* ``drop``: one image per cluster is kept everywhere (the first: train first, then file order).
* ``report``: nothing changes (e.g. to reproduce a published split), with a loud warning.

Cross-split duplicates that remain are always warned about by name, and the report goes into
the dataset's ``info["duplicates"]``.

Group ids come from ``group_by`` (:data:`GROUP_PARAMETERS`): a manifest column, a DICOM tag or
a file-name pattern (:func:`manifest_groups`, :func:`dicom_groups`, :func:`regex_groups`).
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from medsynbench import ImageSet, Param
from medsynbench.errors import DataError
from medsynbench.hygiene import (
    POLICIES,
    DuplicateReport,
    Fingerprints,
    audit,
    clusters_of,
    duplicate_clusters,
    fingerprint,
)
from medsynbench.params import in_range

from .dicom import read_header

__all__ = [
    "DUPLICATES",
    "GROUP_PARAMETERS",
    "SPLIT_PARAMETERS",
    "assert_groups_disjoint",
    "check_regex",
    "dedupe_given",
    "dicom_groups",
    "group_duplicates",
    "manifest_groups",
    "regex_groups",
    "report_duplicates",
    "split_indices",
    "split_set",
]

_FRACTION = in_range(0, 1, high_open=True)


SPLIT_PARAMETERS: dict[str, Param] = {
    "val_fraction": Param(0.1, float, "fraction of images for the val split", check=_FRACTION),
    "test_fraction": Param(0.2, float, "fraction of images for the test split", check=_FRACTION),
    "split_seed": Param(0, int, "seed of the random split (fixed: splits are reproducible)"),
    "group_split": Param(
        True, bool, "keep each group (patient, slide, source tile) on one side of the split"
    ),
}
DUPLICATES = Param(
    "group", str, "exact/near-duplicate images: group (copies stay on one side; held-out "
    "copies of train images in given split folders are dropped), drop (keep one per "
    "cluster), report (change nothing, warn)", choices=POLICIES,
)
SPLIT_PARAMETERS["duplicates"] = DUPLICATES


def check_regex(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        compiled = re.compile(value)
    except re.error as exc:
        return f"not a valid regular expression: {exc}"
    return None if compiled.groups >= 1 else "needs one capture group: the group id"


GROUP_SOURCES = ("manifest", "dicom", "regex")


def _group_by(value: str | None) -> str | None:
    if value is None:
        return None
    kind, sep, what = value.partition(":")
    if not sep or kind not in GROUP_SOURCES or not what:
        return ("expected manifest:COLUMN, dicom:KEYWORD (e.g. dicom:PatientID) or "
                f"regex:PATTERN, got {value!r}")
    return check_regex(what) if kind == "regex" else None


GROUP_PARAMETERS: dict[str, Param] = {
    "group_by": Param(None, str, "group ids from manifest:COLUMN, dicom:KEYWORD (e.g. "
                      "dicom:PatientID) or regex:PATTERN on file names (None: the dataset's "
                      "own rule)", nullable=True, check=_group_by),
    "manifest": Param(None, str, "CSV with a file column (relative to root, or file names) "
                      "for group_by = manifest:COLUMN (None: <root>/MANIFEST.csv)",
                      nullable=True),
}


def _listing(items: Sequence[str], limit: int = 10) -> str:
    more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
    return "".join(f"\n  {item}" for item in items[:limit]) + more


def manifest_groups(
    manifest: Path, root: Path, column: str, files: Sequence[Path], what: str
) -> dict[Path, str]:
    """Group of each of ``files`` from the manifest's ``column`` (files it lacks: absent).

    The ``file`` column holds paths relative to ``root`` or bare file names. One DataError
    (prefixed ``what``) for a missing manifest, a missing ``file`` or group column (naming the
    columns it has), or rows naming files that do not exist (listing them).
    """
    if not manifest.is_file():
        raise DataError(f"{what}: group_by = manifest:{column} but there is no manifest at "
                        f"{manifest}; set manifest = \"<path to the CSV>\"")
    with manifest.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = list(reader.fieldnames or [])
        lacking = [c for c in ("file", column) if c not in columns]
        if lacking:
            raise DataError(
                f"{manifest} lacks the column(s) {', '.join(lacking)} needed for group_by = "
                f"manifest:{column}; it has {', '.join(columns) or 'no columns'}"
            )
        rows = [(row["file"], row[column]) for row in reader]
    by_path = {f.resolve(): f for f in files}
    by_name: dict[str, list[Path]] = {}
    for f in files:
        by_name.setdefault(f.name, []).append(f)
    groups: dict[Path, str] = {}
    missing = []
    for name, group in rows:
        if "/" in name or "\\" in name:
            target = (root / name).resolve()
            if target in by_path:
                groups[by_path[target]] = group
            elif not target.exists():
                missing.append(name)
        elif name in by_name:
            for f in by_name[name]:
                groups[f] = group
        elif not (root / name).exists():
            missing.append(name)
    if missing:
        raise DataError(
            f"{manifest} names {len(missing)} file(s) that do not exist under {root}:"
            f"{_listing(missing)}\nFix the manifest's file column (paths relative to the "
            "root, or file names) or point root at the folder it describes"
        )
    return groups


def dicom_groups(
    keyword: str, files: Sequence[Path], name_of: Callable[[Path], str], what: str
) -> list[str]:
    """The DICOM tag ``keyword`` of every file, read without pixels; one DataError (prefixed
    ``what``) listing the files that are not DICOM or lack it (pydicom missing: the extra)."""
    groups, unreadable = [], []
    for f in files:
        try:
            value = read_header(f, [keyword]).get(keyword)
        except ValueError as exc:
            unreadable.append(f"{name_of(f)}: {exc}")
            continue
        if value in (None, "", []):
            unreadable.append(f"{name_of(f)}: no {keyword} tag")
        groups.append(str(value))
    if unreadable:
        raise DataError(
            f"{what}: group_by = dicom:{keyword} needs the tag in every file; "
            f"{len(unreadable)} of {len(files)} lack it:{_listing(unreadable)}\nUse another "
            "group_by (manifest:COLUMN, regex:PATTERN) or remove those files"
        )
    return groups


def regex_groups(pattern: str, files: Sequence[Path]) -> list[str]:
    """Capture group 1 of ``pattern`` searched in each file stem (no match: the stem)."""
    matches = [re.search(pattern, f.stem) for f in files]
    return [m.group(1) if m else f.stem for m, f in zip(matches, files, strict=True)]


def split_indices(
    labels: np.ndarray,
    fractions: Mapping[str, float],
    seed: int,
    groups: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Indices per split name, stratified by class and (with ``groups``) group-disjoint.

    ``fractions`` maps split names to fractions summing to at most 1; the first split gets the
    remainder. Each unit (an image, or a whole group assigned by its majority class) goes to
    the split whose share of that class it falls into after a seeded shuffle, so class
    proportions match the requested fractions up to one unit per class and split.
    """
    names = list(fractions)
    shares = np.array([fractions[n] for n in names], dtype=np.float64)
    if np.any(shares < 0) or shares.sum() > 1.0 + 1e-9:
        raise DataError(f"split fractions must be >= 0 and sum to at most 1, got {dict(fractions)}")
    shares[0] += 1.0 - shares.sum()
    bounds = np.cumsum(shares)
    labels = np.asarray(labels)
    unit_of = np.arange(len(labels)) if groups is None else np.unique(
        np.asarray(groups), return_inverse=True
    )[1].reshape(-1)
    n_units = int(unit_of.max()) + 1 if len(unit_of) else 0
    unit_size = np.bincount(unit_of, minlength=n_units)
    # Majority class of each unit (ties: the smallest label).
    votes = np.zeros((n_units, int(labels.max()) + 1 if len(labels) else 1), dtype=np.int64)
    np.add.at(votes, (unit_of, labels), 1)
    unit_class = votes.argmax(axis=1)
    rng = np.random.default_rng(seed)
    unit_split = np.zeros(n_units, dtype=np.int64)
    for c in np.unique(unit_class):
        units = np.flatnonzero(unit_class == c)
        units = units[rng.permutation(len(units))]
        sizes = unit_size[units]
        midpoints = (np.cumsum(sizes) - sizes / 2.0) / sizes.sum()
        unit_split[units] = np.minimum(np.searchsorted(bounds, midpoints), len(names) - 1)
    image_split = unit_split[unit_of]
    return {name: np.flatnonzero(image_split == k) for k, name in enumerate(names)}


def split_set(
    data: ImageSet,
    fractions: Mapping[str, float],
    seed: int,
    use_groups: bool = True,
) -> dict[str, ImageSet]:
    """Split an :class:`ImageSet` with :func:`split_indices` (group-aware when it has groups)."""
    groups = np.asarray(data.groups) if (use_groups and data.groups is not None) else None
    index = split_indices(data.labels, fractions, seed, groups)
    return {name: data.subset(idx) for name, idx in index.items() if len(idx) or name != "val"}


def assert_groups_disjoint(splits: Mapping[str, ImageSet]) -> None:
    """Raise DataError when one group id appears in more than one split."""
    seen: dict[object, str] = {}
    for name, split in splits.items():
        if split.groups is None:
            continue
        for group in np.unique(np.asarray(split.groups)):
            key = group.item() if hasattr(group, "item") else group
            if key in seen and seen[key] != name:
                raise DataError(
                    f"group {key!r} appears in splits {seen[key]!r} and {name!r}: near-copies "
                    "would leak across the split; use a group-aware split"
                )
            seen[key] = name


# --- duplicates --------------------------------------------------------------------------------
def _name_list(data: ImageSet, split: str) -> list[str]:
    if data.names is not None:
        return [str(n) for n in data.names]
    return [f"{split}[{i}]" for i in range(len(data))]


def _examples(names: Sequence[str], limit: int = 5) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def group_duplicates(
    data: ImageSet, prints: Fingerprints, policy: str, use_groups: bool = True
) -> tuple[ImageSet, Fingerprints, list[str]]:
    """Before a random split: ``group`` merges each duplicate cluster into one group (with the
    groups its images had, when ``use_groups``), ``drop`` keeps the first image of each
    cluster; returns the set, its fingerprints and the names dropped."""
    clusters = duplicate_clusters(prints) if policy != "report" else []
    if not clusters:
        return data, prints, []
    if policy == "drop":
        dropped = np.concatenate([c[1:] for c in clusters])
        keep = np.setdiff1d(np.arange(len(data)), dropped)
        names = _name_list(data, "all")
        return data.subset(keep), prints.subset(keep), [names[i] for i in dropped.tolist()]
    base = (np.asarray(data.groups).astype(str) if use_groups and data.groups is not None
            else np.asarray([f"image:{i}" for i in range(len(data))]))
    _, same = np.unique(base, return_inverse=True)
    order = np.argsort(same, kind="stable")
    linked = np.flatnonzero(same[order][1:] == same[order][:-1])
    pairs_i = [order[linked]] + [c[:-1] for c in clusters]
    pairs_j = [order[linked + 1]] + [c[1:] for c in clusters]
    merged = base.astype(object)
    for k, members in enumerate(clusters_of(len(data), np.concatenate(pairs_i),
                                            np.concatenate(pairs_j))):
        originals = sorted(set(base[members].tolist()))
        if len(originals) > 1:
            merged[members] = f"dup{k}:{originals[0]}"
    groups = np.asarray(merged.tolist(), dtype=str)
    return ImageSet(data.images, data.labels, groups, data.names), prints, []


def dedupe_given(
    sets: Mapping[str, ImageSet], prints: Mapping[str, Fingerprints], policy: str
) -> tuple[dict[str, ImageSet], dict[str, Fingerprints], dict[str, list[str]]]:
    """Given splits (train first): ``group`` drops held-out copies of images in an earlier
    split, ``drop`` keeps one image per cluster everywhere; returns sets, fingerprints and the
    names dropped per split."""
    order = ["train", *[s for s in sets if s != "train"]]
    if policy == "report" or not order:
        return dict(sets), dict(prints), {}
    offsets = np.cumsum([0] + [len(sets[s]) for s in order])
    every = Fingerprints.concat([prints[s] for s in order])
    drop = np.zeros(len(every), dtype=bool)
    for members in duplicate_clusters(every):
        split_of = np.searchsorted(offsets, members, side="right") - 1
        if policy == "drop":
            drop[members[1:]] = True
        else:
            drop[members[split_of > split_of.min()]] = True
    out_sets, out_prints, removed = {}, {}, {}
    for k, split in enumerate(order):
        local = drop[offsets[k]:offsets[k + 1]]
        keep = np.flatnonzero(~local)
        out_sets[split] = sets[split].subset(keep) if local.any() else sets[split]
        out_prints[split] = prints[split].subset(keep)
        if local.any():
            names = _name_list(sets[split], split)
            removed[split] = [names[i] for i in np.flatnonzero(local).tolist()]
    return {s: out_sets[s] for s in sets}, {s: out_prints[s] for s in sets}, removed


def report_duplicates(
    sets: Mapping[str, ImageSet],
    policy: str,
    removed: Mapping[str, Sequence[str]],
    log: Callable[[str], None],
    what: str,
    prints: Mapping[str, Fingerprints] | None = None,
) -> DuplicateReport:
    """Audit the final splits, warn about what the policy dropped and what still leaks."""
    prints = prints or {s: fingerprint(np.asarray(d.images)) for s, d in sets.items()}
    report = audit(sets, policy=policy, removed=removed, fingerprints=prints)
    messages = []
    for split, names in removed.items():
        reason = ("copies of images in another split" if policy == "group"
                  else "duplicates of a kept image")
        where = "image(s) before the split" if split == "all" else f"{split} image(s)"
        messages.append(f"{what}: duplicates = {policy!r} dropped {len(names)} {where}, "
                        f"{reason}: {_examples(names)}")
    leaks = report.cross_split
    if leaks:
        fix = ("" if policy != "report" else "; set duplicates = \"group\" (default) to keep "
               "copies on one side, or \"drop\" to keep one per cluster")
        messages.append(
            f"{what}: {len(leaks)} cluster(s) of duplicate images straddle splits "
            f"({report.totals()['exact_across']} exact, {report.totals()['near_across']} near "
            f"pairs across splits){fix}:\n{report.describe_leaks()}"
        )
    within = report.totals()["exact_within"] + report.totals()["near_within"]
    if within:
        log(f"{what}: {within} duplicate pair(s) within splits (not a leak): "
            + ", ".join(f"{s} {v['exact']} exact / {v['near']} near"
                        for s, v in report.within.items() if v["exact"] or v["near"]))
    for message in messages:
        warnings.warn(message, UserWarning, stacklevel=3)
        log(message)
    return report
