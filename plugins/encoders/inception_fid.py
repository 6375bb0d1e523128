"""``inception-fid``: the standard FID InceptionV3 (2048-d pool3 features), offline.

The network is pytorch-fid's ``InceptionV3`` (the TensorFlow FID Inception, ported, with its
patched blocks), used through the optional dependency ``pytorch-fid``
(``pip install "medsynbench[fid]"``). Its weights file
``pt_inception-2015-12-05-6726825d.pth`` is never downloaded: it is read from the
``weights`` parameter or from the torch hub cache (``$TORCH_HOME/hub/checkpoints/``, where
pytorch-fid itself would have stored it). pytorch-fid downloads inside its builder, so the
builder is called with its ``load_state_dict_from_url`` replaced by a function returning the
local state dict; every layer still comes from the library.

Input handling (identical to pytorch-fid's ``fid_score`` on the same images as PNG files):
uint8 → [0, 1] (``ToTensor``); grayscale repeated to RGB (PIL ``convert("RGB")``); bilinear
resize to 299×299 without antialiasing (``align_corners=False``, pytorch-fid's
``resize_input``); scaled to [-1, 1]. ``resize = "antialias"`` first resizes with
antialiasing instead (cleaner for downsampling, but not comparable to published FIDs).
float32 by default even on CUDA (``amp = false``), because FID is sensitive to precision.

``pretrained = false`` gives randomly initialised weights, only to test the code path: the
features are flagged "random weights — not comparable" and are not FID-Inception features.
A weights file whose sha256 does not start with ``6726825d`` is loaded but flagged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar
from unittest import mock

import numpy as np
import torch
from medsynbench.errors import PluginError, WeightsError
from medsynbench.kinds import Encoder, RunContext
from medsynbench.params import Param, positive_int
from torch import nn

from ._common import encode_batched, resolve_device, sha256_of, to_unit_rgb
from .timm_encoder import RANDOM_WEIGHTS_FLAG

__all__ = ["FID_WEIGHTS_FILE", "FID_WEIGHTS_SHA256_PREFIX", "FID_WEIGHTS_URL", "InceptionFID"]

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_SHA256_PREFIX = "6726825d"  # torch hub convention: the name ends in the sha256 prefix
FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_FILE
)
FID_INPUT_SIZE = 299
FEATURE_DIM = 2048
_hash_cache: dict[tuple[str, int, int], str] = {}


def default_weights_path() -> Path:
    """Where pytorch-fid caches the weights: ``<torch hub dir>/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


def _pytorch_fid_inception() -> Any:
    try:
        from pytorch_fid import inception
    except ImportError as exc:
        raise PluginError(
            "encoder 'inception-fid' needs the optional dependency pytorch-fid: "
            'pip install "medsynbench[fid]" (or pip install "pytorch-fid>=0.3")'
        ) from exc
    needed = ("InceptionV3", "fid_inception_v3", "load_state_dict_from_url", "_inception_v3")
    for attribute in needed:
        if not hasattr(inception, attribute):
            raise PluginError(
                f"encoder 'inception-fid': pytorch_fid.inception has no {attribute!r}; "
                f"this pytorch-fid version is not supported (use pytorch-fid 0.3.x)"
            )
    return inception


def _sha256_cached(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _hash_cache:
        _hash_cache[key] = sha256_of(path)
    return _hash_cache[key]


def build_fid_inception(state: dict[str, torch.Tensor] | None, seed: int = 0) -> nn.Module:
    """pytorch-fid's InceptionV3 (pool3 block only) with ``state``, or random if None."""
    inception = _pytorch_fid_inception()
    built: list[nn.Module] = []
    original_builder = inception._inception_v3

    def keep_skeleton(*args: Any, **kwargs: Any) -> nn.Module:
        built.append(original_builder(*args, **kwargs))
        return built[-1]

    def local_state(*args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        # random mode loads the freshly initialised skeleton's own (FID-patched) weights
        return state if state is not None else built[-1].state_dict()

    with torch.random.fork_rng(devices=[]), \
            mock.patch.object(inception, "_inception_v3", keep_skeleton), \
            mock.patch.object(inception, "load_state_dict_from_url", local_state):
        torch.manual_seed(seed)
        model = inception.InceptionV3(
            [inception.InceptionV3.BLOCK_INDEX_BY_DIM[FEATURE_DIM]],
            resize_input=True,
            normalize_input=True,
        )
    return model.eval()


class InceptionFID(Encoder):
    """The FID InceptionV3 (pytorch-fid), 2048-d pool3 features at 299 px."""

    name: ClassVar[str] = "inception-fid"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = (
        f"FID InceptionV3 pool3 features (2048-d) via pytorch-fid, weights {FID_WEIGHTS_FILE} "
        "from a local file or the torch hub cache"
    )
    parameters: ClassVar[dict[str, Param]] = {
        "weights": Param(
            None, str, f"path to {FID_WEIGHTS_FILE}; default $TORCH_HOME/hub/checkpoints/",
            nullable=True,
        ),
        "pretrained": Param(True, bool, "false: random weights, only to test the code path"),
        "resize": Param(
            "pytorch-fid", str,
            "pytorch-fid: bilinear without antialias (comparable); antialias: antialiased",
            choices=("pytorch-fid", "antialias"),
        ),
        "batch_size": Param(50, int, "images per forward pass", check=positive_int),
        "amp": Param(False, bool, "float16 autocast on CUDA (faster, not bit-comparable)"),
        "seed": Param(0, int, "initialisation seed when pretrained = false"),
    }

    def check(self) -> None:
        """Missing library or weights fail before any work."""
        _pytorch_fid_inception()
        self.weights_path()

    def weights_path(self) -> Path | None:
        """The weights file that will be loaded (None when ``pretrained = false``)."""
        if not self.params["pretrained"]:
            return None
        if self.params["weights"] is not None:
            path = Path(self.params["weights"]).expanduser()
            if not path.is_file():
                raise WeightsError(
                    f"inception-fid: weights file {path} (parameter `weights`) does not exist; "
                    f"it should be {FID_WEIGHTS_FILE} from {FID_WEIGHTS_URL}"
                )
            return path
        path = default_weights_path()
        if not path.is_file():
            raise WeightsError(
                f"inception-fid: FID Inception weights {FID_WEIGHTS_FILE} not found at {path}. "
                f"On a connected machine download {FID_WEIGHTS_URL} (sha256 starts with "
                f"{FID_WEIGHTS_SHA256_PREFIX}), then copy it to {path.parent}/ (the torch hub "
                f"cache, $TORCH_HOME/hub/checkpoints) or pass "
                f'weights = "path/to/{FID_WEIGHTS_FILE}"'
            )
        return path

    def flags(self) -> list[str]:
        """Random weights, or a weights file that is not the standard one."""
        path = self.weights_path()
        if path is None:
            return [RANDOM_WEIGHTS_FLAG]
        digest = _sha256_cached(path)
        if not digest.startswith(FID_WEIGHTS_SHA256_PREFIX):
            return [
                f"inception-fid weights {path.name} have sha256 {digest[:8]}…, not "
                f"{FID_WEIGHTS_SHA256_PREFIX}… — not the standard FID Inception, not comparable"
            ]
        return []

    def model(self) -> nn.Module:
        """The network (built on first use)."""
        cached = getattr(self, "_model", None)
        if cached is not None:
            return cached
        path = self.weights_path()
        state = None
        if path is not None:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise WeightsError(
                    f"inception-fid: cannot read weights file {path}: {exc}"
                ) from exc
        try:
            model = build_fid_inception(state, seed=int(self.params["seed"]))
        except RuntimeError as exc:
            raise WeightsError(
                f"inception-fid: {path} is not the FID Inception state dict ({FID_WEIGHTS_FILE} "
                f"from {FID_WEIGHTS_URL}): {exc}"
            ) from exc
        self._model: nn.Module = model
        return model

    def encode(self, images: np.ndarray, ctx: RunContext) -> np.ndarray:
        """uint8 N×C×H×W → float32 N×2048."""
        model = self.model().to(resolve_device(ctx.device))
        antialias_size = FID_INPUT_SIZE if self.params["resize"] == "antialias" else None

        def forward(batch: torch.Tensor) -> torch.Tensor:
            # the library resizes to 299 (a no-op after the antialiased resize) and maps to [-1, 1]
            pooled = model(to_unit_rgb(batch, antialias_size))[0]
            return pooled.flatten(1)

        return encode_batched(
            images, forward, ctx, name=self.name, batch_size=int(self.params["batch_size"]),
            out_dim=FEATURE_DIM, amp=bool(self.params["amp"]),
        )
