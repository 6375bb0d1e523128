"""``feature-extraction``: are features learned from synthetic images alone useful on real data?

Protocol (Nan et al., pathology and X-ray): per seed,

1. pretrain the classifier on the synthetic images **only** (treated arm) — or on the real
   training split (baseline arm, ``synthetic=None``) — for ``epochs``; with the default
   ``budget = "steps"`` the synthetic arm takes the real arm's number of optimisation steps
   whatever its set size, and its images are those ``synthetic_ratio`` / ``count`` select
   (:mod:`.base`);
2. freeze everything but the last layer, re-initialise that layer and fine-tune it for
   ``finetune_epochs`` (default 20) on a stratified ``finetune_fraction`` (default 50%) of the
   real training split — the same images in both arms for a seed;
3. evaluate on the real ``eval_split`` (``"correct"``: the per-image outcomes there).

The frozen backbone runs in eval mode (BatchNorm statistics fixed) and without augmentation,
so step 2 trains a linear layer on features computed once — identical to fine-tuning the last
layer of the frozen network, and far cheaper. Δ > 0 means synthetic pretraining beats real.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from medsynbench.data import DataSplits, ImageSet
from medsynbench.kinds import RunContext
from medsynbench.params import Param, in_range, positive, positive_int

from .base import ClassifierTask
from .training import (
    TrainConfig,
    classification_scores,
    correct_predictions,
    embed,
    seeded,
    to_device_tensor,
)
from .training import train_linear_head as fit_head

__all__ = ["FeatureExtraction", "stratified_fraction"]

_FRACTION = in_range(0, 1, low_open=True)


def stratified_fraction(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a random ``fraction`` of each class (at least one image per class)."""
    rng = np.random.default_rng([seed, 20_24])
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = max(1, round(fraction * members.size))
        chosen.append(rng.choice(members, size=k, replace=False))
    return np.sort(np.concatenate(chosen))


class FeatureExtraction(ClassifierTask):
    """Pretrain on synthetic only (baseline: real), freeze, fine-tune the last layer on real."""

    name: ClassVar[str] = "feature-extraction"
    version: ClassVar[str] = "2.1.0"
    description: ClassVar[str] = (
        "Pretrain on synthetic images only (baseline: on real), freeze, fine-tune the last layer "
        "on 50% of the real training split, score on held-out real data"
    )
    primary: ClassVar[str] = "accuracy"
    parameters: ClassVar[dict[str, Param]] = {
        **ClassifierTask.parameters,
        "finetune_fraction": Param(
            0.5, float, "stratified fraction of the real training split used to fine-tune",
            check=_FRACTION,
        ),
        "finetune_epochs": Param(20, int, "epochs of last-layer fine-tuning", check=positive_int),
        "finetune_lr": Param(1e-2, float, "Adam learning rate of the fine-tuning", check=positive),
    }
    scores: ClassVar[dict[str, str]] = {
        **ClassifierTask.scores,
        "pretrain_images": "images the backbone was pretrained on",
        "finetune_images": "real images the last layer was fine-tuned on",
        "final_train_loss": "mean cross-entropy of the last pretraining pass",
    }

    def run_arm(
        self, data: DataSplits, synthetic: ImageSet | None, seed: int, ctx: RunContext
    ) -> dict[str, Any]:
        """Pretrain on synthetic (or real), then fine-tune the head on real and score."""
        evaluation = self.eval_split(data)
        pretrain = data.train if synthetic is None else self.select_synthetic(data, synthetic)
        arm = "pretrained on real" if synthetic is None else "pretrained on synthetic"
        model, facts, cfg = self.train_on(data, pretrain, seed, ctx, f"{arm}, seed {seed}")

        subset = data.train.subset(
            stratified_fraction(data.train.labels, float(self.params["finetune_fraction"]), seed)
        )
        head_cfg = TrainConfig(
            epochs=int(self.params["finetune_epochs"]),
            batch_size=cfg.batch_size,
            lr=float(self.params["finetune_lr"]),
            weight_decay=cfg.weight_decay,
            device=cfg.device,
            amp=cfg.amp,
            label=f"{cfg.label} (fine-tune)",
        )
        train_features = embed(model, to_device_tensor(subset.images, cfg.device), cfg)
        test_features = embed(model, to_device_tensor(evaluation.images, cfg.device), cfg)
        with seeded(seed) as order:
            head = fit_head(train_features, subset.labels, data.n_classes, head_cfg, order)
        with torch.no_grad():
            logits = head(torch.from_numpy(test_features)).softmax(dim=1).numpy()
        scores = classification_scores(evaluation.labels, logits, data.n_classes)
        facts = self.describe(facts, pretrain_images=len(pretrain), finetune_images=len(subset))
        return {**scores, **facts, "correct": correct_predictions(evaluation.labels, logits)}
