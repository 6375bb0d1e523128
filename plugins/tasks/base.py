"""What every classifier-based utility task shares: parameters, synthetic-set checks, training.

How much synthetic data is added (per class, so class balance follows the real split):

* ``ratio = r`` — round(r × real images of that class) synthetic images of that class;
* ``count = k`` — k synthetic images of every class;
* neither (the default) — every synthetic image the suite sampled (the generator's ``count``).

Images are taken in the order the generator returned them, so the same synthetic set always
gives the same training set. Asking for more than was sampled is a :class:`TaskError`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from medsynbench.data import DataSplits, ImageSet
from medsynbench.devices import reuse_cpu_memory
from medsynbench.errors import ParameterError, TaskError
from medsynbench.kinds import RunContext, Task
from medsynbench.params import Param

from .classifiers import CLASSIFIERS, Classifier, build_classifier
from .training import (
    TrainConfig,
    classification_scores,
    cpu_threads,
    predict_proba,
    resolve_device,
    seeded,
    to_device_tensor,
    train_classifier,
)

__all__ = ["CLASSIFIER_PARAMETERS", "SYNTHETIC_PARAMETERS", "ClassifierTask"]


def _positive_int(value: int) -> str | None:
    return None if value > 0 else f"must be a positive integer, got {value}"


def _positive(value: float) -> str | None:
    return None if value > 0 else f"must be > 0, got {value}"


def _nonneg(value: float) -> str | None:
    return None if value >= 0 else f"must be ≥ 0, got {value}"


CLASSIFIER_PARAMETERS: dict[str, Param] = {
    "classifier": Param(
        "small-cnn", str, "small-cnn (fast, CPU), resnet18, inception_v3 (the studies'), "
        "efficientnet_lite0 (ImageNet weights offline)", choices=CLASSIFIERS,
    ),
    "epochs": Param(6, int, "training epochs", check=_positive_int),
    "batch_size": Param(64, int, "images per optimisation step", check=_positive_int),
    "lr": Param(2e-3, float, "Adam learning rate (cosine decay to 0)", check=_positive),
    "weight_decay": Param(1e-4, float, "Adam weight decay", check=_nonneg),
    "image_size": Param(
        None, int, "classifier input side in pixels (default: native; 299 for inception_v3, "
        "224 for efficientnet_lite0)", nullable=True, check=_positive_int,
    ),
    "weights": Param(
        None, str, "torchvision ImageNet state dict for resnet18/inception_v3 (offline path); "
        "null: random initialisation", nullable=True,
    ),
    "amp": Param(True, bool, "bfloat16 autocast on CUDA (ignored on CPU)"),
    "cpu_threads": Param(
        1, int, "torch CPU threads while this task runs (null: torch's default); 1 is fastest "
        "for the small CNN on a shared machine and keeps results machine-independent",
        nullable=True, check=_positive_int,
    ),
    "eval_split": Param("test", str, "real split the classifier is evaluated on"),
}

SYNTHETIC_PARAMETERS: dict[str, Param] = {
    "ratio": Param(
        None, float, "synthetic images per real image, per class (null: all sampled)",
        nullable=True, check=_nonneg,
    ),
    "count": Param(
        None, int, "synthetic images per class (null: all sampled)", nullable=True, check=_nonneg
    ),
}


class ClassifierTask(Task):
    """Base of the tasks that train a classifier on real (± synthetic) images."""

    parameters: ClassVar[dict[str, Param]] = {**CLASSIFIER_PARAMETERS, **SYNTHETIC_PARAMETERS}
    scores: ClassVar[dict[str, str]] = {
        "accuracy": "fraction of correct predictions on the evaluation split",
        "balanced_accuracy": "mean per-class recall",
        "auc": "ROC AUC (binary) or macro one-vs-rest AUC (multiclass)",
        "f1": "macro F1",
        "init_pretrained": "1.0 when the classifier started from ImageNet weights, else 0.0",
    }

    def run_seed(
        self, data: DataSplits, synthetic: ImageSet | None, seed: int, ctx: RunContext
    ) -> dict[str, float]:
        """Check the synthetic set, then run :meth:`run_arm` with the CPU thread count pinned
        (and freed CPU memory kept for reuse, :func:`~medsynbench.devices.reuse_cpu_memory`)."""
        if synthetic is not None:
            self.check_synthetic(data, synthetic)
        device = resolve_device(ctx.device)
        on_cpu = device.type == "cpu"
        with cpu_threads(self.params["cpu_threads"] if on_cpu else None), reuse_cpu_memory(device):
            return self.run_arm(data, synthetic, seed, ctx)

    def run_arm(
        self, data: DataSplits, synthetic: ImageSet | None, seed: int, ctx: RunContext
    ) -> dict[str, float]:
        """One seed of one arm (``synthetic=None``: the baseline arm); subclasses implement."""
        raise NotImplementedError

    def check(self) -> None:
        """``ratio`` and ``count`` exclude each other; ``weights`` needs a torchvision net."""
        if self.params.get("ratio") is not None and self.params.get("count") is not None:
            raise ParameterError(
                f"task {self.name!r}: set either `ratio` or `count` (synthetic images per class), "
                f"not both"
            )
        weights = self.params.get("weights")
        if weights is not None and self.params["classifier"] == "small-cnn":
            raise ParameterError(
                f"task {self.name!r}: `weights` is set but classifier 'small-cnn' has no "
                f"pretrained weights; choose resnet18 or inception_v3, or drop `weights`"
            )

    # -- synthetic data -------------------------------------------------------------------
    def check_synthetic(self, data: DataSplits, synthetic: ImageSet) -> None:
        """Refuse an empty set, unknown class labels and a different image shape."""
        if len(synthetic) == 0:
            raise TaskError(
                f"task {self.name!r}: the synthetic set is empty (0 images); the generator "
                f"produced nothing — check its `count` in the suite and its sample log"
            )
        labels = np.asarray(synthetic.labels)
        bad = sorted({int(v) for v in labels if v < 0 or v >= data.n_classes})
        if bad:
            names = ", ".join(f"{i}={n}" for i, n in enumerate(data.class_names))
            raise TaskError(
                f"task {self.name!r}: synthetic images carry label(s) {bad} that the dataset "
                f"lacks (its classes: {names}); the generator was fitted on a different label set"
            )
        if synthetic.image_shape != data.image_shape:
            raise TaskError(
                f"task {self.name!r}: synthetic images are C×H×W = {synthetic.image_shape} but the "
                f"dataset's are {data.image_shape}; sample the generator at the dataset's "
                f"resolution and channel count"
            )

    def select_synthetic(self, data: DataSplits, synthetic: ImageSet) -> ImageSet:
        """The synthetic images this task uses, per ``ratio`` / ``count`` (see module doc)."""
        self.check_synthetic(data, synthetic)
        ratio, count = self.params.get("ratio"), self.params.get("count")
        if ratio is None and count is None:
            return synthetic
        real_counts = data.train.counts(data.n_classes)
        available = synthetic.counts(data.n_classes)
        chosen: list[np.ndarray] = []
        for c, name in enumerate(data.class_names):
            wanted = round(ratio * real_counts[c]) if ratio is not None else int(count)
            if wanted > available[c]:
                how = f"ratio = {ratio}" if ratio is not None else f"count = {count}"
                raise TaskError(
                    f"task {self.name!r}: {how} asks for {wanted} synthetic images of class "
                    f"{name!r} but only {available[c]} were sampled; raise the generator's "
                    f"`count` in the suite or lower the task's {how.split()[0]}"
                )
            chosen.append(np.flatnonzero(synthetic.labels == c)[:wanted])
        return synthetic.subset(np.sort(np.concatenate(chosen)))

    # -- training ---------------------------------------------------------------------------
    def config(self, ctx: RunContext, epochs: int | None = None, label: str = "") -> TrainConfig:
        """The optimisation settings from the task parameters and ``ctx.device``."""
        return TrainConfig(
            epochs=int(epochs if epochs is not None else self.params["epochs"]),
            batch_size=int(self.params["batch_size"]),
            lr=float(self.params["lr"]),
            weight_decay=float(self.params["weight_decay"]),
            device=resolve_device(ctx.device),
            amp=bool(self.params["amp"]),
            label=f"task {self.name!r}: {label or self.params['classifier']}",
        )

    def new_classifier(
        self, data: DataSplits, n_classes: int | None = None
    ) -> tuple[Classifier, bool]:
        """A freshly initialised classifier (call inside :func:`seeded`)."""
        return build_classifier(
            self.params["classifier"],
            data.image_shape[0],
            n_classes if n_classes is not None else data.n_classes,
            self.params["image_size"],
            self.params["weights"],
        )

    def train_on(
        self,
        data: DataSplits,
        train: ImageSet,
        seed: int,
        ctx: RunContext,
        label: str = "",
    ) -> tuple[Classifier, dict[str, float], TrainConfig]:
        """Seed, build and train a classifier on ``train``; return it, its facts and config."""
        cfg = self.config(ctx, label=label)
        with seeded(seed) as order:
            model, pretrained = self.new_classifier(data)
            images = to_device_tensor(train.images, cfg.device)
            labels = torch.from_numpy(np.asarray(train.labels))
            facts = train_classifier(model, images, labels, cfg, order)
        facts["init_pretrained"] = 1.0 if pretrained else 0.0
        return model, facts, cfg

    def evaluate(
        self, model: Classifier, split: ImageSet, n_classes: int, cfg: TrainConfig, prefix: str = ""
    ) -> dict[str, float]:
        """Scores of ``model`` on a real split."""
        probs = predict_proba(model, to_device_tensor(split.images, cfg.device), cfg)
        return classification_scores(split.labels, probs, n_classes, prefix)

    def eval_split(self, data: DataSplits) -> ImageSet:
        """The evaluation split named by ``eval_split`` (TaskError when absent)."""
        name = self.params["eval_split"]
        if name not in data.splits:
            raise TaskError(
                f"task {self.name!r}: eval_split = {name!r} but the dataset has splits "
                f"{', '.join(data.splits)}"
            )
        return data.splits[name]

    def training_set(self, data: DataSplits, synthetic: ImageSet | None) -> tuple[ImageSet, int]:
        """Real training split plus the selected synthetic images; and how many were added."""
        if synthetic is None:
            return data.train, 0
        extra = self.select_synthetic(data, synthetic)
        if len(extra) == 0:
            return data.train, 0
        return ImageSet.concat([data.train, extra]), len(extra)

    @staticmethod
    def describe(facts: dict[str, float], **more: Any) -> dict[str, float]:
        """Training facts plus extra numbers, all as floats."""
        return {**facts, **{k: float(v) for k, v in more.items()}}
