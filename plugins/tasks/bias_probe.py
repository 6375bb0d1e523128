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

``bias-probe-masked`` is the probe for **real** markers (the Kermany "R", kV/mA text), which
cannot be moved to another class's position. It trains the same way and scores on the
evaluation split as it is and on the same images with the markers taken away, in one of two
ways (``probe``):

* ``"band"`` (default) — the border band, ``probe_border`` of the side (0.17: where the Kermany
  markers sit at 128 px), becomes a flat grey, each image's own band median
  (:func:`~medsynbench.plugins.datasets.bias.mask_border`); the anatomy inside keeps its place
  and scale. Every marker goes, found or not — and with it the body outline and collimation
  edges, which the classifier never saw flat: an **upper bound** on marker reliance;
* ``"marks"`` — only the marks the ``marker-rate`` detector finds in that band are replaced by
  their local background (:func:`~medsynbench.plugins.metrics.marker.erase_markers`); all else
  is untouched, as in ``test_nomarker``, but the marks it misses stay (it finds one on 76–88 %
  of the Kermany test images): a **lower bound**.

Scores: ``accuracy_masked`` (primary, higher is better) — accuracy without the markers: a
classifier that reads the anatomy keeps it; ``marker_gap`` = accuracy(as is) −
accuracy_masked, the reliance (> 0: the classifier used what was taken away);
``probe_changed`` — the share of evaluation images the probe changed (all with ``"band"``).
Δ between the arms, which share the probe, compares entries: > 0 the entry's images make the
classifier less dependent on the markers. On 1,400 Kermany training images at 128 px (small
CNN, 8 epochs, seeds 0–1; Kermany test split) the real-only classifier scored 0.85–0.86 as is,
0.62–0.64 with the band masked (AUC 0.49–0.54: chance; 62.5 % of the test images are PNEUMONIA)
and 0.85–0.86 with the marks erased (83 % of the test images changed; gap 0.3–0.6 pp): it leaned
on the border — collimation, body outline — not on the letter; a classifier shown the band
alone (centre flat) still reached 0.80 (AUC 0.89), and one trained and tested with
``crop_border = 0.17`` scored 0.81. This is a
separate plugin, not a mode of ``bias-probe``, because a task's primary score is fixed per
plugin.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from medsynbench.data import DataSplits, ImageSet
from medsynbench.errors import TaskError
from medsynbench.kinds import RunContext
from medsynbench.params import Param, in_range

from ..datasets.bias import mask_border
from ..metrics.marker import erase_markers
from .base import ClassifierTask

__all__ = ["BiasProbe", "MaskedBiasProbe"]

_BAND = in_range(0, 0.5, low_open=True, high_open=True)


class BiasProbe(ClassifierTask):
    """Accuracy with markers swapped between classes vs removed: marker reliance per entry."""

    name: ClassVar[str] = "bias-probe"
    version: ClassVar[str] = "2.1.0"
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


class MaskedBiasProbe(ClassifierTask):
    """Accuracy with the markers taken away vs as is: reliance on real burned-in markers."""

    name: ClassVar[str] = "bias-probe-masked"
    version: ClassVar[str] = "1.1.0"
    description: ClassVar[str] = (
        "Marker reliance on real markers: accuracy on the test images with the border band "
        "masked (or the detected marks erased) vs as they are"
    )
    primary: ClassVar[str] = "accuracy_masked"
    parameters: ClassVar[dict[str, Param]] = {
        **ClassifierTask.parameters,
        "probe": Param(
            "band", str, "band: flatten the whole border band (upper bound); marks: erase only "
            "the marks the marker-rate detector finds there (lower bound)",
            choices=("band", "marks"),
        ),
        "probe_border": Param(
            0.17, float, "border band masked or searched, fraction of the side (0.17 covers the "
            "Kermany markers at 128 px)", check=_BAND,
        ),
    }
    scores: ClassVar[dict[str, str]] = {
        **ClassifierTask.scores,
        "accuracy_masked": "accuracy on the evaluation images with the markers taken away",
        "auc_masked": "AUC on those images",
        "marker_gap": "accuracy − accuracy_masked: reliance on the markers (0 = none)",
        "probe_changed": "share of evaluation images the probe changed",
        "n_synthetic": "synthetic training images added",
    }

    def probe_split(self, evaluation: ImageSet) -> ImageSet:
        """The evaluation images without their markers (module docstring), computed once."""
        cached: tuple[ImageSet, ImageSet] | None = getattr(self, "_probed", None)
        if cached is not None and cached[0] is evaluation:
            return cached[1]
        band = float(self.params["probe_border"])
        images = np.asarray(evaluation.images)
        if self.params["probe"] == "marks":
            probed = erase_markers(images, band)
        else:
            probed = mask_border(images, band)
        result = ImageSet(probed, evaluation.labels, evaluation.groups)
        self._probed = (evaluation, result)
        return result

    def run_arm(
        self, data: DataSplits, synthetic: ImageSet | None, seed: int, ctx: RunContext
    ) -> dict[str, Any]:
        """Train like ``augmentation``; score on the evaluation split as is and masked."""
        evaluation = self.eval_split(data)
        masked = self.probe_split(evaluation)
        train, n_synthetic = self.training_set(data, synthetic)
        arm = "real only" if synthetic is None else "real + synthetic"
        model, facts, cfg = self.train_on(data, train, seed, ctx, f"{arm}, seed {seed}")
        k = data.n_classes
        scores, _ = self.evaluate(model, evaluation, k, cfg)
        on_masked, correct = self.evaluate(model, masked, k, cfg, prefix="masked_")
        probe = {
            "accuracy_masked": on_masked["masked_accuracy"],
            "auc_masked": on_masked["masked_auc"],
            "marker_gap": scores["accuracy"] - on_masked["masked_accuracy"],
            "probe_changed": float(np.mean(np.any(
                masked.images != evaluation.images, axis=(1, 2, 3)))),
        }
        facts = self.describe(facts, n_synthetic=n_synthetic)
        return {**scores, **probe, **facts, "correct": correct}
