"""``dinov2``: DINOv2 ViT features through timm (Oquab et al. 2023), weights from local files.

dgm-eval (Stein et al. 2023, "Exposing flaws of generative model evaluation metrics") found
DINOv2 ViT-L/14 features rank generators the way humans do where Inception features do not;
CheXGenBench and later medical benchmarks report FD/PRDC in this space too. The network is
timm's port (``vit_{small,base,large,giant}_patch14[_reg4]_dinov2.lvd142m``; default ViT-L/14,
dgm-eval's default), built at the input ``resolution`` (default 224, dgm-eval's; timm resamples
the 518 px position embeddings once at load). Output: the final-norm CLS token (timm
``num_classes=0``; the torch-hub DINOv2 model's output), 384/768/1024/1536-d.

Weights are never downloaded. They are read, in this order, from

1. the ``weights`` parameter: a timm state dict (``model.safetensors``) or Meta's original
   checkpoint (``dinov2_vitl14_pretrain.pth``, converted by timm on load);
2. the Hugging Face hub cache (``timm/<model>``, ``model.safetensors``);
3. the torch hub cache ``$TORCH_HOME/hub/checkpoints/dinov2_vitl14_pretrain.pth`` — where
   ``torch.hub.load("facebookresearch/dinov2", ...)`` (so dgm-eval) leaves it.

A missing file is a :class:`WeightsError` naming every place looked in and both download
URLs. ``pretrained = false`` gives seeded random weights, flagged "random weights — not
comparable". Input handling is the shared one (:mod:`._common`: antialiased bilinear resize,
no crop, ImageNet mean/std), not dgm-eval's bicubic PIL resize: features are close to, not
bit-identical with, dgm-eval's.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from medsynbench.errors import WeightsError
from medsynbench.params import Param, positive_int
from torch import nn

from .timm_encoder import TimmEncoder

__all__ = ["DINOV2_MODELS", "DINOv2Encoder"]

DINOV2_MODELS = tuple(
    f"vit_{size}_patch14{reg}_dinov2.lvd142m"
    for size in ("small", "base", "large", "giant") for reg in ("", "_reg4")
)


class DINOv2Encoder(TimmEncoder):
    """DINOv2 CLS-token features (timm), weights from a local file or the HF/torch caches."""

    name: ClassVar[str] = "dinov2"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = (
        "DINOv2 ViT CLS-token features via timm (default ViT-L/14 at 224 px, as dgm-eval); "
        "weights from a local file or the HF/torch hub cache, never downloaded"
    )
    name_argument: ClassVar[str | None] = None
    parameters: ClassVar[dict[str, Param]] = {
        **TimmEncoder.parameters,
        "model": Param("vit_large_patch14_dinov2.lvd142m", str,
                       "timm DINOv2 model (ViT-S/B/L/g 14, with or without 4 registers)",
                       choices=DINOV2_MODELS),
        "weights": Param(None, str, "local weights file: timm state dict or Meta's "
                         "dinov2_vit*14*_pretrain.pth (overrides the caches)", nullable=True),
        "resolution": Param(224, int, "square input size in pixels (a multiple of 14; "
                            "dgm-eval: 224)",
                            check=lambda v: positive_int(v) or (
                                None if v % 14 == 0 else f"must be a multiple of 14, got {v}")),
    }

    def weights_path(self) -> Path | None:
        """The weights file that will be loaded (None for random weights); the error of a
        missing one names this encoder, then every place looked in (see the module docstring)."""
        try:
            return super().weights_path()
        except WeightsError as exc:
            raise WeightsError(f"encoder 'dinov2': {exc}") from exc

    def model(self) -> nn.Module:
        """The DINOv2 network at ``resolution``, without head, in eval mode (built once)."""
        cached: nn.Module | None = getattr(self, "_model", None)
        if cached is not None:
            return cached
        import timm

        name, size = self.params["model"], int(self.params["resolution"])
        path = self.weights_path()
        if path is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(self.params["seed"]))
                model = timm.create_model(name, pretrained=False, num_classes=0, img_size=size)
        else:
            try:
                model = timm.create_model(
                    name, pretrained=True, num_classes=0, img_size=size,
                    pretrained_cfg_overlay={"file": str(path), "source": "timm"},
                )
            except Exception as exc:  # timm raises RuntimeError/KeyError/etc. on bad files
                raise WeightsError(
                    f"dinov2 model {name!r}: cannot load weights from {path}: "
                    f"{type(exc).__name__}: {exc} — is it a checkpoint of this model size?"
                ) from exc
        self._model: nn.Module = model.eval()
        return self._model
