"""First-party encoder plugins. Each module's classes are listed in ``PLUGINS``; the hook
registers them."""

from __future__ import annotations

from typing import Any

from medsynbench import hookimpl

from .dinov2 import DINOv2Encoder
from .efficientnet_lite import EfficientNetLite0
from .inception_fid import InceptionFID
from .open_clip_encoder import OpenCLIPEncoder
from .timm_encoder import TimmEncoder
from .vqvae_codes import VQVAECodes

PLUGINS: list[type] = [
    EfficientNetLite0, InceptionFID, TimmEncoder, VQVAECodes, DINOv2Encoder, OpenCLIPEncoder,
]


@hookimpl
def register_encoders(register: Any) -> None:
    """Register every first-party encoder plugin."""
    for cls in PLUGINS:
        register(cls)
