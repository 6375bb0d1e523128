"""What every classifier-based utility task shares: parameters, synthetic-set checks, training.

How much synthetic data is added (per class, so class balance follows the real split):

* ``synthetic_ratio = r`` (default 1.0, must be > 0) — round(r × real training images of that
  class) synthetic images of that class, halves rounded up;
* ``count = k`` (≥ 1; overrides ``synthetic_ratio``) — k synthetic images of every class.

The number therefore follows the real split the classifier trains on, not how many images
the generator happened to be asked for (which used to follow the size of its fit split).
:meth:`ClassifierTask.synthetic_counts` tells the runner how many to sample; images are taken
in the order the generator returned them, so the same synthetic set always gives the same
training set. Asking for more than was sampled is a :class:`TaskError`.

How long each arm trains (``budget``):

* ``"steps"`` (default) — both arms take exactly the optimisation steps of the real-only arm,
  ``epochs`` × ceil(real training images / ``batch_size``) (less a dropped one-image
  remainder, :func:`~.training.batches_per_pass`). The arm with synthetic images goes through
  its larger set fewer times, reshuffling each time, with the cosine schedule over the same
  total. Δ then measures the data, not extra optimisation.
* ``"epochs"`` — both arms train ``epochs`` passes over their own set (a paper's epoch
  protocol): the larger set also gets more steps, which confounds Δ with optimisation.

Every task reports the steps taken as ``optimisation_steps`` and, for its primary accuracy,
the per-image outcomes as ``"correct"`` (0/1 in the evaluation split's order).

The cropped re-evaluation (Nan et al., Table IV: the same generators, the text region removed):
``crop_border = f`` (default 0: off) cuts ``f`` of the side off every border of every image the
classifier sees — real training and evaluation splits *and* the synthetic images — and resizes
back (:func:`~medsynbench.plugins.datasets.bias.crop_border`), before training and testing. A
suite lists a task twice, as is and with ``crop_border = 0.17`` (under another ``name``), to
show both. The datasets' own ``crop_border`` differs: it also crops what generators are fitted
on. Left at 0, ``crop_border`` stays out of the task's parameters (:meth:`ClassifierTask.validate`)
so that suites published before it existed keep their protocol hash.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from medsynbench.data import DataSplits, ImageSet
from medsynbench.devices import reuse_cpu_memory
from medsynbench.errors import ParameterError, TaskError
from medsynbench.kinds import RunContext, Task
from medsynbench.params import Param, nonnegative, positive, positive_int

from ..datasets.bias import BIAS_PARAMETERS, crop_border
from .classifiers import CLASSIFIERS, Classifier, build_classifier
from .training import (
    TrainConfig,
    batches_per_pass,
    classification_scores,
    correct_predictions,
    cpu_threads,
    predict_proba,
    resolve_device,
    seeded,
    to_device_tensor,
    train_classifier,
)

__all__ = ["CLASSIFIER_PARAMETERS", "SYNTHETIC_PARAMETERS", "ClassifierTask"]


def _synthetic_ratio(value: float) -> str | None:
    if math.isfinite(value) and value > 0:
        return None
    return (
        f"must be a finite number > 0 (synthetic images per real training image of each "
        f"class), got {value}; use 1.0 for as many synthetic as real images, or set `count` "
        f"for a fixed number per class — the real-only arm already is the no-synthetic run"
    )


CLASSIFIER_PARAMETERS: dict[str, Param] = {
    "classifier": Param(
        "small-cnn", str, "small-cnn (fast, CPU), resnet18, inception_v3 (the studies'), "
        "efficientnet_lite0 (ImageNet weights offline)", choices=CLASSIFIERS,
    ),
    "epochs": Param(6, int, "training epochs", check=positive_int),
    "batch_size": Param(64, int, "images per optimisation step", check=positive_int),
    "lr": Param(2e-3, float, "Adam learning rate (cosine decay to 0)", check=positive),
    "weight_decay": Param(1e-4, float, "Adam weight decay", check=nonnegative),
    "image_size": Param(
        None, int, "classifier input side in pixels (default: native; 299 for inception_v3, "
        "224 for efficientnet_lite0)", nullable=True, check=positive_int,
    ),
    "weights": Param(
        None, str, "torchvision ImageNet state dict for resnet18/inception_v3 (offline path); "
        "null: random initialisation", nullable=True,
    ),
    "amp": Param(True, bool, "bfloat16 autocast on CUDA (ignored on CPU)"),
    "cpu_threads": Param(
        1, int, "torch CPU threads while this task runs (null: torch's default); 1 is fastest "
        "for the small CNN on a shared machine and keeps results independent of the core count",
        nullable=True, check=positive_int,
    ),
    "eval_split": Param("test", str, "real split the classifier is evaluated on",
                        extra={"split": True}),
    "budget": Param(
        "steps", str, "steps: both arms take the real-only arm's optimisation steps (epochs × "
        "batches of the real training split); epochs: each arm trains `epochs` passes over "
        "its own set (a paper's protocol; more steps for the larger set)",
        choices=("steps", "epochs"),
    ),
    "crop_border": Param(
        0.0, float, "fraction cut off every border of every image the classifier sees (real and "
        "synthetic), resized back: the cropped re-evaluation (0.17 removes the Kermany markers "
        "at 128 px); 0: off", check=BIAS_PARAMETERS["crop_border"].check,
    ),
}
# Parameters added after suites were published: at these values they are left out of a task's
# ``params``, hence out of the protocol hash, which then equals the hash before they existed.
_UNHASHED_DEFAULTS: dict[str, Any] = {"crop_border": 0.0}

SYNTHETIC_PARAMETERS: dict[str, Param] = {
    "synthetic_ratio": Param(
        1.0, float, "synthetic images per real training image, per class (round half up)",
        check=_synthetic_ratio,
    ),
    "count": Param(
        None, int, "synthetic images per class; overrides synthetic_ratio (null: use "
        "synthetic_ratio)", nullable=True, check=positive_int,
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
        "optimisation_steps": "optimizer steps the classifier took (equal in both arms when "
        "budget = steps)",
    }

    @classmethod
    def validate(cls, params: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        """The declared parameters, less those of :data:`_UNHASHED_DEFAULTS` at their default."""
        resolved = super().validate(params, where)
        for key, default in _UNHASHED_DEFAULTS.items():
            if key in resolved and resolved[key] == default:
                del resolved[key]
        return resolved

    @property
    def crop(self) -> float:
        """The ``crop_border`` fraction (0.0: images as they are)."""
        return float(self.params.get("crop_border", 0.0))

    def cropped(self, images: np.ndarray) -> np.ndarray:
        """``images`` with :attr:`crop` cut off every border and resized back."""
        return crop_border(np.asarray(images), self.crop) if self.crop > 0 else images

    def cropped_data(self, data: DataSplits) -> DataSplits:
        """Every split of ``data`` cropped (computed once per dataset, kept on the task)."""
        if self.crop <= 0:
            return data
        cached: tuple[DataSplits, DataSplits] | None = getattr(self, "_cropped_data", None)
        if cached is not None and cached[0] is data:
            return cached[1]
        splits = {name: ImageSet(self.cropped(s.images), s.labels, s.groups)
                  for name, s in data.splits.items()}
        result = DataSplits(splits, data.class_names, data.modality,
                            {**data.info, "task_crop_border": self.crop})
        self._cropped_data = (data, result)
        return result

    def run_seed(
        self, data: DataSplits, synthetic: ImageSet | None, seed: int, ctx: RunContext
    ) -> dict[str, Any]:
        """Check the synthetic set, crop everything when ``crop_border`` > 0, then run
        :meth:`run_arm` with the CPU thread count pinned (and freed CPU memory kept for
        reuse, :func:`~medsynbench.devices.reuse_cpu_memory`)."""
        if synthetic is not None:
            self.check_synthetic(data, synthetic)
            if self.crop > 0:
                synthetic = ImageSet(self.cropped(synthetic.images), synthetic.labels,
                                     synthetic.groups)
        data = self.cropped_data(data)
        device = resolve_device(ctx.device)
        on_cpu = device.type == "cpu"
        with cpu_threads(self.params["cpu_threads"] if on_cpu else None), reuse_cpu_memory(device):
            return self.run_arm(data, synthetic, seed, ctx)

    def run_arm(
        self, data: DataSplits, synthetic: ImageSet | None, seed: int, ctx: RunContext
    ) -> dict[str, Any]:
        """One seed of one arm (``synthetic=None``: the baseline arm); subclasses implement.

        Scores are floats, plus ``"correct"`` (list of 0/1) for the primary accuracy."""
        raise NotImplementedError

    def check(self) -> None:
        """``weights`` needs a torchvision net."""
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

    def synthetic_counts(self, train_counts: Sequence[int]) -> list[int]:
        """Synthetic images per class: ``count`` when set, else round(synthetic_ratio × real
        training images of the class), halves up (Python's round would take 12.5 to 12)."""
        count = self.params.get("count")
        if count is not None:
            return [int(count)] * len(train_counts)
        ratio = float(self.params["synthetic_ratio"])
        return [math.floor(ratio * int(n) + 0.5) for n in train_counts]

    def _selection_rule(self) -> str:
        count = self.params.get("count")
        if count is not None:
            return f"count = {count}"
        return f"synthetic_ratio = {self.params['synthetic_ratio']}"

    def select_synthetic(self, data: DataSplits, synthetic: ImageSet) -> ImageSet:
        """The synthetic images this task uses, per :meth:`synthetic_counts` (module doc)."""
        self.check_synthetic(data, synthetic)
        wanted = self.synthetic_counts(data.train.counts(data.n_classes).tolist())
        available = synthetic.counts(data.n_classes)
        rule = self._selection_rule()
        key = rule.split()[0]
        chosen: list[np.ndarray] = []
        for c, name in enumerate(data.class_names):
            if wanted[c] > available[c]:
                raise TaskError(
                    f"task {self.name!r}: {rule} asks for {wanted[c]} synthetic images of class "
                    f"{name!r} but only {available[c]} were sampled; raise the generator's "
                    f"`count` in the suite to at least {wanted[c]} or lower the task's `{key}`"
                )
            chosen.append(np.flatnonzero(synthetic.labels == c)[: wanted[c]])
        if sum(wanted) == 0:
            raise TaskError(
                f"task {self.name!r}: {rule} selects 0 synthetic images (real training counts "
                f"per class {data.train.counts(data.n_classes).tolist()}), so the treated arm "
                f"would be the real-only arm; raise `synthetic_ratio` or set `count`"
            )
        return synthetic.subset(np.sort(np.concatenate(chosen)))

    # -- training ---------------------------------------------------------------------------
    def step_budget(self, data: DataSplits) -> int | None:
        """Optimisation steps of every arm under ``budget = "steps"``: those of the real-only
        arm, which trains on ``data.train``; None under ``"epochs"`` (each arm its own)."""
        if self.params["budget"] == "epochs":
            return None
        per_pass = batches_per_pass(len(data.train), int(self.params["batch_size"]))
        return int(self.params["epochs"]) * per_pass

    def config(
        self, ctx: RunContext, epochs: int | None = None, label: str = "",
        steps: int | None = None,
    ) -> TrainConfig:
        """The optimisation settings from the task parameters and ``ctx.device``."""
        devices = tuple(torch.device(d) for d in ctx.devices) if len(ctx.devices) > 1 else ()
        return TrainConfig(
            devices=devices,
            steps=steps,
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
        """Seed, build and train a classifier on ``train`` for this task's budget
        (:meth:`step_budget`); return it, its facts and config."""
        cfg = self.config(ctx, label=label, steps=self.step_budget(data))
        with seeded(seed) as order:
            model, pretrained = self.new_classifier(data)
            images = to_device_tensor(train.images, cfg.device)
            labels = torch.from_numpy(np.asarray(train.labels))
            facts = train_classifier(model, images, labels, cfg, order)
        facts["init_pretrained"] = 1.0 if pretrained else 0.0
        return model, facts, cfg

    def evaluate(
        self, model: Classifier, split: ImageSet, n_classes: int, cfg: TrainConfig, prefix: str = ""
    ) -> tuple[dict[str, float], list[int]]:
        """Scores of ``model`` on a real split, and its per-image outcomes (1 = correct) behind
        the accuracy."""
        probs = predict_proba(model, to_device_tensor(split.images, cfg.device), cfg)
        scores = classification_scores(split.labels, probs, n_classes, prefix)
        return scores, correct_predictions(split.labels, probs)

    def eval_split(self, data: DataSplits) -> ImageSet:
        """The evaluation split named by ``eval_split`` (TaskError when absent)."""
        name = self.params["eval_split"]
        if name not in data.splits:
            raise TaskError(
                f"task {self.name!r}: eval_split = {name!r} but the dataset has splits "
                f"{', '.join(data.splits)}; set the task's eval_split to one of them"
            )
        return data.splits[name]

    def training_set(self, data: DataSplits, synthetic: ImageSet | None) -> tuple[ImageSet, int]:
        """Real training split plus the selected synthetic images; and how many were added."""
        if synthetic is None:
            return data.train, 0
        extra = self.select_synthetic(data, synthetic)
        return ImageSet.concat([data.train, extra]), len(extra)

    @staticmethod
    def describe(facts: dict[str, float], **more: Any) -> dict[str, float]:
        """Training facts plus extra numbers, all as floats."""
        return {**facts, **{k: float(v) for k, v in more.items()}}
