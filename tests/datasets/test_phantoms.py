"""phantom-pathology and phantom-ct: shapes, determinism, groups, learnable-but-not-trivial."""

from __future__ import annotations

import numpy as np
import pytest
from medsynbench import RunContext
from medsynbench.errors import DataError, ParameterError
from medsynbench.plugins.datasets.ct import volume_to_montages, window_hu
from medsynbench.plugins.datasets.phantom_ct import PhantomCT
from medsynbench.plugins.datasets.phantom_pathology import CLASS_NAMES, PhantomPathology
from medsynbench.plugins.datasets.splits import assert_groups_disjoint
from sklearn.linear_model import LogisticRegression


def test_pathology_shapes_colour_and_determinism(ctx: RunContext) -> None:
    params = {"n_train": 2, "n_val": 0, "n_test": 1, "resolution": 32, "seed": 4}
    data = PhantomPathology(**params).load(ctx)
    assert data.class_names == CLASS_NAMES and data.modality == "pathology"
    assert data.train.images.shape == (12, 3, 32, 32)
    assert data.train.counts(6).tolist() == [2] * 6
    again = PhantomPathology(**params).load(ctx)
    np.testing.assert_array_equal(data.train.images, again.train.images)
    # H&E: green is absorbed most (eosin and haematoxylin both absorb it), so pink/purple.
    means = data.train.images.reshape(12, 3, -1).mean(axis=2)
    assert np.all(means[:, 1] < means[:, 0])
    # Fat is mostly empty (bright); inflammatory is dense with dark nuclei.
    fat, inflammatory = data.train.labels == 4, data.train.labels == 0
    assert means[fat, 1].mean() > means[inflammatory, 1].mean() + 20


def test_pathology_classes_learnable_but_not_trivial(ctx: RunContext) -> None:
    data = PhantomPathology(n_train=40, n_val=0, n_test=25, resolution=32, seed=1).load(ctx)

    def features(images: np.ndarray) -> np.ndarray:
        n = len(images)
        return images.astype(np.float32).reshape(n, 3, 4, 8, 4, 8).mean((3, 5)).reshape(n, -1)

    clf = LogisticRegression(max_iter=4000)
    clf.fit(features(data.train.images) / 255, data.train.labels)
    accuracy = clf.score(features(data.test.images) / 255, data.test.labels)
    assert 1 / 6 + 0.25 < accuracy < 0.99, accuracy


def test_ct_montages_follow_the_study_protocol(ctx: RunContext) -> None:
    data = PhantomCT(resolution=32, n_train=2, n_val=1, n_test=1).load(ctx)
    assert data.train.images.shape == (2 * 2 * 20, 1, 32, 32)  # 2 volumes/class × 20 montages
    assert data.class_names == ("normal", "lesions") and data.modality == "ct"
    groups = data.train.groups
    assert len(np.unique(groups)) == 4
    assert all((groups == g).sum() == 20 for g in np.unique(groups))
    assert_groups_disjoint(data.splits)


def test_volume_to_montages_tiles_four_slices() -> None:
    volume = np.repeat(np.arange(80, dtype=np.uint8)[:, None, None], 8, axis=1).repeat(8, axis=2)
    montages = volume_to_montages(volume, side=16, n_montages=20, per_montage=4)
    assert montages.shape == (20, 1, 16, 16)
    # Montage 0 holds slices 0, 1 (top row) and 2, 3 (bottom row); montage 19 slices 76..79.
    assert montages[0, 0, 0, 0] == 0 and montages[0, 0, 0, 8] == 1
    assert montages[0, 0, 8, 0] == 2 and montages[0, 0, 8, 8] == 3
    assert montages[19, 0, 8, 8] == 79
    with pytest.raises(DataError, match="10 slices"):  # fewer slices: refused by default
        volume_to_montages(volume[:10], side=16)
    short = volume_to_montages(volume[:10], side=16, short_volumes="repeat")  # asked: repeated
    assert short.shape == (20, 1, 16, 16) and short[-1, 0, 8, 8] == 9


def test_hu_window_maps_the_window_not_the_range() -> None:
    hu = np.array([-1000.0, -160.0, 40.0, 240.0, 3000.0])
    assert window_hu(hu, 40.0, 400.0).tolist() == [0, 0, 128, 255, 255]


def test_ct_lesions_learnable_but_not_trivial(ctx: RunContext) -> None:
    data = PhantomCT(resolution=32, n_train=10, n_val=0, n_test=6, n_montages=10).load(ctx)

    def histogram(images: np.ndarray) -> np.ndarray:
        counts = [np.histogram(im, bins=32, range=(0, 256))[0] for im in images]
        return np.log1p(np.asarray(counts, dtype=np.float64))

    clf = LogisticRegression(max_iter=5000).fit(histogram(data.train.images), data.train.labels)
    accuracy = clf.score(histogram(data.test.images), data.test.labels)
    assert 0.62 < accuracy < 0.99, accuracy


@pytest.mark.parametrize(
    ("cls", "params"),
    [(PhantomPathology, {"mix": 0.9}), (PhantomPathology, {"resolution": 4}),
     (PhantomCT, {"resolution": 33}), (PhantomCT, {"n_train": 0}), (PhantomCT, {"window": "x"})],
)
def test_bad_phantom_parameters(cls: type, params: dict) -> None:
    with pytest.raises(ParameterError, match=next(iter(params))):
        cls(**params)
