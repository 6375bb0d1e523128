"""``diffusers``: sample a local diffusers pipeline folder (one saved with ``save_pretrained``).

Three kinds of pipeline, told apart from the folder's ``model_index.json`` and its UNet's
config:

- **text** (a ``text_encoder``/``tokenizer``, e.g. a fine-tuned Stable Diffusion): ``prompt``
  is one template with ``{class_name}`` (``"a chest X-ray showing {class_name}"``) or one prompt
  per class; the pipeline is asked for images of the dataset's size (``height``/``width``).
- **class** (a UNet with ``num_class_embeds``, or a DiT pipeline): dataset class ``c`` is the
  model's class ``class_labels[c]`` (default ``c``). A UNet pipeline that cannot take labels
  itself (``DDPMPipeline``) is sampled by this plugin's own loop over the pipeline's scheduler,
  UNet and, where present, ``vae``/``vqvae`` decoder; ``guidance`` > 1 needs ``null_class``,
  the label the model was trained with for "no class".
- **none** (unconditional): one pipeline per class, ``class_paths = { normal = "models/n",
  pneumonia = "models/p" }``; a single unconditional ``path`` only for a one-class dataset.

Nothing is trained: ``fit`` loads each pipeline and draws one image per class, so a folder
that is not a pipeline, a pipeline whose images differ from the dataset's in size or channels
(``convert_channels`` converts RGB ↔ grayscale on request), or a text pipeline without prompts
fails there with one message and nothing cached. Every image has its own seeded generator, so
an image does not depend on ``batch_size``. ``scheduler`` swaps in another diffusers scheduler
(by class name, built from the pipeline's scheduler config); ``steps`` and ``guidance`` are
sweepable. Loading is offline (``local_files_only``), and never runs code from the folder.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from medsynbench import ImageSet, Param, RunContext
from medsynbench.errors import GeneratorError, ParameterError, WeightsError
from medsynbench.params import did_you_mean, positive

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
from .training import resolve_device, torch_generator

__all__ = ["Diffusers"]

PLACEHOLDER = "{class_name}"
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_NOT_A_PIPELINE = ("save one with pipeline.save_pretrained(folder); a bare model folder "
                   "(config.json + weights) is not a pipeline")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GeneratorError(f"generator 'diffusers': cannot read {path}: {exc}") from exc
    return data


def _index(folder: Path) -> dict[str, Any]:
    """The folder's model_index.json, or GeneratorError: not a diffusers pipeline."""
    if not folder.is_dir():
        raise WeightsError(
            f"generator 'diffusers': pipeline folder {str(folder)!r} not found; point `path` at "
            f"a folder written by pipeline.save_pretrained()"
        )
    path = folder / "model_index.json"
    if not path.is_file():
        raise GeneratorError(
            f"generator 'diffusers': {folder} is not a diffusers pipeline: it has no "
            f"model_index.json; {_NOT_A_PIPELINE}"
        )
    return _read_json(path)


def _components(index: Mapping[str, Any]) -> dict[str, str]:
    """Component name → library of the components a pipeline really has (non-null)."""
    return {k: v[0] for k, v in index.items()
            if isinstance(v, list) and len(v) == 2 and v[0] is not None}


def _conditioning(folder: Path, index: Mapping[str, Any]) -> str:
    """"text", "class" or "none", from the index and the denoiser's config."""
    components = _components(index)
    if "text_encoder" in components or "tokenizer" in components:
        return "text"
    if index.get("_class_name") == "DiTPipeline":
        return "class"
    config = folder / "unet" / "config.json"
    unet = _read_json(config) if config.is_file() else {}
    if unet.get("num_class_embeds") or unet.get("class_embed_type"):
        return "class"
    return "none"


@contextmanager
def _quiet() -> Iterator[None]:
    """diffusers/transformers logging at error level, no loading progress bars, while inside."""
    loggers = [logging.getLogger(name) for name in ("diffusers", "transformers")]
    levels = [lg.level for lg in loggers]
    diffusers = require_module("diffusers", "diffusion", "diffusers", "to load pipelines")
    bars = diffusers.utils.logging.is_progress_bar_enabled()
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    diffusers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        if bars:
            diffusers.utils.logging.enable_progress_bar()


def _scheduler_check(value: Any) -> str | None:
    if value is None:
        return None
    names = value if isinstance(value, list) else [value]
    diffusers = require_module("diffusers", "diffusion", "diffusers", "to load pipelines")
    known = sorted(n for n in dir(diffusers) if n.endswith("Scheduler") and n != "Scheduler")
    for name in names:
        if name not in known:
            examples = ", ".join(k for k in known if k.startswith(("DDIM", "DPM", "Euler")))
            return (f"{name!r} is not a diffusers scheduler{did_you_mean(str(name), known)} "
                    f"(e.g. {examples})")
    return None


class Diffusers(ClassSampler):
    """A local diffusers pipeline folder: unconditional per class, class-labelled or prompted."""

    name: ClassVar[str] = "diffusers"
    description: ClassVar[str] = (
        "a local diffusers pipeline folder (unconditional per class, class-labelled, or "
        "text-prompted), sampled offline"
    )
    parameters: ClassVar[Mapping[str, Param]] = {
        "path": Param(None, str, "the pipeline folder (written by save_pretrained)",
                      nullable=True),
        "class_paths": Param(None, dict, "instead of `path`: one unconditional pipeline "
                             "folder per class, { class_name = folder, ... }", nullable=True),
        "prompt": Param(None, (str, list), "text pipelines: a template with {class_name}, or "
                        "one prompt per class", nullable=True),
        "negative_prompt": Param(None, str, "text pipelines: the negative prompt",
                                 nullable=True),
        "class_labels": Param(None, list, "class pipelines: the model's label for each "
                              "dataset class (default 0, 1, ...)", nullable=True),
        "null_class": Param(None, int, "class pipelines with their own loop: the 'no class' "
                            "label used for guidance > 1", nullable=True),
        "convert_channels": Param(False, bool, "convert RGB ↔ grayscale to the dataset's "
                                  "channels; off so a mismatch is reported"),
        "dtype": Param("float32", str, "weights' dtype (float16/bfloat16 on a GPU)",
                       choices=tuple(_DTYPES)),
        "digest": DIGEST,
    }
    sample_parameters: ClassVar[Mapping[str, Param]] = {
        "steps": Param(50, int, "inference steps", check=positive, sweepable=True),
        "guidance": Param(None, float, "guidance scale (none: the pipeline's default; 1 = no "
                          "guidance)", nullable=True, check=positive, sweepable=True),
        "scheduler": Param(None, str, "a diffusers scheduler class name, e.g. "
                           "DPMSolverMultistepScheduler (none: the pipeline's own)",
                           nullable=True, check=_scheduler_check, sweepable=True),
        "batch_size": Param(16, int, "images per pipeline call", check=positive),
    }

    conditioning: str  # "text", "class" or "none": resolved by check()

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._manifest: dict[str, Any] | None = None
        self._loaded: tuple[Path, Any] | None = None

    # ------------------------------------------------------------------ validation
    @property
    def source(self) -> str:
        """The folder(s), for messages."""
        return str(self.params["path"] or ", ".join(self.params["class_paths"].values()))

    def _folders(self) -> list[Path]:
        """The pipeline folders: ``path``, or those of ``class_paths`` in its order."""
        path, per_class = self.params["path"], self.params["class_paths"]
        if (path is None) == (per_class is None):
            raise ParameterError("generator 'diffusers': give `path` (one pipeline folder) or "
                                 "`class_paths` (one unconditional pipeline per class), not "
                                 + ("both" if path else "neither"))
        if per_class is not None and (not per_class or not all(
                isinstance(v, str) for v in per_class.values())):
            raise ParameterError("generator 'diffusers': `class_paths` maps each class name to "
                                 "a pipeline folder: { normal = \"models/normal\", ... }")
        folders = [path] if per_class is None else list(per_class.values())
        return [Path(folder).expanduser() for folder in folders]

    def check(self) -> None:
        """Read each folder's model_index.json, resolve the conditioning, pin the digest."""
        require_module("diffusers", "diffusion", self.name, "to load pipelines")
        folders = self._folders()
        kinds = {_conditioning(f, _index(f)) for f in folders}
        kind = sorted(kinds)[0]
        if self.params["class_paths"] is not None and kinds != {"none"}:
            raise ParameterError(
                f"generator 'diffusers': `class_paths` is for unconditional pipelines, one per "
                f"class, but some are {'/'.join(sorted(kinds - {'none'}))}-conditioned; give a "
                "conditioned pipeline as `path`"
            )
        prompt = self.params["prompt"]
        if kind == "text" and prompt is None:
            raise ParameterError(
                f"generator 'diffusers': {self.source} is a text-conditioned pipeline "
                f"and needs `prompt`: a template such as \"a chest X-ray showing "
                f"{PLACEHOLDER}\", or a list of one prompt per class"
            )
        if kind != "text" and (prompt is not None or self.params["negative_prompt"]):
            raise ParameterError(f"generator 'diffusers': `prompt` is for text-conditioned "
                                 f"pipelines; {self.source} is {kind}-conditioned")
        if kind == "text":
            for component, library in _components(_index(folders[0])).items():
                require_module(library, "diffusion", self.name,
                               f"the pipeline's {component} is a {library} model")
        self.conditioning = kind
        pin_digest(self.params, models_digest(folders), self.name,
                   f"the pipeline(s) at {self.source}")

    # ------------------------------------------------------------------ loading
    def _folder(self, cls: int, class_names: Sequence[str]) -> Path:
        per_class = self.params["class_paths"]
        if per_class is None:
            return Path(self.params["path"]).expanduser()
        return Path(per_class[class_names[cls]]).expanduser()

    def _pipeline(self, folder: Path, device: torch.device) -> Any:
        """The pipeline at ``folder`` on ``device`` (one kept loaded at a time)."""
        if self._loaded is not None and self._loaded[0] == folder:
            return self._loaded[1]
        self._loaded = None  # release the previous class's pipeline first
        dtype = _DTYPES[self.params["dtype"]]
        if dtype != torch.float32 and device.type == "cpu":
            raise GeneratorError(f"generator 'diffusers': dtype {self.params['dtype']} needs a "
                                 "GPU; use dtype = \"float32\" on the CPU")
        _index(folder)
        diffusers = require_module("diffusers", "diffusion", self.name, "to load pipelines")
        with _quiet():
            try:
                # float32 is the default; only other dtypes are named (the keyword changed
                # name across diffusers versions: torch_dtype still works, with a warning).
                typed = {} if dtype == torch.float32 else {"torch_dtype": dtype}
                pipe = diffusers.DiffusionPipeline.from_pretrained(
                    folder, local_files_only=True, **typed)
            except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
                raise GeneratorError(
                    f"generator 'diffusers': diffusers cannot load the pipeline in {folder}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        pipe.set_progress_bar_config(disable=True)
        pipe.to(device)
        self._loaded = (folder, pipe)
        return pipe

    # ------------------------------------------------------------------ sampling
    def _class_images(self, cls: int, n: int, seed: int, device: torch.device,
                      params: Mapping[str, Any]) -> np.ndarray:
        """``n`` uint8 images of dataset class ``cls`` (N×C×H×W, the model's own channels)."""
        manifest = self._manifest
        assert manifest is not None
        class_names = manifest["class_names"]
        pipe = self._pipeline(self._folder(cls, class_names), device)
        if params["scheduler"]:
            diffusers = require_module("diffusers", "diffusion", self.name, "schedulers")
            scheduler_cls = getattr(diffusers, params["scheduler"])
            if type(pipe.scheduler) is not scheduler_cls:
                pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config)
        out = []
        for start in range(0, n, params["batch_size"]):
            size = min(params["batch_size"], n - start)
            gens = [torch_generator(seed, cls, start + i) for i in range(size)]
            with _quiet(), torch.inference_mode():
                out.append(self._batch(pipe, cls, size, gens, device, params))
        return np.concatenate(out)

    def _batch(self, pipe: Any, cls: int, size: int, gens: list[torch.Generator],
               device: torch.device, params: Mapping[str, Any]) -> np.ndarray:
        accepted = inspect.signature(pipe.__call__).parameters
        if self.conditioning == "class" and "class_labels" not in accepted:
            return self._class_loop(pipe, cls, size, gens, device, params)
        kwargs: dict[str, Any] = {"num_inference_steps": params["steps"], "generator": gens,
                                  "output_type": "np"}
        if params["guidance"] is not None:
            if "guidance_scale" not in accepted:
                raise GeneratorError(f"generator 'diffusers': {type(pipe).__name__} takes no "
                                     "guidance scale; remove `guidance`")
            kwargs["guidance_scale"] = params["guidance"]
        if self.conditioning == "text":
            height, width = self._manifest["image_shape"][1:]  # type: ignore[index]
            kwargs.update(prompt=[self._prompt(cls)] * size, height=height, width=width)
            if self.params["negative_prompt"]:
                kwargs["negative_prompt"] = [self.params["negative_prompt"]] * size
        elif self.conditioning == "class":
            kwargs["class_labels"] = [self._model_label(cls)] * size
        else:
            kwargs["batch_size"] = size
        try:
            images = pipe(**kwargs).images  # float N×H×W×C in [0, 1]
        except (ValueError, RuntimeError, TypeError) as exc:
            raise self._failed(pipe, exc) from exc
        return to_uint8(np.asarray(images), 0.0, 1.0).transpose(0, 3, 1, 2)

    def _class_loop(self, pipe: Any, cls: int, size: int, gens: list[torch.Generator],
                    device: torch.device, params: Mapping[str, Any]) -> np.ndarray:
        """Class-conditional sampling for UNet pipelines that cannot take labels themselves:
        the scheduler's own loop, with classifier-free guidance against ``null_class``."""
        unet, scheduler = pipe.unet, pipe.scheduler
        guidance = params["guidance"] if params["guidance"] is not None else 1.0
        null = self.params["null_class"]
        if guidance != 1.0 and null is None:
            raise GeneratorError("generator 'diffusers': guidance != 1 on a class-conditioned "
                                 "UNet needs `null_class`, the label it was trained with for "
                                 "'no class'")
        side = unet.config.sample_size
        h, w = (side, side) if isinstance(side, int) else side
        shape = (unet.config.in_channels, h, w)
        noise = torch.stack([torch.randn(shape, generator=g) for g in gens])
        x = noise.to(device=device, dtype=unet.dtype) * scheduler.init_noise_sigma
        labels = torch.full((size,), self._model_label(cls), device=device, dtype=torch.long)
        step = inspect.signature(scheduler.step).parameters
        extra = {"generator": gens} if "generator" in step else {}
        try:
            scheduler.set_timesteps(params["steps"], device=device)
            for t in scheduler.timesteps:
                model_in = scheduler.scale_model_input(x, t)
                eps = unet(model_in, t, class_labels=labels).sample
                if guidance != 1.0:
                    uncond = unet(model_in, t, class_labels=torch.full_like(labels, null)).sample
                    eps = uncond + guidance * (eps - uncond)
                x = scheduler.step(eps, t, x, **extra).prev_sample
            decoder = getattr(pipe, "vae", None) or getattr(pipe, "vqvae", None)
            if decoder is not None:
                scale = getattr(decoder.config, "scaling_factor", 1.0) or 1.0
                x = decoder.decode(x / scale).sample
        except (ValueError, RuntimeError, TypeError, IndexError) as exc:
            raise self._failed(pipe, exc) from exc
        return to_uint8(x.float().cpu().numpy(), -1.0, 1.0)

    def _failed(self, pipe: Any, exc: BaseException) -> GeneratorError:
        """The pipeline's own error as one message (its traceback with --debug)."""
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return GeneratorError(f"generator 'diffusers': {type(pipe).__name__} from {self.source} "
                              f"failed: {type(exc).__name__}: {first}")

    def _prompt(self, cls: int) -> str:
        prompt = self.params["prompt"]
        names = self._manifest["class_names"]  # type: ignore[index]
        if isinstance(prompt, list):
            return str(prompt[cls])
        return str(prompt).replace(PLACEHOLDER, names[cls])

    def _model_label(self, cls: int) -> int:
        labels = self.params["class_labels"]
        return int(labels[cls]) if labels is not None else cls

    # ------------------------------------------------------------------ the Generator API
    def fit(
        self, train: ImageSet, class_names: Sequence[str], workdir: Path, ctx: RunContext
    ) -> dict[str, Any]:
        """Load each pipeline and draw one image per class: it must match the dataset."""
        n = len(class_names)
        self._check_classes(class_names)
        self._manifest = {"path": self.source, "digest": self.params["digest"],
                          "conditioning": self.conditioning, "class_names": list(class_names),
                          "image_shape": list(train.image_shape)}
        device = resolve_device(ctx)
        probe = self.validate_sample({"steps": 2})
        with ctx.progress("diffusers: checking the pipeline", total=n) as task:
            for cls in range(n):
                self._fit_dataset(self._class_images(cls, 1, ctx.seed, device, probe),
                                  train.image_shape)
                task.advance(1)
        write_manifest(workdir, self._manifest)
        return {"steps": 0, "train_seconds": 0.0, "conditioning": self.conditioning}

    def _check_classes(self, class_names: Sequence[str]) -> None:
        n, path = len(class_names), self.source
        per_class = self.params["class_paths"]
        if self.conditioning == "none" and per_class is None and n > 1:
            raise GeneratorError(
                f"generator 'diffusers': {path} is an unconditional pipeline, which cannot make "
                f"labelled images of {n} classes; save one pipeline per class and give them as "
                "class_paths = { <class name> = <folder>, ... }, or use a class- or "
                "text-conditioned pipeline"
            )
        if per_class is not None and set(per_class) != set(class_names):
            wrong = [k for k in per_class if k not in class_names]
            missing = [c for c in class_names if c not in per_class]
            raise GeneratorError(
                "generator 'diffusers': `class_paths` must name each class of the dataset once ("
                + ", ".join(class_names) + ")"
                + "".join(f"; {k!r} is not one{did_you_mean(k, class_names)}" for k in wrong)
                + (f"; no folder for {', '.join(map(repr, missing))}" if missing else "")
            )
        prompt, labels = self.params["prompt"], self.params["class_labels"]
        if self.conditioning == "text" and isinstance(prompt, list) and len(prompt) != n:
            raise GeneratorError(f"generator 'diffusers': `prompt` has {len(prompt)} prompts but "
                                 f"the dataset has {n} classes ({', '.join(class_names)})")
        one_prompt = isinstance(prompt, str) and PLACEHOLDER not in prompt
        if self.conditioning == "text" and one_prompt and n > 1:
            raise GeneratorError(f"generator 'diffusers': the prompt {prompt!r} has no "
                                 f"{PLACEHOLDER}, so all {n} classes would get one prompt; "
                                 "add it or give one prompt per class")
        if labels is not None and len(labels) != n:
            raise GeneratorError(f"generator 'diffusers': `class_labels` has {len(labels)} "
                                 f"labels but the dataset has {n} classes")

    def _fit_dataset(self, images: np.ndarray, shape: Sequence[int]) -> np.ndarray:
        """``images`` with the dataset's channels; GeneratorError when their size differs."""
        channels, height, width = shape
        if images.shape[2:] != (height, width):
            raise GeneratorError(
                f"generator 'diffusers': the pipeline in {self.source} makes "
                f"{images.shape[2]}×{images.shape[3]} images but the dataset's are "
                f"{height}×{width}; set the dataset's `resolution` to {images.shape[2]} or "
                "use a pipeline trained at the dataset's size"
            )
        return match_channels(images, channels, self.params["convert_channels"],
                              f"generator 'diffusers': the pipeline in {self.source}")

    def load(self, workdir: Path, ctx: RunContext) -> None:
        """Read what ``fit`` checked; pipelines load on first use."""
        super().load(workdir, ctx)
        self.conditioning = self._manifest["conditioning"]  # type: ignore[index]

    def _finish(self, images: np.ndarray) -> np.ndarray:
        """Image ``i`` of a class has its own generator (:meth:`_class_images`); here the
        pipeline's output is matched to the dataset's size and channels."""
        return self._fit_dataset(images, self._manifest["image_shape"])  # type: ignore[index]
