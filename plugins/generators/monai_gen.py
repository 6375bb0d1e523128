"""``monai``: sample a MONAI generative model — a diffusion network and its noise scheduler.

``path`` is either a **bundle** folder, laid out as MONAI bundles are::

    bundle/
      configs/inference.json (or .yaml)   network_def, noise_scheduler[, autoencoder_def,
                                          scale_factor] as MONAI config items ("_target_": ...)
      models/model.pt                     the network's state dict (`weights`)
      models/model_autoencoder.pt         the autoencoder's, for a latent model

or a **checkpoint** file written with ``torch.save`` of a dict holding the same config items
beside ``state_dict`` (and ``autoencoder_state_dict``), read with ``weights_only=True``. The
config items are built by MONAI's own ``ConfigParser`` — the format of MONAI's model zoo — so a
bundle's config runs as MONAI would run it: use bundles you trust.

Sampling runs the scheduler's loop over the network (``DiffusionModelUNet`` or any network
called as ``net(x, timesteps=t[, class_labels=y])``), then decodes with the autoencoder when
there is one and maps ``value_range`` to 0..255. A network with ``num_class_embeds`` draws
dataset class ``c`` as its class ``class_labels[c]`` (default ``c``; ``guidance`` > 1 needs
``null_class``); an unconditional one serves a one-class dataset, or one model per class in
``class_paths``.

A 3-D network (``spatial_dims = 3``; give ``sample_shape``, the noise's spatial shape) makes
volumes that are cut into 2-D images the way ``ct-montage`` cuts real CT: ``images_per_volume``
images of ``slices_per_image`` slices each, evenly spaced along ``slice_axis`` and tiled into
square montages of the dataset's side (1 slice per image: plain slices).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from medsynbench import ImageSet, Param, RunContext
from medsynbench.errors import DataError, GeneratorError, ParameterError, WeightsError
from medsynbench.params import positive

from ..datasets.ct import montage_slices, tile_montages
from .byo import (
    DIGEST,
    ClassSampler,
    match_channels,
    models_digest,
    pin_digest,
    require_module,
    to_uint8,
    write_manifest,
)
from .training import (
    class_seed,
    resolve_device,
    torch_generator,
)

__all__ = ["Monai"]

_CONFIGS = ("inference.json", "inference.yaml", "inference.yml")
_ITEMS = ("network_def", "noise_scheduler")


def _range_check(value: Any) -> str | None:
    ok = (isinstance(value, list) and len(value) == 2
          and all(isinstance(v, int | float) for v in value) and value[0] < value[1])
    return None if ok else f"must be [low, high] with low < high, got {value!r}"


def _shape_check(value: Any) -> str | None:
    ok = value is None or (isinstance(value, list) and value
                           and all(isinstance(v, int) and v > 0 for v in value))
    return None if ok else f"must be a list of positive sides, e.g. [64, 64, 32], got {value!r}"


class Monai(ClassSampler):
    """A MONAI diffusion network + noise scheduler from a bundle or checkpoint (2-D or 3-D)."""

    name: ClassVar[str] = "monai"
    description: ClassVar[str] = (
        "a MONAI generative model (diffusion network + scheduler, optional autoencoder) from "
        "a bundle or checkpoint; 3-D models cut into slices/montages"
    )
    parameters: ClassVar[Mapping[str, Param]] = {
        "path": Param(None, str, "bundle folder or torch.save checkpoint", nullable=True),
        "class_paths": Param(None, dict, "instead of `path`: one unconditional model per "
                             "class, { class_name = bundle or checkpoint, ... }", nullable=True),
        "weights": Param("models/model.pt", str, "bundles: the network's weights"),
        "autoencoder_weights": Param("models/model_autoencoder.pt", str,
                                     "bundles: the autoencoder's weights (latent models)"),
        "value_range": Param([0.0, 1.0], list, "the output intensities that map to 0..255",
                             check=_range_check),
        "sample_shape": Param(None, list, "spatial shape of the noise (needed for 3-D and "
                              "latent models; default: the dataset's H, W)", nullable=True,
                              check=_shape_check),
        "class_labels": Param(None, list, "the model's label for each dataset class",
                              nullable=True),
        "null_class": Param(None, int, "the 'no class' label, for guidance > 1",
                            nullable=True),
        "slice_axis": Param(-1, int, "3-D: the spatial axis slices are cut across",
                            choices=(-3, -2, -1, 0, 1, 2)),
        "images_per_volume": Param(20, int, "3-D: images cut from each volume",
                                   check=positive),
        "slices_per_image": Param(1, int, "3-D: slices tiled into one image (4: 2×2 montages "
                                  "as ct-montage)", choices=(1, 4, 9, 16)),
        "convert_channels": Param(False, bool, "convert RGB ↔ grayscale to the dataset's"),
        "digest": DIGEST,
    }
    sample_parameters: ClassVar[Mapping[str, Param]] = {
        "steps": Param(None, int, "inference steps (none: the scheduler's "
                       "num_train_timesteps)", nullable=True, check=positive, sweepable=True),
        "guidance": Param(1.0, float, "classifier-free guidance (1 = none)", check=positive,
                          sweepable=True),
        "batch_size": Param(8, int, "samples (images or volumes) per network call",
                            check=positive),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._manifest: dict[str, Any] | None = None
        self._loaded: tuple[Path, dict[str, Any]] | None = None

    # ------------------------------------------------------------------ validation
    @property
    def source(self) -> str:
        """The model file(s) or folder(s), for messages."""
        return str(self.params["path"] or ", ".join(self.params["class_paths"].values()))

    def _sources(self) -> list[Path]:
        path, per_class = self.params["path"], self.params["class_paths"]
        if (path is None) == (per_class is None):
            raise ParameterError("generator 'monai': give `path` (a bundle or checkpoint) or "
                                 "`class_paths` (one model per class), not "
                                 + ("both" if path else "neither"))
        paths = [path] if path is not None else list(per_class.values())
        return [Path(str(p)).expanduser() for p in paths]

    def check(self) -> None:
        """Each source exists and is a bundle or a checkpoint file; pin its digest."""
        require_module("monai", "monai", self.name, "MONAI generative networks")
        sources = self._sources()
        for source in sources:
            if not source.exists():
                raise WeightsError(f"generator 'monai': {source} not found; point `path` at a "
                                   "MONAI bundle folder or a torch.save checkpoint")
            if source.is_dir():
                self._bundle_files(source)
        pin_digest(self.params, models_digest(sources), self.name,
                   f"the model at {self.source}")

    def _bundle_files(self, bundle: Path) -> tuple[Path, Path]:
        """The bundle's config and network weights; WeightsError naming a missing one."""
        configs = [bundle / "configs" / name for name in _CONFIGS]
        config = next((c for c in configs if c.is_file()), None)
        if config is None:
            raise WeightsError(f"generator 'monai': {bundle} is not a MONAI bundle: "
                               f"{bundle / 'configs' / 'inference.json'} not found")
        weights = bundle / self.params["weights"]
        if not weights.is_file():
            raise WeightsError(f"generator 'monai': the bundle's weights {weights} not found; "
                               "put the network's state dict there or set `weights`")
        return config, weights

    # ------------------------------------------------------------------ loading
    def _read(self, source: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
        """(config items, network state dict, autoencoder state dict or None)."""
        if source.is_dir():
            bundle = require_module("monai.bundle", "monai", self.name, "MONAI bundles")
            config_file, weights = self._bundle_files(source)
            config = bundle.ConfigParser.load_config_file(str(config_file))
            state = _state_dict(_torch_load(weights), weights)
            ae_file = source / self.params["autoencoder_weights"]
            ae_state = None
            if "autoencoder_def" in config:
                if not ae_file.is_file():
                    raise WeightsError(f"generator 'monai': the bundle defines autoencoder_def "
                                       f"but its weights {ae_file} are not found; set "
                                       "`autoencoder_weights`")
                ae_state = _state_dict(_torch_load(ae_file), ae_file)
            return dict(config), state, ae_state
        checkpoint = _torch_load(source)
        if not isinstance(checkpoint, dict) or not all(
                k in checkpoint for k in (*_ITEMS, "state_dict")):
            keys = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint)
            raise GeneratorError(
                f"generator 'monai': checkpoint {source} holds {keys}; it needs network_def and "
                "noise_scheduler (MONAI config items) and state_dict — torch.save({'network_def':"
                " {...}, 'noise_scheduler': {...}, 'state_dict': net.state_dict()}, path)"
            )
        config = {k: v for k, v in checkpoint.items() if not k.endswith("state_dict")}
        return config, checkpoint["state_dict"], checkpoint.get("autoencoder_state_dict")

    def _model(self, source: Path, device: torch.device) -> dict[str, Any]:
        """network, scheduler, autoencoder (or None) and scale_factor, built and loaded."""
        if self._loaded is not None and self._loaded[0] == source:
            return self._loaded[1]
        self._loaded = None
        config, state, ae_state = self._read(source)
        missing = [k for k in _ITEMS if k not in config]
        if missing:
            raise GeneratorError(f"generator 'monai': {source} defines no {', '.join(missing)} "
                                 f"(it has {', '.join(sorted(config))})")
        bundle = require_module("monai.bundle", "monai", self.name, "MONAI bundles")
        parser = bundle.ConfigParser(config)
        try:
            network = parser.get_parsed_content("network_def")
            scheduler = parser.get_parsed_content("noise_scheduler")
            network.load_state_dict(state)
            autoencoder = None
            if "autoencoder_def" in config:
                if ae_state is None:
                    raise GeneratorError(f"generator 'monai': {source} defines autoencoder_def "
                                         "but holds no autoencoder_state_dict")
                autoencoder = parser.get_parsed_content("autoencoder_def")
                autoencoder.load_state_dict(ae_state)
                autoencoder.to(device).eval()
            # Through the parser: a bundle may write "@spatial_dims" or "$1.0 / 5.5" there.
            model = {"network": network.to(device).eval(), "scheduler": scheduler,
                     "autoencoder": autoencoder,
                     "spatial_dims": int(parser.get_parsed_content(
                         "network_def#spatial_dims", default=2)),
                     "in_channels": int(parser.get_parsed_content(
                         "network_def#in_channels", default=1)),
                     "scale_factor": float(parser.get_parsed_content("scale_factor",
                                                                     default=1.0)),
                     "conditional": bool(parser.get_parsed_content(
                         "network_def#num_class_embeds", default=None))}
        except (RuntimeError, KeyError, ValueError, TypeError, ImportError) as exc:
            raise GeneratorError(f"generator 'monai': cannot build the model in {source}: "
                                 f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
        self._loaded = (source, model)
        return model

    # ------------------------------------------------------------------ sampling
    def _source(self, cls: int) -> Path:
        per_class = self.params["class_paths"]
        if per_class is None:
            return Path(self.params["path"]).expanduser()
        return Path(per_class[self._class_names[cls]]).expanduser()

    @property
    def _class_names(self) -> list[str]:
        assert self._manifest is not None
        names: list[str] = self._manifest["class_names"]
        return names

    @torch.inference_mode()
    def _draw(self, model: dict[str, Any], cls: int, n: int, chunk: int, seed: int,
              device: torch.device, params: Mapping[str, Any]) -> torch.Tensor:
        """``n`` raw samples (N×C×spatial) of class ``cls``, in the model's value range."""
        network, scheduler = model["network"], model["scheduler"]
        spatial = self._spatial_shape(model)
        noise = torch.randn((n, model["in_channels"], *spatial),
                            generator=torch_generator(seed, cls, chunk))
        x = noise.to(device)
        steps = params["steps"] or scheduler.num_train_timesteps
        if steps > scheduler.num_train_timesteps:
            raise GeneratorError(f"generator 'monai': steps = {steps} but the scheduler has "
                                 f"{scheduler.num_train_timesteps} training timesteps; lower it")
        scheduler.set_timesteps(steps, device=device)
        step_gen = torch.Generator(device=device)
        step_gen.manual_seed(class_seed(seed, cls, chunk, 1))
        kwargs: dict[str, torch.Tensor] = {}
        guidance, null = params["guidance"], self.params["null_class"]
        if model["conditional"]:
            label = self.params["class_labels"][cls] if self.params["class_labels"] else cls
            kwargs["class_labels"] = torch.full((n,), int(label), device=device)
        if guidance != 1.0 and (not model["conditional"] or null is None):
            raise GeneratorError("generator 'monai': guidance != 1 needs a class-conditioned "
                                 "network and `null_class`, its 'no class' label")
        try:
            for t in scheduler.timesteps:
                timesteps = torch.full((n,), int(t), device=device, dtype=torch.long)
                out = network(x, timesteps=timesteps, **kwargs)
                if guidance != 1.0:
                    uncond = network(x, timesteps=timesteps,
                                     class_labels=torch.full((n,), int(null), device=device))
                    out = uncond + guidance * (out - uncond)
                x, _ = scheduler.step(out, int(t), x, generator=step_gen)
            if model["autoencoder"] is not None:
                x = model["autoencoder"].decode_stage_2_outputs(x / model["scale_factor"])
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise GeneratorError(
                f"generator 'monai': the model at {self.source} failed on noise of shape "
                f"{tuple(noise.shape)}: {type(exc).__name__}: {first}; check `sample_shape` "
                "(its sides must suit the network's downsampling)"
            ) from exc
        return x.float().cpu()

    def _spatial_shape(self, model: dict[str, Any]) -> list[int]:
        shape = self.params["sample_shape"]
        if shape is None and (model["spatial_dims"] == 3 or model["autoencoder"] is not None):
            raise ParameterError("generator 'monai': a 3-D or latent model needs `sample_shape`,"
                                 " the spatial shape of its noise (e.g. [64, 64, 32])")
        if shape is None:
            shape = list(self._manifest["image_shape"][1:])  # type: ignore[index]
        if len(shape) != model["spatial_dims"]:
            raise ParameterError(f"generator 'monai': sample_shape {shape} has {len(shape)} "
                                 f"sides but the network is {model['spatial_dims']}-D")
        return list(shape)

    def _to_images(self, raw: torch.Tensor, model: dict[str, Any]) -> np.ndarray:
        """Raw samples → uint8 N×C×H×W: 2-D as they are, 3-D cut into slices or montages."""
        low, high = self.params["value_range"]
        pixels = to_uint8(raw.numpy(), low, high)
        if model["spatial_dims"] == 2:
            return pixels
        side = self._manifest["image_shape"][2]  # type: ignore[index]
        per_volume, per_image = self.params["images_per_volume"], self.params["slices_per_image"]
        images = []
        for volume in pixels[:, 0]:  # channel 0: CT volumes have one
            axial = np.moveaxis(volume, self.params["slice_axis"], 0)
            try:
                slices = montage_slices(len(axial), per_volume, per_image, volume="a sample")
                images.append(tile_montages(axial, slices, side))
            except DataError as exc:
                raise GeneratorError(f"generator 'monai': {exc}") from None
        return np.concatenate(images)

    def _class_images(self, cls: int, n: int, seed: int, device: torch.device,
                      params: Mapping[str, Any]) -> np.ndarray:
        model = self._model(self._source(cls), device)
        per_sample = self.params["images_per_volume"] if model["spatial_dims"] == 3 else 1
        samples = math.ceil(n / per_sample)
        out = []
        for chunk, start in enumerate(range(0, samples, params["batch_size"])):
            size = min(params["batch_size"], samples - start)
            out.append(self._to_images(self._draw(model, cls, size, chunk, seed, device, params),
                                       model))
        return self._fit_dataset(np.concatenate(out)[:n])

    def _fit_dataset(self, images: np.ndarray) -> np.ndarray:
        channels, height, width = self._manifest["image_shape"]  # type: ignore[index]
        if images.shape[2:] != (height, width):
            raise GeneratorError(
                f"generator 'monai': the model at {self.source} makes {images.shape[2]}×"
                f"{images.shape[3]} images but the dataset's are {height}×{width}; set "
                "`sample_shape` or the dataset's `resolution` to match"
            )
        return match_channels(images, channels, self.params["convert_channels"],
                              f"generator 'monai': the model at {self.source}")

    # ------------------------------------------------------------------ the Generator API
    def fit(
        self, train: ImageSet, class_names: Sequence[str], workdir: Path, ctx: RunContext
    ) -> dict[str, Any]:
        """Build each model and draw one image per class: it must match the dataset."""
        per_class, labels = self.params["class_paths"], self.params["class_labels"]
        if per_class is not None and set(per_class) != set(class_names):
            raise GeneratorError("generator 'monai': `class_paths` must name each class of the "
                                 f"dataset once ({', '.join(class_names)}), got "
                                 f"{', '.join(per_class)}")
        if labels is not None and len(labels) != len(class_names):
            raise GeneratorError(f"generator 'monai': `class_labels` has {len(labels)} labels "
                                 f"but the dataset has {len(class_names)} classes")
        self._manifest = {"path": self.source, "digest": self.params["digest"],
                          "class_names": list(class_names),
                          "image_shape": list(train.image_shape)}
        device = resolve_device(ctx)
        probe = self.validate_sample({"steps": 2, "batch_size": 1})
        with ctx.progress("monai: checking the model", total=len(class_names)) as task:
            for cls in range(len(class_names)):
                model = self._model(self._source(cls), device)
                if per_class is None and not model["conditional"] and len(class_names) > 1:
                    raise GeneratorError(
                        f"generator 'monai': the network at {self.source} is unconditional (no "
                        f"num_class_embeds), so it cannot make labelled images of "
                        f"{len(class_names)} classes; give one model per class as class_paths"
                    )
                self._class_images(cls, 1, ctx.seed, device, probe)
                task.advance(1)
        write_manifest(workdir, self._manifest)
        return {"steps": 0, "train_seconds": 0.0}


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files, non-tensor objects
        raise GeneratorError(f"generator 'monai': cannot read {path} with torch.load("
                             f"weights_only=True): {str(exc).splitlines()[0]}; save state "
                             "dicts and plain config dicts, not pickled modules") from exc


def _state_dict(loaded: Any, path: Path) -> dict[str, Any]:
    """A state dict, also when wrapped as {"model": ...} or {"state_dict": ...}."""
    if isinstance(loaded, dict) and all(isinstance(v, torch.Tensor) for v in loaded.values()):
        return loaded
    for key in ("state_dict", "model", "network"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            return dict(loaded[key])
    raise GeneratorError(f"generator 'monai': {path} holds no state dict")
