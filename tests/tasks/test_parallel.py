"""Data-parallel classifier training (DDP) on the CPU with gloo and 2 processes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from medsynbench import RunContext
from medsynbench.plugins.tasks.augmentation import Augmentation
from medsynbench.plugins.tasks.classifiers import Classifier, InputSpec
from medsynbench.plugins.tasks.training import TrainConfig, seeded, train_classifier
from medsynbench.testing import make_toy_splits
from torch import nn


def _linear_classifier() -> Classifier:
    """No BatchNorm: data-parallel training must then match one process to float tolerance."""
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, 8), nn.ReLU())
    return Classifier(backbone, 8, 2, InputSpec(1, None, (0.5,), (0.5,)))


EPOCHS = 3


def _train(devices: tuple[torch.device, ...]) -> tuple[Classifier, dict[str, float], torch.Tensor]:
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 255, (50, 1, 16, 16), dtype=np.uint8))
    labels = torch.from_numpy((np.asarray(images.float().mean((1, 2, 3))) > 127).astype(np.int64))
    # 50 images, batches of 16: 16, 16, 16 and a final 2 (given whole to both ranks)
    cfg = TrainConfig(epochs=EPOCHS, batch_size=16, lr=1e-2, amp=False, devices=devices)
    with seeded(0) as order:
        model = _linear_classifier()
        facts = train_classifier(model, images, labels, cfg, order)
        after = torch.randperm(5, generator=order)  # the data order continues where it ended
    return model, facts, after


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_without_batchnorm():
    single, single_facts, single_next = _train(())
    cpu = torch.device("cpu")
    parallel, facts, parallel_next = _train((cpu, cpu))
    assert facts["world_size"] == 2.0
    assert facts["optimisation_steps"] == single_facts["optimisation_steps"] == 12.0
    for (name, a), (_, b) in zip(single.state_dict().items(), parallel.state_dict().items(),
                                 strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4), name
    assert facts["final_train_loss"] == pytest.approx(single_facts["final_train_loss"], rel=1e-4)
    assert torch.equal(single_next, parallel_next)


@pytest.mark.slow
def test_the_augmentation_task_trains_data_parallel_when_given_two_devices(tmp_path):
    data = make_toy_splits()
    task = Augmentation(classifier="small-cnn", epochs=2, batch_size=16)
    ctx = RunContext(device="cpu", workdir=tmp_path, devices=("cpu", "cpu"))
    scores = task.run_seed(data, None, 0, ctx)
    assert scores["world_size"] == 2.0 and scores["optimisation_steps"] > 0
    one = task.run_seed(data, None, 0, RunContext(device="cpu", workdir=tmp_path))
    assert "world_size" not in one
    assert abs(scores["accuracy"] - one["accuracy"]) <= 0.25  # per-rank BatchNorm: close, not equal
