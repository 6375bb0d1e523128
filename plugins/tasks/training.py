"""Training, prediction and scoring of the utility classifiers.

Images stay uint8 tensors (on the GPU when there is one) and are normalised/resized per batch,
so a set of thousands of images costs a few MB, not a float copy per resolution.

Determinism: :func:`seeded` seeds torch's global generator (used for weight initialisation)
and turns on ``torch.use_deterministic_algorithms``; the data order comes from a separate
``torch.Generator`` seeded from the same seed. On CPU one seed gives bit-identical results;
on CUDA, AMP (bfloat16 autocast) and cuDNN heuristics make results close but not identical.

Budget: ``TrainConfig.steps`` fixes the number of optimisation steps independently of the
set size, so two arms trained on sets of different sizes can take the same number of steps
(:func:`batch_schedule` reshuffles each time the set is used up); ``steps=None`` trains for
``epochs`` passes. A final batch of a single image is dropped from every pass (BatchNorm
cannot train on one image), and the steps it would have taken are never counted — in the
step budget, in the cosine schedule or in the reported ``optimisation_steps``.

Divergence is reported, not hidden: a non-finite loss raises :class:`TaskError` naming the
step, pass and learning rate, so a failed classifier never appears as a chance-level score.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from medsynbench.devices import cpu_threads, shared_tensor, torch_device
from medsynbench.errors import TaskError
from torch import nn

from .classifiers import Classifier, preprocess

__all__ = [
    "TrainConfig",
    "batch_schedule",
    "batches_per_pass",
    "classification_scores",
    "correct_predictions",
    "cpu_threads",
    "embed",
    "predict_proba",
    "recalibrate_batchnorm",
    "resolve_device",
    "seeded",
    "to_device_tensor",
    "train_classifier",
    "train_linear_head",
]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by the tasks (Adam, cosine learning-rate decay).

    ``steps`` (when set) is the whole budget and ``epochs`` is ignored by
    :func:`train_classifier`: the equal-steps comparison of two arms needs a count that does
    not grow with the training set.
    """

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 1e-4
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    amp: bool = True
    label: str = "classifier"  # names the run in error messages
    # More than one: train data-parallel over these devices (:mod:`.parallel`).
    devices: tuple[torch.device, ...] = ()
    steps: int | None = None  # total optimisation steps; None: epochs × batches_per_pass(n)


resolve_device = torch_device  # "auto" → cuda when available; ParameterError otherwise


def batches_per_pass(n: int, batch_size: int) -> int:
    """Optimisation steps in one pass over ``n`` images: ceil(n / batch_size), less a final
    batch of a single image (dropped: BatchNorm cannot train on it). At least 1 when n ≥ 1."""
    full, rest = divmod(n, batch_size)
    drops_single = rest == 1 and full > 0
    return full + (1 if rest > 0 and not drops_single else 0)


def batch_schedule(
    n: int, batch_size: int, steps: int, generator: torch.Generator
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """``(pass, step, index)`` for exactly ``steps`` batches over ``n`` images.

    Each pass is a fresh permutation drawn from ``generator``, cut into batches of
    ``batch_size`` (a single-image remainder is skipped, see :func:`batches_per_pass`); a
    budget that ends inside a pass stops there. With ``steps = epochs × batches_per_pass(n)``
    this is exactly ``epochs`` passes, drawing the same permutations as an epoch loop.
    """
    per_pass = batches_per_pass(n, batch_size)
    if n < 1 or per_pass < 1:
        return
    step = 0
    for pass_ in range(math.ceil(steps / per_pass)):
        order = torch.randperm(n, generator=generator)
        for batch in range(per_pass):
            if step == steps:
                return
            yield pass_, step, order[batch * batch_size : (batch + 1) * batch_size]
            step += 1


@contextmanager
def seeded(seed: int) -> Iterator[torch.Generator]:
    """Seed torch's global RNG and run deterministic algorithms; yield a data-order generator."""
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.manual_seed(seed)
    # warn_only: an op without a deterministic kernel (some CUDA backward passes) must not
    # abort a benchmark run; on CPU every op used here is deterministic.
    torch.use_deterministic_algorithms(True, warn_only=True)
    generator = torch.Generator().manual_seed(seed)
    try:
        yield generator
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)


def to_device_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 numpy N×C×H×W (possibly memory-mapped, read-only) → contiguous uint8 tensor on
    ``device`` (no copy on the CPU: :func:`~medsynbench.devices.shared_tensor`)."""
    return shared_tensor(np.ascontiguousarray(images)).to(device)


def _autocast(cfg: TrainConfig) -> torch.autocast:
    enabled = cfg.amp and cfg.device.type == "cuda"
    return torch.autocast(device_type=cfg.device.type, dtype=torch.bfloat16, enabled=enabled)


def _prepare(model: Classifier, cfg: TrainConfig) -> nn.Module:
    model = model.to(cfg.device)
    if cfg.device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


def _input(batch: torch.Tensor, model: Classifier, cfg: TrainConfig) -> torch.Tensor:
    x = preprocess(batch, model.spec)
    if cfg.device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def train_classifier(
    model: Classifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: TrainConfig,
    generator: torch.Generator,
    parameters: list[nn.Parameter] | None = None,
    recalibrate: bool = True,
) -> dict[str, float]:
    """Train ``model`` (or only ``parameters``) with cross-entropy; return training facts.

    ``images`` is a uint8 tensor on ``cfg.device``; ``generator`` fixes the data order.
    The budget is ``cfg.steps`` optimisation steps when set, else ``cfg.epochs`` passes
    (:func:`batch_schedule`); the cosine schedule decays to 0 over that budget, and the steps
    taken are returned as ``optimisation_steps``.
    When the whole model was trained, its BatchNorm statistics are recalibrated afterwards
    (:func:`recalibrate_batchnorm`; ``recalibrate=False`` skips it, e.g. to time epochs).
    With more than one device in ``cfg.devices`` the whole model trains data-parallel, one
    process per device (:mod:`.parallel`).
    Raises TaskError when the loss becomes non-finite.
    """
    n = int(images.shape[0])
    if n == 0:
        raise TaskError(f"{cfg.label}: no training images")
    if len(cfg.devices) > 1 and parameters is None:
        from .parallel import train_data_parallel

        facts = train_data_parallel(model, images, labels, cfg, generator)
        _prepare(model, cfg)
        if recalibrate:
            recalibrate_batchnorm(model, images, cfg)
        return facts
    _prepare(model, cfg)
    params = parameters if parameters is not None else list(model.parameters())
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_steps = cfg.steps if cfg.steps is not None else cfg.epochs * batches_per_pass(
        n, cfg.batch_size
    )
    if total_steps < 1:
        raise TaskError(f"{cfg.label}: a budget of {total_steps} optimisation steps trains nothing")
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    labels = labels.to(cfg.device)
    model.train()
    start = time.perf_counter()
    loss_sum, seen, last_pass, taken = 0.0, 0, 0, 0
    for pass_, step, index in batch_schedule(n, cfg.batch_size, total_steps, generator):
        if pass_ != last_pass:  # the loss reported is that of the last (possibly partial) pass
            loss_sum, seen, last_pass = 0.0, 0, pass_
        index = index.to(cfg.device)
        with _autocast(cfg):
            logits = model(_input(images[index], model, cfg))
            loss = F.cross_entropy(logits.float(), labels[index])
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TaskError(
                f"{cfg.label} diverged: loss is {value} at step {step + 1} of {total_steps} "
                f"(pass {pass_ + 1} over the training set, lr = {cfg.lr:g}); lower the task's "
                f"`lr` or check the training images"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_sum += value * int(index.numel())
        seen += int(index.numel())
        taken += 1
    if parameters is None and recalibrate:
        recalibrate_batchnorm(model, images, cfg)
    return {
        "final_train_loss": loss_sum / max(seen, 1),
        "train_seconds": time.perf_counter() - start,
        "train_images": float(n),
        "optimisation_steps": float(taken),
    }


@torch.no_grad()
def recalibrate_batchnorm(model: Classifier, images: torch.Tensor, cfg: TrainConfig) -> None:
    """Replace BatchNorm running statistics by exact averages over ``images`` for the final weights.

    The running averages (momentum 0.1) trail the weights when training is short — a few dozen
    steps on a small set — so eval-mode predictions can be far worse than the training loss
    suggests (measured: 57% vs ~85% training accuracy after 40 steps). One forward pass in
    train mode with ``momentum=None`` (cumulative average) fixes it; no weights change.

    The pass visits the images in a fixed random order, never in stored order: the running
    variance is the average of per-batch variances, so batches of one class each (a split stored
    class by class, as most folder datasets are) leave out the variance *between* classes.
    Measured on LC25000 64 px (small-cnn, 4 seeds): recalibrating in stored order cost the
    real-only arm 7.2 pp of accuracy (77.8 % vs 85.0 %) and made adding copies of its own
    training images look like a +2.1 pp gain (−0.5 pp in a fixed random order).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    n = int(images.shape[0])
    # Its own generator: the order is the same in both arms and leaves the data order untouched.
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0)).to(images.device)
    for start in range(0, n, cfg.batch_size):
        batch = images[order[start : start + cfg.batch_size]]
        if batch.shape[0] < 2:
            continue
        with _autocast(cfg):
            model(_input(batch, model, cfg))
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum


@torch.no_grad()
def _batched(
    model: Classifier, images: torch.Tensor, cfg: TrainConfig, features: bool
) -> np.ndarray:
    _prepare(model, cfg)
    model.eval()
    outputs = []
    for start in range(0, int(images.shape[0]), cfg.batch_size * 2):
        batch = images[start : start + cfg.batch_size * 2].to(cfg.device)
        with _autocast(cfg):
            x = _input(batch, model, cfg)
            out = model.backbone(x) if features else model(x).softmax(dim=1)
        outputs.append(out.float().cpu())
    if not outputs:
        width = model.feature_dim if features else model.head.out_features
        return np.zeros((0, width), dtype=np.float32)
    return torch.cat(outputs).numpy()


def predict_proba(model: Classifier, images: torch.Tensor, cfg: TrainConfig) -> np.ndarray:
    """Class probabilities (N×K float32) for uint8 ``images``."""
    probs = _batched(model, images, cfg, features=False)
    if not np.all(np.isfinite(probs)):
        raise TaskError(
            f"{cfg.label} produced non-finite predictions (diverged weights); lower the task's "
            f"`lr` (currently {cfg.lr:g})"
        )
    return probs


def embed(model: Classifier, images: torch.Tensor, cfg: TrainConfig) -> np.ndarray:
    """Backbone features (N×d float32) for uint8 ``images``."""
    return _batched(model, images, cfg, features=True)


def train_linear_head(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    cfg: TrainConfig,
    generator: torch.Generator,
) -> nn.Linear:
    """Fit a fresh linear layer on frozen features (call inside :func:`seeded`).

    Equivalent to fine-tuning only the last layer of a frozen network in eval mode (no
    augmentation), at a fraction of the cost: the backbone runs once, not once per epoch.
    """
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    head = nn.Linear(x.shape[1], n_classes)
    optimizer = torch.optim.Adam(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = int(x.shape[0])
    if n == 0:
        raise TaskError(f"{cfg.label}: no images to fine-tune the last layer on")
    for epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, cfg.batch_size):
            index = order[start : start + cfg.batch_size]
            loss = F.cross_entropy(head(x[index]), y[index])
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TaskError(
                    f"{cfg.label} diverged while fine-tuning the last layer: loss is "
                    f"{value} at epoch {epoch + 1} (lr = {cfg.lr:g}); lower the fine-tune lr"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return head.eval()


def correct_predictions(y_true: np.ndarray, scores: np.ndarray) -> list[int]:
    """1 where the argmax of ``scores`` (N×K) is the true label, else 0, in the split's order:
    the per-image outcomes behind the ``accuracy`` of :func:`classification_scores`."""
    hits = np.asarray(scores).argmax(axis=1) == np.asarray(y_true)
    return [int(hit) for hit in hits]


def classification_scores(
    y_true: np.ndarray, scores: np.ndarray, n_classes: int, prefix: str = ""
) -> dict[str, float]:
    """accuracy, balanced_accuracy, auc and f1 (macro) from per-class scores (N×K).

    ``scores`` may be probabilities or any per-class decision values (an SVM's); the
    prediction is their argmax. AUC is the ROC AUC of class 1 for two classes and otherwise
    the macro one-vs-rest AUC: the mean over the classes present in ``y_true`` of the ROC AUC
    of "class c vs the rest" ranked by column c (what scikit-learn's ``multi_class="ovr"``
    computes for probabilities). Fewer than two classes present is a TaskError.
    """
    # imported on use: sklearn.metrics takes ~1 s to import (the CLI starts without it)
    from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

    y_true = np.asarray(y_true)
    pred = scores.argmax(axis=1)
    hits = correct_predictions(y_true, scores)
    present = np.unique(y_true)
    if present.size < 2:
        raise TaskError(
            f"the evaluation split holds only class {present.tolist()}: AUC and balanced "
            f"accuracy need at least two classes"
        )
    if n_classes == 2:
        auc = float(roc_auc_score(y_true, scores[:, 1] - scores[:, 0]))
    else:
        auc = float(np.mean([roc_auc_score(y_true == c, scores[:, c]) for c in present]))
    values = {
        "accuracy": float(np.mean(hits)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, pred)),
        "auc": auc,
        "f1": float(f1_score(y_true, pred, average="macro", labels=present, zero_division=0)),
    }
    return {prefix + k: v for k, v in values.items()}
