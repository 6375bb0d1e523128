"""First-party dataset plugins, registered by the ``register_datasets`` hook below."""

from __future__ import annotations

from typing import Any

from medsynbench import hookimpl

from .chexpert import CheXpertPE
from .ct import CTMontage
from .folders import LC25000, BcssLizard, ImageFolder, KaggleCXR, Kather2016
from .lungpet import LungPetCTDx
from .medmnist import MedMNIST, PathMNIST, PneumoniaMNIST
from .phantom_ct import PhantomCT
from .phantom_pathology import PhantomPathology
from .phantom_xray import PhantomXray

PLUGINS: list[type] = [
    PhantomXray,
    PhantomPathology,
    PhantomCT,
    MedMNIST,
    PneumoniaMNIST,
    PathMNIST,
    Kather2016,
    LC25000,
    KaggleCXR,
    BcssLizard,
    CheXpertPE,
    CTMontage,
    LungPetCTDx,
    ImageFolder,
]


@hookimpl
def register_datasets(register: Any) -> None:
    """Register every first-party dataset plugin."""
    for cls in PLUGINS:
        register(cls)


# `medsynbench data ...` commands: the hook implementation lives in .commands.
from .commands import register_commands  # noqa: E402

__all__ = ["PLUGINS", "register_commands", "register_datasets"]
