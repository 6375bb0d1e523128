"""``timm:<model>``: pooled features of any timm model, with weights found offline only.

``encoder = "timm:resnet50"`` in a suite sets the ``model`` parameter. With
``pretrained = true`` (the default) the weights come, in this order, from

1. the ``weights`` parameter (a ``.safetensors``/``.pth``/``.bin`` state dict or checkpoint);
2. the Hugging Face hub cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
   ``~/.cache/huggingface/hub``) for the model's ``hf_hub_id``;
3. the torch hub cache (``$TORCH_HOME/hub/checkpoints/``) for the model's legacy URL.

Nothing is ever downloaded: when no file is found a :class:`WeightsError` names the model,
the files looked for and how to place them. ``pretrained = false`` uses timm's random
initialisation (seeded by ``seed``) and every result carries the flag
"random weights — not comparable".

Input handling: uint8 → [0, 1]; grayscale repeated to RGB; antialiased bilinear resize
(no crop) to ``resolution`` (default: the model's pretrained input size); normalised with
the model's pretrained mean/std. Output: ``model.forward`` with the classifier removed
(``num_classes=0``), i.e. the globally pooled pre-logits features.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from medsynbench.errors import ParameterError, WeightsError
from medsynbench.kinds import Encoder, RunContext
from medsynbench.params import Param, did_you_mean, positive_int
from torch import nn

from ._common import encode_batched, resolve_device, to_unit_rgb

__all__ = ["RANDOM_WEIGHTS_FLAG", "TimmEncoder", "find_cached_weights"]

RANDOM_WEIGHTS_FLAG = "random weights — not comparable"
_HF_FILENAMES = ("model.safetensors", "pytorch_model.bin")


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache directory, resolved from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface"
    )
    return Path(home) / "hub"


def _candidates(cfg: Any) -> list[tuple[str, Path | None]]:
    """(where, path or None) for every offline location the weights of ``cfg`` may be in."""
    found: list[tuple[str, Path | None]] = []
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo = cfg.hf_hub_id.split("@")[0]
        cache = hf_hub_cache()
        for filename in (cfg.hf_hub_filename,) if cfg.hf_hub_filename else _HF_FILENAMES:
            hit = try_to_load_from_cache(repo, filename, cache_dir=cache)
            where = cache / f"models--{repo.replace('/', '--')}" / "snapshots" / "*" / filename
            path = Path(hit) if isinstance(hit, str) else None
            found.append((f"Hugging Face cache {where}", path))
    if cfg.url:
        checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
        found.append((f"torch hub cache {checkpoints}", checkpoints / Path(cfg.url).name))
    return found


def find_cached_weights(model_name: str) -> Path:
    """Path of the cached pretrained weights of ``model_name``; WeightsError when absent."""
    import timm  # imported on use: timm (with torchvision) takes seconds to import

    cfg = timm.models.get_pretrained_cfg(model_name, allow_unregistered=False)
    if cfg is None:
        raise WeightsError(
            f"timm model {model_name!r} has no pretrained weights in timm "
            f"{timm.__version__}; pass weights = \"path\" or pretrained = false"
        )
    candidates = _candidates(cfg)
    for _, path in candidates:
        if path is not None and path.is_file():
            return path
    looked = "; ".join(where for where, _ in candidates) or "nowhere (no hub id or URL)"
    sources = []
    if cfg.hf_hub_id:
        sources.append(f"https://huggingface.co/{cfg.hf_hub_id} ({' or '.join(_HF_FILENAMES)})")
    if cfg.url:
        sources.append(cfg.url)
    return _raise_missing(model_name, looked, sources)


def _raise_missing(model_name: str, looked: str, sources: list[str]) -> Path:
    raise WeightsError(
        f"timm model {model_name!r}: pretrained weights not found offline (looked in: {looked}). "
        f"On a connected machine download {' or '.join(sources) or 'the weights'} "
        f"(e.g. `python -c \"import timm; timm.create_model('{model_name}', pretrained=True)\"` "
        f"fills the cache, then copy the cache directory here), and pass "
        f'weights = "path/to/file" or set HF_HOME / TORCH_HOME to the copied cache; '
        f"or use pretrained = false (results flagged '{RANDOM_WEIGHTS_FLAG}')"
    )


class TimmEncoder(Encoder):
    """Pooled features of any timm model (``timm:<model>``), weights offline only."""

    name: ClassVar[str] = "timm"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = (
        "pooled features of any timm model (timm:<model>); weights from a local file or the "
        "HF/torch cache, never downloaded"
    )
    name_argument: ClassVar[str | None] = "model"
    parameters: ClassVar[dict[str, Param]] = {
        "model": Param(Param.REQUIRED, str, "timm model name, e.g. resnet50 or resnet50.a1_in1k"),
        "pretrained": Param(True, bool, "load pretrained weights (false: random, flagged)"),
        "weights": Param(None, str, "local weights file (overrides the caches)", nullable=True),
        "resolution": Param(
            None, int, "square input size; default the model's pretrained size",
            nullable=True, check=positive_int,
        ),
        "batch_size": Param(64, int, "images per forward pass", check=positive_int),
        "amp": Param(True, bool, "float16 autocast on CUDA (ignored on CPU)"),
        "seed": Param(0, int, "initialisation seed when pretrained = false"),
    }

    def check(self) -> None:
        """Unknown model names and missing weights fail before any work."""
        model = self.params["model"]
        import timm

        if not timm.is_model(model.split(".")[0]):
            raise ParameterError(
                f"encoder timm: unknown timm model {model!r}"
                f"{did_you_mean(model, timm.list_models())} "
                f"(timm {timm.__version__}; see timm.list_models())"
            )
        if self.params["pretrained"]:
            self.weights_path()

    def weights_path(self) -> Path | None:
        """The weights file that will be loaded (None for random weights)."""
        if not self.params["pretrained"]:
            return None
        if self.params["weights"] is not None:
            path = Path(self.params["weights"]).expanduser()
            if not path.is_file():
                raise WeightsError(
                    f"timm model {self.params['model']!r}: weights file {path} does not exist "
                    f"(parameter `weights`)"
                )
            return path
        return find_cached_weights(self.params["model"])

    def flags(self) -> list[str]:
        """"random weights — not comparable" when ``pretrained = false``."""
        return [] if self.params["pretrained"] else [RANDOM_WEIGHTS_FLAG]

    def model(self) -> nn.Module:
        """The timm network without classifier, in eval mode (built on first use)."""
        cached = getattr(self, "_model", None)
        if cached is not None:
            return cached
        import timm

        name = self.params["model"]
        path = self.weights_path()
        if path is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(self.params["seed"]))
                model = timm.create_model(name, pretrained=False, num_classes=0)
        else:
            try:
                model = timm.create_model(
                    name, pretrained=True, num_classes=0,
                    pretrained_cfg_overlay={"file": str(path), "source": "timm"},
                )
            except Exception as exc:  # timm raises RuntimeError/KeyError/etc. on bad files
                raise WeightsError(
                    f"timm model {name!r}: cannot load weights from {path}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        self._model: nn.Module = model.eval()
        return self._model

    def input_size(self) -> int:
        """Square resize target in pixels."""
        if self.params["resolution"] is not None:
            return int(self.params["resolution"])
        return int(self.model().pretrained_cfg["input_size"][-1])

    def encode(self, images: np.ndarray, ctx: RunContext) -> np.ndarray:
        """uint8 N×C×H×W → float32 N×d (d = the model's pooled feature size)."""
        device = resolve_device(ctx.device)
        model = self.model().to(device)
        cfg = model.pretrained_cfg
        mean = torch.tensor(cfg.get("mean", (0.485, 0.456, 0.406)), device=device).view(1, 3, 1, 1)
        std = torch.tensor(cfg.get("std", (0.229, 0.224, 0.225)), device=device).view(1, 3, 1, 1)
        size = self.input_size()

        def forward(batch: torch.Tensor) -> torch.Tensor:
            return model((to_unit_rgb(batch, size) - mean) / std)

        with torch.no_grad():
            probe = torch.zeros(1, 3, size, size, device=device)
            out_dim = int(model(probe).shape[-1])
        return encode_batched(
            images, forward, ctx, name=f"timm:{self.params['model']}",
            batch_size=int(self.params["batch_size"]), out_dim=out_dim,
            amp=bool(self.params["amp"]),
        )
