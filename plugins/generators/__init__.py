"""First-party generator plugins. Each module adds its classes to ``PLUGINS``; the hook
registers them."""

from __future__ import annotations

from typing import Any

from medsynbench import hookimpl

PLUGINS: list[type] = []

from .baselines import ClassicalAugment, CopyReal, Noise  # noqa: E402
from .folder import Folder  # noqa: E402
from .stylegan2 import StyleGAN2  # noqa: E402

PLUGINS.extend([CopyReal, ClassicalAugment, Noise, Folder, StyleGAN2])

from .ldm import LDM  # noqa: E402
from .vqvae2 import VQVAE2  # noqa: E402

PLUGINS.extend([VQVAE2, LDM])

from .controls import Blur, HeldoutReal, LabelSwap, MarkerInject, ModeCollapse, NearCopy  # noqa: E402

PLUGINS.extend([HeldoutReal, LabelSwap, NearCopy, ModeCollapse, Blur, MarkerInject])

# Bring your own: a user's function, diffusers pipeline or MONAI model (nothing is trained).
from .callable_gen import Callable  # noqa: E402
from .diffusers_gen import Diffusers  # noqa: E402
from .monai_gen import Monai  # noqa: E402

PLUGINS.extend([Callable, Diffusers, Monai])


@hookimpl
def register_generators(register: Any) -> None:
    """Register every first-party generator plugin."""
    for cls in PLUGINS:
        register(cls)
