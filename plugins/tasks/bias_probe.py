"""``bias-probe``: how much does a classifier trained with an entry's images rely on a marker?

The X-ray study (Nan et al.) found that generators inherit the burned-in "R" laterality
marker of the pediatric set, a shortcut a classifier can learn instead of the anatomy. On a
dataset whose marker position depends on the class (``phantom-xray`` with ``marker_rate > 0``,
or any dataset providing the same two probe splits) this task trains the classifier like
``augmentation`` (real only vs real + synthetic, same seeds) and scores it on

* ``test_swapped`` — the test images with each marker moved to another class's position, and
* ``test_nomarker`` — the same images with no marker at all.

``marker_gap`` = accuracy(no marker) − accuracy(swapped) is the marker reliance: about 0 for a
classifier that reads the anatomy, large when a misleading marker flips its decisions.
The primary score is ``accuracy_swapped`` (higher is better: robust to the shortcut), so a
positive Δ means the entry's images *reduce* marker reliance and a negative Δ that the
generator passed the bias on. ``marker_gap`` is reported per seed beside it, and
``"correct"`` holds the per-image outcomes on ``test_swapped`` (those behind the primary).
"""

from __future__ import annotations

from typing import Any, ClassVar

from medsynbench.data import DataSplits, ImageSet
from medsynbench.errors import TaskError
from medsynbench.kinds import RunContext
from medsynbench.params import Param

from .base import ClassifierTask

__all__ = ["BiasProbe"]


class BiasProbe(ClassifierTask):
    """Accuracy with markers swapped between classes vs removed: marker reliance per entry."""

    name: ClassVar[str] = "bias-probe"
    version: ClassVar[str] = "2.0.0"
    description: ClassVar[str] = (
        "Marker reliance: accuracy on test images with class markers swapped vs removed "
        "(needs splits test_swapped and test_nomarker, e.g. phantom-xray with marker_rate > 0)"
    )
    primary: ClassVar[str] = "accuracy_swapped"
    parameters: ClassVar[dict[str, Param]] = {
        **ClassifierTask.parameters,
        "swapped_split": Param("test_swapped", str, "split with markers swapped between classes"),
        "nomarker_split": Param("test_nomarker", str, "the same images without markers"),
    }
    scores: ClassVar[dict[str, str]] = {
        **ClassifierTask.scores,
        "accuracy_swapped": "accuracy when every marker sits where another class's would",
        "accuracy_nomarker": "accuracy on the same images without markers",
        "marker_gap": "accuracy_nomarker − accuracy_swapped: reliance on the marker (0 = none)",
        "n_synthetic": "synthetic training images added",
    }

    def probe_splits(self, data: DataSplits) -> tuple[ImageSet, ImageSet]:
        """The swapped and marker-free splits, or a TaskError saying how to get them."""
        wanted = (self.params["swapped_split"], self.params["nomarker_split"])
        missing = [s for s in wanted if s not in data.splits]
        if missing:
            raise TaskError(
                f"task {self.name!r}: the dataset has no split(s) {', '.join(map(repr, missing))} "
                f"(it has {', '.join(data.splits)}); use a dataset with a class-dependent marker "
                f"and probe splits, e.g. phantom-xray with marker_rate > 0, or name the splits "
                f"with swapped_split / nomarker_split"
            )
        swapped, nomarker = data.splits[wanted[0]], data.splits[wanted[1]]
        if len(swapped) != len(nomarker):
            raise TaskError(
                f"task {self.name!r}: {wanted[0]!r} ({len(swapped)} images) and {wanted[1]!r} "
                f"({len(nomarker)}) must hold the same images"
            )
        return swapped, nomarker

    def run_arm(
        self, data: DataSplits, synthetic: ImageSet | None, seed: int, ctx: RunContext
    ) -> dict[str, Any]:
        """Train like ``augmentation``; score on the marked, swapped and marker-free tests."""
        swapped, nomarker = self.probe_splits(data)
        evaluation = self.eval_split(data)
        train, n_synthetic = self.training_set(data, synthetic)
        arm = "real only" if synthetic is None else "real + synthetic"
        model, facts, cfg = self.train_on(data, train, seed, ctx, f"{arm}, seed {seed}")
        k = data.n_classes
        scores, _ = self.evaluate(model, evaluation, k, cfg)
        on_swapped, correct = self.evaluate(model, swapped, k, cfg, prefix="swapped_")
        on_nomarker, _ = self.evaluate(model, nomarker, k, cfg, prefix="nomarker_")
        probe = {
            "accuracy_swapped": on_swapped["swapped_accuracy"],
            "accuracy_nomarker": on_nomarker["nomarker_accuracy"],
            "auc_swapped": on_swapped["swapped_auc"],
            "auc_nomarker": on_nomarker["nomarker_auc"],
        }
        probe["marker_gap"] = probe["accuracy_nomarker"] - probe["accuracy_swapped"]
        facts = self.describe(facts, n_synthetic=n_synthetic)
        return {**scores, **probe, **facts, "correct": correct}
