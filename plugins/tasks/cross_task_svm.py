"""``cross-task-svm``: do features learned with synthetic data transfer to another dataset?

Protocol (Xing et al., cross-task utility): per seed, train the classifier on the suite's
real training split plus the entry's synthetic images (baseline arm: real only, same seed);
use its penultimate-layer features of a **second dataset D** to fit a scikit-learn SVM on D's
training split and score it on D's test split. Δ is the SVM's gain from the synthetic data.
As in ``augmentation``, ``budget = "steps"`` (default) gives both arms' networks the same
number of optimisation steps; ``"correct"`` holds the SVM's per-image outcomes on D's test
split (those behind the primary accuracy).

D is any registered dataset plugin, given as a parameter table::

    [[tasks]]
    plugin = "cross-task-svm"
    dataset = { plugin = "pneumoniamnist", root = "~/data/pneumoniamnist" }

D may have **different classes** (and a different resolution or channel count) than the
suite's dataset — that is the point of a cross-task test. Its images are resized to the
resolution the classifier was trained at and converted to its channel count.

The privacy condition of the study (synthetic data made from remote data) needs nothing
here: fit the suite's generator on the remote split (``split = "A2"`` in its
``[[generators]]`` table) while this task trains on the local ``train`` split (A1). The same
applies to the ``augmentation`` task.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
from medsynbench.data import DataSplits, ImageSet
from medsynbench.errors import ParameterError, TaskError
from medsynbench.kinds import RunContext
from medsynbench.params import Param, positive

from .base import ClassifierTask
from .training import classification_scores, correct_predictions, embed, to_device_tensor

__all__ = ["CrossTaskSVM"]


class CrossTaskSVM(ClassifierTask):
    """Features of a classifier trained with synthetic data → SVM on a second dataset D."""

    name: ClassVar[str] = "cross-task-svm"
    version: ClassVar[str] = "2.1.0"
    description: ClassVar[str] = (
        "Classifier trained on real + synthetic (baseline: real) → penultimate features of a "
        "second dataset D → SVM accuracy/AUC on D's test split"
    )
    primary: ClassVar[str] = "accuracy"
    parameters: ClassVar[dict[str, Param]] = {
        **ClassifierTask.parameters,
        "dataset": Param(
            Param.REQUIRED, dict, 'the second dataset D: {plugin = "name", <its parameters>}'
        ),
        "d_train_split": Param("train", str, "split of D the SVM is fitted on"),
        "d_test_split": Param("test", str, "split of D the SVM is scored on"),
        "svm_kernel": Param("rbf", str, "SVM kernel", choices=("linear", "rbf")),
        "svm_c": Param(1.0, float, "SVM regularisation C", check=positive),
    }
    scores: ClassVar[dict[str, str]] = {
        "accuracy": "SVM accuracy on D's test split",
        "balanced_accuracy": "SVM mean per-class recall on D",
        "auc": "SVM ROC AUC on D (macro one-vs-rest when multiclass)",
        "f1": "SVM macro F1 on D",
        "init_pretrained": "1.0 when the classifier started from ImageNet weights, else 0.0",
        "source_accuracy": "the classifier's own accuracy on the suite dataset's eval split",
        "d_train_images": "images of D the SVM was fitted on",
        "n_synthetic": "synthetic training images added",
        "optimisation_steps": ClassifierTask.scores["optimisation_steps"],
    }

    def check(self) -> None:
        """``dataset`` must be a table naming a plugin."""
        super().check()
        table = self.params["dataset"]
        if not isinstance(table.get("plugin"), str):
            raise ParameterError(
                f"task {self.name!r}: `dataset` must be a table with a `plugin` name, e.g. "
                f'dataset = {{ plugin = "pneumoniamnist", root = "..." }}; got {table!r}'
            )

    def second_dataset(self, ctx: RunContext) -> DataSplits:
        """Load D once (kept on the task instance for the other seeds and entries)."""
        cached: DataSplits | None = getattr(self, "_second", None)
        if cached is not None:
            return cached
        table: dict[str, Any] = dict(self.params["dataset"])
        plugin = table.pop("plugin")
        registry = ctx.registry
        if registry is None:
            from medsynbench.registry import get_registry

            registry = get_registry()
        dataset = registry.create("dataset", plugin, table, f"task {self.name!r}.dataset")
        second: DataSplits = dataset.load(ctx.child(workdir=ctx.workdir / "second_dataset"))
        for split in (self.params["d_train_split"], self.params["d_test_split"]):
            if split not in second.splits:
                raise TaskError(
                    f"task {self.name!r}: dataset D ({plugin!r}) has no split {split!r}; it has "
                    f"{', '.join(second.splits)} — set d_train_split / d_test_split"
                )
        self._second = second
        return second

    def run_arm(
        self, data: DataSplits, synthetic: ImageSet | None, seed: int, ctx: RunContext
    ) -> dict[str, Any]:
        """Train with (or without) synthetic images, then fit and score the SVM on D."""
        second = self.second_dataset(ctx)
        train, n_synthetic = self.training_set(data, synthetic)
        arm = "real only" if synthetic is None else "real + synthetic"
        model, facts, cfg = self.train_on(data, train, seed, ctx, f"{arm}, seed {seed}")
        source, _ = self.evaluate(model, self.eval_split(data), data.n_classes, cfg)

        if model.spec.size is None:  # features of D at the resolution the network learned
            model.spec = replace(model.spec, size=data.image_shape[1:])
        d_train = second[self.params["d_train_split"]]
        d_test = second[self.params["d_test_split"]]
        # crop_border > 0: D's images are cropped like everything else the network sees
        train_x = embed(model, to_device_tensor(self.cropped(d_train.images), cfg.device), cfg)
        test_x = embed(model, to_device_tensor(self.cropped(d_test.images), cfg.device), cfg)
        if len(np.unique(d_train.labels)) < 2:
            raise TaskError(
                f"task {self.name!r}: D's split {self.params['d_train_split']!r} holds a single "
                f"class; an SVM needs at least two"
            )
        # imported on use: scikit-learn takes ~1 s to import (the CLI starts without it)
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        svm = make_pipeline(
            StandardScaler(),
            SVC(kernel=self.params["svm_kernel"], C=float(self.params["svm_c"])),
        )
        svm.fit(train_x, d_train.labels)
        decision = np.asarray(svm.decision_function(test_x), dtype=np.float64)
        classes = np.asarray(svm.classes_)
        # classes absent from D's training split can never be predicted: lowest score
        scores = np.full((decision.shape[0], second.n_classes), float(decision.min()) - 1.0)
        if decision.ndim == 1:  # binary: positive means classes_[1]
            scores[:, classes[0]], scores[:, classes[1]] = -decision, decision
        else:
            scores[:, classes] = decision
        result = classification_scores(d_test.labels, scores, second.n_classes)
        facts = self.describe(
            facts,
            source_accuracy=source["accuracy"],
            n_synthetic=n_synthetic,
            d_train_images=len(d_train),
        )
        return {**result, **facts, "correct": correct_predictions(d_test.labels, scores)}
