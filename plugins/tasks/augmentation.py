"""``augmentation``: does adding an entry's synthetic images to the real training set help?

Protocol (Nan et al.; Xing et al.'s intra-task utility): for each seed train the classifier on
the real training split (baseline arm, ``synthetic=None``) and on real + synthetic (treated
arm), with the same seed ⇒ the same initialisation and data-order generator; evaluate both on
the real ``eval_split`` (default ``test``). The runner pairs the arms per seed and reports the
mean Δ in percentage points, a bootstrap CI, the exact Wilcoxon p and the Holm-adjusted p
(:mod:`medsynbench.stats`). With the default ``budget = "steps"`` both arms take the same
number of optimisation steps, so Δ is the data's effect, not that of longer training
(:mod:`.base`).

The other rows of the utility table are generator entries of the suite, so they go through
this same task: "real + classical augmentation" (the ``classical-augment`` generator) and
"real + more real" (``copy-real`` fitted on another real split, e.g. A2).
"""

from __future__ import annotations

from typing import Any, ClassVar

from medsynbench.data import DataSplits, ImageSet
from medsynbench.kinds import RunContext

from .base import ClassifierTask

__all__ = ["Augmentation"]


class Augmentation(ClassifierTask):
    """Train on real vs real + synthetic; score both on held-out real images."""

    name: ClassVar[str] = "augmentation"
    version: ClassVar[str] = "2.1.0"
    description: ClassVar[str] = (
        "Train a classifier on real vs real + synthetic images (same seeds); accuracy, balanced "
        "accuracy, AUC, F1 on held-out real data"
    )
    primary: ClassVar[str] = "accuracy"
    scores: ClassVar[dict[str, str]] = {
        **ClassifierTask.scores,
        "n_real": "real training images",
        "n_synthetic": "synthetic training images added",
        "final_train_loss": "mean cross-entropy of the last pass over the training set",
        "train_seconds": "wall time of the training loop",
    }

    def run_arm(
        self, data: DataSplits, synthetic: ImageSet | None, seed: int, ctx: RunContext
    ) -> dict[str, Any]:
        """Train with (or without) the synthetic images and score on ``eval_split``."""
        evaluation = self.eval_split(data)
        train, n_synthetic = self.training_set(data, synthetic)
        arm = "real only" if synthetic is None else "real + synthetic"
        model, facts, cfg = self.train_on(data, train, seed, ctx, f"{arm}, seed {seed}")
        scores, correct = self.evaluate(model, evaluation, data.n_classes, cfg)
        facts = self.describe(facts, n_real=len(data.train), n_synthetic=n_synthetic)
        return {**scores, **facts, "correct": correct}
