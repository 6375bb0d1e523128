"""The training loop's budget (steps vs passes), its batches and the per-image outcomes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from medsynbench.errors import TaskError
from medsynbench.plugins.tasks.classifiers import build_classifier
from medsynbench.plugins.tasks.training import (
    TrainConfig,
    batch_schedule,
    batches_per_pass,
    classification_scores,
    correct_predictions,
    seeded,
    train_classifier,
)

from .conftest import blobs


@pytest.mark.parametrize(
    ("n", "batch_size", "expected"),
    [
        (48, 16, 3),  # 16 + 16 + 16
        (34, 16, 3),  # 16 + 16 + 2
        (33, 16, 2),  # 16 + 16, the single remaining image is dropped
        (17, 16, 1),
        (1, 16, 1),  # a one-image set still trains (nothing else to do)
        (5, 1, 5),  # batch_size = 1 was asked for: single-image steps are kept
        (0, 16, 0),
    ],
)
def test_batches_per_pass(n: int, batch_size: int, expected: int) -> None:
    assert batches_per_pass(n, batch_size) == expected


def test_batch_schedule_reshuffles_after_each_pass() -> None:
    # 5 images, batches of 2: two batches per pass (the fifth image is the dropped remainder),
    # so a budget of 5 steps is passes 0, 0, 1, 1, 2, each a fresh permutation
    batches = list(batch_schedule(5, 2, 5, torch.Generator().manual_seed(0)))
    assert [(p, s) for p, s, _ in batches] == [(0, 0), (0, 1), (1, 2), (1, 3), (2, 4)]
    assert all(index.numel() == 2 for _, _, index in batches)
    reference = torch.Generator().manual_seed(0)
    perms = [torch.randperm(5, generator=reference) for _ in range(3)]
    expected = [perms[0][:2], perms[0][2:4], perms[1][:2], perms[1][2:4], perms[2][:2]]
    for (_, _, index), want in zip(batches, expected, strict=True):
        assert torch.equal(index, want)
    assert len(set(torch.cat([b[2] for b in batches[:2]]).tolist())) == 4  # no repeats in a pass


def test_train_classifier_takes_the_step_budget() -> None:
    images = blobs(17, 2, 16)  # 34 images: 3 batches of 16, 16, 2 per pass
    x = torch.from_numpy(images.images)
    y = torch.from_numpy(np.asarray(images.labels))
    by_epochs = TrainConfig(epochs=2, batch_size=16, lr=0.01)
    by_steps = TrainConfig(epochs=2, batch_size=16, lr=0.01, steps=7)
    for cfg, expected in ((by_epochs, 6.0), (by_steps, 7.0)):
        with seeded(0) as order:
            model, _ = build_classifier("small-cnn", 1, 2)
            facts = train_classifier(model, x, y, cfg, order)
        assert facts["optimisation_steps"] == expected


def test_a_zero_step_budget_is_refused() -> None:
    images = blobs(4, 2, 16)
    with seeded(0) as order, pytest.raises(TaskError, match="0 optimisation steps"):
        model, _ = build_classifier("small-cnn", 1, 2)
        train_classifier(
            model, torch.from_numpy(images.images), torch.from_numpy(images.labels),
            TrainConfig(epochs=1, batch_size=4, lr=0.01, steps=0), order,
        )


def test_correct_predictions_are_the_accuracy_per_image() -> None:
    y_true = np.array([0, 1, 1, 0])
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])  # argmax 0, 1, 0, 0
    assert correct_predictions(y_true, scores) == [1, 1, 0, 1]
    assert classification_scores(y_true, scores, 2)["accuracy"] == 0.75


def test_recalibration_sees_the_variance_between_classes_of_a_class_sorted_set():
    """Batches of one class each would average within-class variances only (the LC25000
    control artefact, recalibrate_batchnorm's docstring): the statistics must be those of the
    whole set, whatever order it is stored in."""
    import torch
    from medsynbench.plugins.tasks.classifiers import build_classifier
    from medsynbench.plugins.tasks.training import TrainConfig, recalibrate_batchnorm

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    dark = rng.normal(40, 8, (128, 1, 16, 16))
    bright = rng.normal(200, 8, (128, 1, 16, 16))
    images = torch.from_numpy(np.clip(np.concatenate([dark, bright]), 0, 255).astype(np.uint8))
    model, _ = build_classifier("small-cnn", 1, 2)
    first = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    seen: list[torch.Tensor] = []
    hook = first.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    recalibrate_batchnorm(model, images, TrainConfig(epochs=1, batch_size=32, lr=1e-3))
    hook.remove()
    everything = torch.cat(seen)  # the first BN's inputs over the whole set (it runs first)
    assert len(everything) == len(images)
    whole_var = everything.var(dim=(0, 2, 3))
    assert torch.allclose(first.running_var, whole_var, rtol=0.2), (first.running_var, whole_var)
    assert torch.allclose(first.running_mean, everything.mean(dim=(0, 2, 3)), rtol=0.05, atol=1e-3)


def test_read_only_images_become_tensors_without_a_warning_or_a_copy():
    """Memory-mapped splits are read-only: no "not writable" warning (on a cluster it fired once
    per worker and became a flag of whichever unit hit it first), and no copy on the CPU."""
    import warnings

    import torch
    from medsynbench.plugins.tasks.training import to_device_tensor

    images = np.zeros((4, 1, 8, 8), dtype=np.uint8)
    images.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensor = to_device_tensor(images, torch.device("cpu"))
    assert tensor.data_ptr() == images.ctypes.data
