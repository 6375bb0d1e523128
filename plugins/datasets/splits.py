"""Split helpers shared by every dataset: stratified, group-aware, and checked for leakage.

Groups are whatever makes images near-copies of each other or of one person: a patient, a
slide, a CT volume, an LC25000 source tile. A group-aware split keeps every group on exactly
one side, so no near-duplicate leaks between train and test (or into real-vs-real metrics).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from medsynbench import ImageSet, Param
from medsynbench.errors import DataError

__all__ = [
    "SPLIT_PARAMETERS",
    "assert_groups_disjoint",
    "split_indices",
    "split_set",
]


def _fraction(value: float) -> str | None:
    return None if 0.0 <= value < 1.0 else f"must be in [0, 1), got {value}"


SPLIT_PARAMETERS: dict[str, Param] = {
    "val_fraction": Param(0.1, float, "fraction of images for the val split", check=_fraction),
    "test_fraction": Param(0.2, float, "fraction of images for the test split", check=_fraction),
    "split_seed": Param(0, int, "seed of the random split (fixed: splits are reproducible)"),
    "group_split": Param(
        True, bool, "keep each group (patient, slide, source tile) on one side of the split"
    ),
}


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
