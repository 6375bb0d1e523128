"""phantom-xray: determinism, shapes, learnable-but-not-trivial classes, marker bias splits."""

from __future__ import annotations

import numpy as np
import pytest
from medsynbench import RunContext
from medsynbench.errors import ParameterError
from medsynbench.plugins.datasets.bias import crop_border, marker_box
from medsynbench.plugins.datasets.phantom_xray import PhantomXray
from sklearn.linear_model import LogisticRegression


def _features(images: np.ndarray, cell: int = 4) -> np.ndarray:
    n, _, h, w = images.shape
    x = images[:, 0].astype(np.float32).reshape(n, h // cell, cell, w // cell, cell)
    return x.mean(axis=(2, 4)).reshape(n, -1) / 255.0


def _lr_accuracy(train, test) -> float:
    clf = LogisticRegression(max_iter=3000).fit(_features(train.images), train.labels)
    return float(clf.score(_features(test.images), test.labels))


def test_shapes_counts_and_determinism(ctx: RunContext) -> None:
    data = PhantomXray(classes=3, resolution=40, n_train=5, n_val=2, n_test=3, seed=7).load(ctx)
    assert set(data.splits) == {"train", "val", "test"}
    assert data.class_names == ("normal", "pneumonia", "effusion")
    assert data.modality == "xray"
    assert data.train.images.shape == (15, 1, 40, 40)
    assert data.train.images.dtype == np.uint8
    assert data.train.counts(3).tolist() == [5, 5, 5]
    assert data["val"].counts(3).tolist() == [2, 2, 2]
    again = PhantomXray(classes=3, resolution=40, n_train=5, n_val=2, n_test=3, seed=7).load(ctx)
    np.testing.assert_array_equal(data.train.images, again.train.images)
    other = PhantomXray(classes=3, resolution=40, n_train=5, n_val=2, n_test=3, seed=8).load(ctx)
    assert not np.array_equal(data.train.images, other.train.images)
    # Train and test are different draws, and images use most of the intensity range.
    assert not np.array_equal(data.train.images[:9], data.test.images)
    assert data.train.images.max() > 150 and data.train.images.min() < 40


def test_no_val_split_when_zero(ctx: RunContext) -> None:
    data = PhantomXray(n_train=2, n_val=0, n_test=2, resolution=16).load(ctx)
    assert set(data.splits) == {"train", "test"}


@pytest.mark.parametrize("classes", [2, 3])
def test_classes_learnable_but_not_trivial(ctx: RunContext, classes: int) -> None:
    data = PhantomXray(classes=classes, n_train=150, n_val=0, n_test=80, seed=1).load(ctx)
    accuracy = _lr_accuracy(data.train, data.test)
    chance = 1.0 / classes
    assert chance + 0.15 < accuracy < 0.99, accuracy


def test_contrast_controls_difficulty(ctx: RunContext) -> None:
    easy = PhantomXray(n_train=120, n_val=0, n_test=80, lesion_contrast=0.5).load(ctx)
    hard = PhantomXray(n_train=120, n_val=0, n_test=80, lesion_contrast=0.03).load(ctx)
    assert _lr_accuracy(easy.train, easy.test) > _lr_accuracy(hard.train, hard.test) + 0.1


def test_marker_splits_share_anatomy_and_move_the_marker(ctx: RunContext) -> None:
    data = PhantomXray(classes=2, n_train=4, n_val=0, n_test=6, marker_rate=1.0).load(ctx)
    assert {"test_swapped", "test_nomarker"} <= set(data.splits)
    test, swapped, clean = data.test, data["test_swapped"], data["test_nomarker"]
    np.testing.assert_array_equal(test.labels, swapped.labels)
    # Outside the corner boxes the three versions are identical.
    side = 64
    keep = np.ones((side, side), dtype=bool)
    for slot in ("top-left", "top-right"):
        top, left, h, w = marker_box(side, slot)
        keep[max(0, top - 1) : top + h + 1, max(0, left - 1) : left + w + 1] = False
    np.testing.assert_array_equal(test.images[:, 0][:, keep], clean.images[:, 0][:, keep])
    np.testing.assert_array_equal(swapped.images[:, 0][:, keep], clean.images[:, 0][:, keep])
    # Normal images are marked top-left in test, top-right when swapped; pneumonia the reverse.
    top, left, h, w = marker_box(side, "top-left")
    tl = (test.images[:, 0, top - 1 : top + h + 1, left - 1 : left + w + 1] == 250).sum((1, 2))
    tl_swapped = (
        swapped.images[:, 0, top - 1 : top + h + 1, left - 1 : left + w + 1] == 250
    ).sum((1, 2))
    assert np.all((tl > 10) == (test.labels == 0))
    assert np.all((tl_swapped > 10) == (test.labels == 1))
    assert not np.array_equal(test.images, clean.images)


def test_marker_shortcut_is_learned_and_broken_by_swap(ctx: RunContext) -> None:
    data = PhantomXray(
        n_train=100, n_val=0, n_test=60, marker_rate=1.0, lesion_contrast=0.02, seed=3
    ).load(ctx)
    clf = LogisticRegression(max_iter=3000).fit(_features(data.train.images, 2), data.train.labels)
    on_test = clf.score(_features(data.test.images, 2), data.test.labels)
    on_swapped = clf.score(_features(data["test_swapped"].images, 2), data.test.labels)
    assert on_test > 0.95 and on_swapped < 0.2, (on_test, on_swapped)
    # Cropping the border removes the marker: marked and unmarked become identical.
    np.testing.assert_array_equal(
        crop_border(data.test.images, 0.17), crop_border(data["test_nomarker"].images, 0.17)
    )


def test_marker_rate_and_presence_mode(ctx: RunContext) -> None:
    data = PhantomXray(
        n_train=200, n_val=0, n_test=20, marker_rate=0.3, marker_mode="presence"
    ).load(ctx)
    top, left, h, w = marker_box(64, "top-right")
    window = data.train.images[:, 0, top - 1 : top + h + 1, left - 1 : left + w + 1]
    marked = (window == 250).sum((1, 2)) > 10
    normal = data.train.labels == 0
    assert not marked[normal].any()
    assert 0.2 < marked[~normal].mean() < 0.4
    swapped = data["test_swapped"].images[:, 0, top - 1 : top + h + 1, left - 1 : left + w + 1]
    assert np.all(((swapped == 250).sum((1, 2)) > 10) == (data.test.labels == 0))


def test_no_marker_splits_without_markers(ctx: RunContext) -> None:
    data = PhantomXray(n_train=2, n_val=0, n_test=2, resolution=16).load(ctx)
    assert "test_swapped" not in data.splits


@pytest.mark.parametrize(
    "params",
    [{"classes": 4}, {"resolution": 8}, {"marker_rate": 1.5}, {"n_train": -1},
     {"marker_mode": "corner"}, {"lesion_contrast": "high"}],
)
def test_bad_parameters_are_named(params: dict) -> None:
    with pytest.raises(ParameterError, match=next(iter(params))):
        PhantomXray(**params)


@pytest.mark.filterwarnings("ignore:.*upsampled")
def test_bias_tools_on_real_xray_datasets(shared_data, ctx: RunContext) -> None:
    from medsynbench.plugins.datasets.medmnist import PneumoniaMNIST

    root = str(shared_data / "pneumoniamnist")
    marked = PneumoniaMNIST(root=root, resolution=64, marker_rate=0.5).load(ctx)
    assert {"test_swapped", "test_nomarker"} <= set(marked.splits)
    plain = PneumoniaMNIST(root=root, resolution=64).load(ctx)
    np.testing.assert_array_equal(marked["test_nomarker"].images, plain.test.images)
    cropped = PneumoniaMNIST(root=root, resolution=64, marker_rate=0.5, crop_border=0.17).load(ctx)
    np.testing.assert_array_equal(cropped.test.images, cropped["test_nomarker"].images)
    assert cropped.train.image_shape == (1, 64, 64)
