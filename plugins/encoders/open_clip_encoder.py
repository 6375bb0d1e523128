"""``open-clip:<model>``: image embeddings of any open_clip model from a local checkpoint.

CLIP-family image embeddings are the feature space several peers report FD, KID and PRDC in
(dgm-eval's ``clip``, CheXGenBench's domain CLIPs such as BiomedCLIP). Any open_clip model
works, from local files only (``pip install "medsynbench[clip]"``):

- ``model = "ViT-B-32"`` (any name in ``open_clip.list_models()``) with ``weights`` = a
  checkpoint file of that architecture (``open_clip_pytorch_model.bin``,
  ``open_clip_model.safetensors``, an OpenAI ``.pt`` …). ``tag`` optionally names the
  open_clip pretrained tag the file is (e.g. ``laion2b_s34b_b79k``): its preprocessing
  mean/std are used (SigLIP models differ from OpenAI's) — nothing is downloaded for it;
- ``weights`` = a folder holding ``open_clip_config.json`` and a checkpoint — the layout of
  every open_clip model on the Hugging Face hub (a copied ``hf-hub:`` snapshot, including
  custom architectures); ``model`` may then be omitted, the folder's config is used.

A missing file or folder, or a folder without config or checkpoint, is a
:class:`WeightsError` naming the path, the architecture and where its published weights are
(the tags' Hugging Face repositories). open_clip itself would silently fall back to random
weights for a folder without a checkpoint; this plugin refuses. ``pretrained = false`` builds
the architecture with seeded random weights, flagged "random weights — not comparable".

Output: ``model.encode_image`` — the projected image embedding (``embed_dim``), not
L2-normalised. Input handling is the shared one (:mod:`._common`: antialiased bilinear resize
to the model's image size without crop, where open_clip's own transform resizes the short
side bicubically and centre-crops), then the model's mean/std.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from medsynbench.errors import ParameterError, PluginError, WeightsError
from medsynbench.kinds import Encoder, RunContext
from medsynbench.params import Param, did_you_mean, positive_int
from torch import nn

from ._common import encode_batched, resolve_device, to_unit_rgb
from .timm_encoder import RANDOM_WEIGHTS_FLAG

__all__ = ["CHECKPOINT_NAMES", "OpenCLIPEncoder"]

CONFIG_NAME = "open_clip_config.json"
# A folder's checkpoint, in open_clip's own order of preference (factory._find_checkpoint_in_dir).
CHECKPOINT_NAMES = (
    "open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin", "open_clip_pytorch_model.pth", "model.safetensors",
    "pytorch_model.bin", "pytorch_model.pth", "model.pth",
)


def _open_clip() -> Any:
    try:
        import open_clip
    except ImportError as exc:
        raise PluginError(
            "encoder 'open-clip' needs the optional dependency open_clip_torch: "
            'pip install "medsynbench[clip]" (or pip install "open_clip_torch>=2.20")'
        ) from exc
    return open_clip


def _published(open_clip: Any, model: str, shown: int = 6) -> str:
    """Where the published weights of ``model`` are, for the missing-file message."""
    tags = open_clip.list_pretrained_tags_by_model(model)
    sources = []
    for tag in tags[:shown]:
        cfg = open_clip.get_pretrained_cfg(model, tag)
        hub = (cfg.get("hf_hub") or "").strip("/")
        sources.append(f"tag {tag}: " + (f"https://huggingface.co/{hub}" if hub
                                         else cfg.get("url") or "no public file"))
    if len(tags) > shown:
        sources.append(f"{len(tags) - shown} more in "
                       f"open_clip.list_pretrained_tags_by_model({model!r})")
    return "; ".join(sources) or "the model's authors (open_clip lists no published tag)"


class OpenCLIPEncoder(Encoder):
    """Image embeddings of any open_clip model (``open-clip:<model>``), local weights only."""

    name: ClassVar[str] = "open-clip"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = (
        "image embeddings (encode_image) of any open_clip model from a local checkpoint file "
        "or open_clip_config.json folder; never downloaded"
    )
    name_argument: ClassVar[str | None] = "model"
    parameters: ClassVar[dict[str, Param]] = {
        "model": Param(None, str, "open_clip architecture, e.g. ViT-B-32 (optional when "
                       "weights is a folder with open_clip_config.json)", nullable=True),
        "weights": Param(None, str, "checkpoint file of that architecture, or a folder with "
                         "open_clip_config.json and a checkpoint", nullable=True),
        "tag": Param(None, str, "open_clip pretrained tag the weights file is (for its "
                     "mean/std only; nothing is downloaded)", nullable=True),
        "pretrained": Param(True, bool, "load the weights (false: random, flagged)"),
        "resolution": Param(None, int, "square input size; default the model's image size",
                            nullable=True, check=positive_int),
        "batch_size": Param(64, int, "images per forward pass", check=positive_int),
        "amp": Param(True, bool, "float16 autocast on CUDA (ignored on CPU)"),
        "seed": Param(0, int, "initialisation seed when pretrained = false"),
    }

    def check(self) -> None:
        """Missing library, unknown architecture or missing weights fail before any work."""
        open_clip = _open_clip()
        model, tag = self.params["model"], self.params["tag"]
        folder = self._folder()
        if model is None and folder is None:
            raise ParameterError(
                "encoder open-clip: name the architecture (model = \"ViT-B-32\", or "
                "encoder = \"open-clip:ViT-B-32\") or pass weights = a folder holding "
                f"{CONFIG_NAME}")
        if model is not None and folder is None and model not in open_clip.list_models():
            raise ParameterError(
                f"encoder open-clip: unknown open_clip model {model!r}"
                f"{did_you_mean(model, open_clip.list_models())} (see open_clip.list_models(); "
                f"a custom architecture is a folder with {CONFIG_NAME})")
        if tag is not None and model is not None and folder is None and \
                tag not in open_clip.list_pretrained_tags_by_model(model):
            raise ParameterError(
                f"encoder open-clip: {model!r} has no pretrained tag {tag!r}; its tags: "
                f"{', '.join(open_clip.list_pretrained_tags_by_model(model)) or 'none'}")
        self.weights_path()

    def _folder(self) -> Path | None:
        weights = self.params["weights"]
        if weights is None:
            return None
        path = Path(weights).expanduser()
        return path if path.is_dir() else None

    def weights_path(self) -> Path | None:
        """The checkpoint file that will be loaded (None for random weights)."""
        if not self.params["pretrained"]:
            return None
        open_clip = _open_clip()
        model = self.params["model"]
        if self.params["weights"] is None:
            raise WeightsError(
                f"encoder open-clip: model {model!r} needs a local checkpoint — pass weights = "
                f"\"path/to/open_clip_pytorch_model.bin\" (or a folder with {CONFIG_NAME}); "
                f"published weights: {_published(open_clip, model)}; or pretrained = false "
                f"(results flagged '{RANDOM_WEIGHTS_FLAG}')")
        path = Path(self.params["weights"]).expanduser()
        if path.is_dir():
            if not (path / CONFIG_NAME).is_file():
                raise WeightsError(
                    f"encoder open-clip: weights folder {path} has no {CONFIG_NAME}; a folder "
                    "must be an open_clip model as published on the Hugging Face hub (config "
                    f"and checkpoint), or pass the checkpoint file with model = \"<arch>\"")
            for name in CHECKPOINT_NAMES:
                if (path / name).is_file():
                    return path / name
            raise WeightsError(
                f"encoder open-clip: weights folder {path} has {CONFIG_NAME} but no checkpoint "
                f"({', '.join(CHECKPOINT_NAMES[:3])}, …); copy the model's weights file there")
        if not path.is_file():
            where = _published(open_clip, model) if model else "the model's Hugging Face page"
            raise WeightsError(
                f"encoder open-clip: weights file {path} (parameter `weights`) does not exist; "
                f"it should be a checkpoint of {model!r} (a repository's "
                "open_clip_model.safetensors or open_clip_pytorch_model.bin; published weights: "
                f"{where}), downloaded on a connected machine and copied here")
        return path

    def flags(self) -> list[str]:
        """"random weights — not comparable" when ``pretrained = false``."""
        return [] if self.params["pretrained"] else [RANDOM_WEIGHTS_FLAG]

    def model(self) -> nn.Module:
        """The open_clip model in eval mode (built on first use)."""
        cached: nn.Module | None = getattr(self, "_model", None)
        if cached is not None:
            return cached
        open_clip = _open_clip()
        folder, path = self._folder(), self.weights_path()
        name = f"local-dir:{folder}" if folder is not None else self.params["model"]
        preprocess = None
        if self.params["tag"] is not None and folder is None:
            cfg = open_clip.get_pretrained_cfg(self.params["model"], self.params["tag"])
            preprocess = {"mean": cfg["mean"], "std": cfg["std"]} if "mean" in cfg else None
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(self.params["seed"]))
                model = open_clip.create_model(
                    name, pretrained=None if folder is not None or path is None else str(path),
                    force_preprocess_cfg=preprocess, load_weights=path is not None,
                    pretrained_text=False)  # never fetch a separate text tower
        except Exception as exc:  # open_clip raises RuntimeError/ValueError/OSError
            raise WeightsError(
                f"encoder open-clip: cannot build {name!r} from {path}: "
                f"{type(exc).__name__}: {exc} — is the file a checkpoint of this architecture?"
            ) from exc
        built: nn.Module = model.eval()
        self._model = built
        return built

    def _visual(self) -> Any:
        """The image tower (open_clip types it loosely)."""
        return self.model().visual

    def input_size(self) -> int:
        """Square resize target in pixels."""
        if self.params["resolution"] is not None:
            return int(self.params["resolution"])
        size = self._visual().image_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    def encode(self, images: np.ndarray, ctx: RunContext) -> np.ndarray:
        """uint8 N×C×H×W → float32 N×embed_dim."""
        device = resolve_device(ctx.device)
        model: Any = self.model().to(device)
        cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
        mean = torch.tensor(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073)),
                            device=device).view(1, 3, 1, 1)
        std = torch.tensor(cfg.get("std", (0.26862954, 0.26130258, 0.27577711)),
                           device=device).view(1, 3, 1, 1)
        size = self.input_size()

        def forward(batch: torch.Tensor) -> torch.Tensor:
            embedding: torch.Tensor = model.encode_image((to_unit_rgb(batch, size) - mean) / std)
            return embedding

        with torch.no_grad():
            probe = torch.zeros(1, 3, size, size, device=device)
            out_dim = int(model.encode_image(probe).shape[-1])
        return encode_batched(
            images, forward, ctx, name=f"open-clip:{self.params['model'] or 'local'}",
            batch_size=int(self.params["batch_size"]), out_dim=out_dim,
            amp=bool(self.params["amp"]),
        )

