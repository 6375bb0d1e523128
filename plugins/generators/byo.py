"""What the bring-your-own generators (``diffusers``, ``monai``, ``callable``) share.

These generators do not train: ``fit`` loads the user's model, draws one image per class to
prove that it makes images of the dataset's kind (size, channels, dtype), and writes a small
manifest; ``sample`` draws from the model. Three rules hold for all of them:

- **Identity.** The model lives outside the cache, so its files' sha256 is a parameter,
  ``digest``, filled in when the suite is validated (:func:`pin_digest`): it is part of every
  cache key, so a model retrained in place is sampled afresh instead of served from the
  cache. A suite may set ``digest`` itself to pin the model; a different one is then refused.
- **Missing pieces** are one error each: a package not installed names the extra to install
  (:func:`require_module`), a missing file names the file.
- **Output** is checked against the dataset before anything is written
  (:func:`check_images`): count, dtype and shape, with the fix.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from medsynbench import Generator, ImageSet, RunContext
from medsynbench.cache import write_atomic
from medsynbench.errors import GeneratorError, PluginError
from medsynbench.params import Param

from .training import check_counts, measure_sampling, resolve_device

__all__ = [
    "DIGEST",
    "ClassSampler",
    "check_images",
    "labels_for",
    "match_channels",
    "model_digest",
    "models_digest",
    "pin_digest",
    "read_manifest",
    "require_module",
    "to_uint8",
    "write_manifest",
]

DIGEST = Param(
    None,
    str,
    "sha256 of the model's files; filled in when the suite is validated, so it is part of "
    "every cache key (a model changed in place is sampled afresh). Set it to pin the model: "
    "different files are then refused",
    nullable=True,
)
MANIFEST = "byo.json"
_DIGESTS: dict[tuple[Any, ...], str] = {}
# ITU-R 601-2 luma, as PIL's "L" conversion: RGB pipelines on grayscale data.
_LUMA = np.array([0.299, 0.587, 0.114])


def require_module(module: str, extra: str, plugin: str, needed_for: str) -> ModuleType:
    """Import ``module`` or raise PluginError naming the package and the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = (exc.name or module).split(".")[0]
        raise PluginError(
            f"generator {plugin!r} needs the `{missing}` package ({needed_for}), which is not "
            f"installed: pip install 'medsynbench[{extra}]'"
        ) from exc


def _model_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(
        p for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )


def model_digest(path: Path) -> str:
    """sha256 over the relative names and contents of the files at ``path`` (a file or a
    folder; hidden files skipped). Remembered per process while no file's size or
    modification time changes, so validating a suite and running it hash a model once."""
    path = path.resolve()
    files = _model_files(path)
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    key = (str(path), stamp)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        for file in files:
            digest.update(str(file.relative_to(path) if file != path else file.name).encode())
            digest.update(b"\0")
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def models_digest(paths: Sequence[Path]) -> str:
    """:func:`model_digest` of one path; of several (one model per class), the sha256 of
    their names and digests in order."""
    digests = [model_digest(p) for p in paths]
    if len(digests) == 1:
        return digests[0]
    lines = "".join(f"{p.name}\0{d}\n" for p, d in zip(paths, digests, strict=True))
    return hashlib.sha256(lines.encode()).hexdigest()


def pin_digest(params: dict[str, Any], found: str, plugin: str, what: str) -> None:
    """Set ``params["digest"]`` to ``found``; GeneratorError when it already names another."""
    given = params.get("digest")
    if given is not None and given != found:
        raise GeneratorError(
            f"generator {plugin!r}: {what} does not match the `digest` this entry was "
            f"validated or pinned with: its files hash to {found}, not {given}. The model "
            "changed: re-run the suite to benchmark the new files (remove `digest` from the "
            "suite if you pinned it), or restore the files the digest names"
        )
    params["digest"] = found


def labels_for(counts: Sequence[int]) -> np.ndarray:
    """Labels of a class-ordered set: ``counts[0]`` zeros, then ``counts[1]`` ones, ..."""
    return np.repeat(np.arange(len(counts), dtype=np.int64), counts)


def check_images(images: Any, n: int, shape: tuple[int, int, int], who: str) -> np.ndarray:
    """``images`` as a uint8 n×C×H×W array of the dataset's (C, H, W), or GeneratorError
    saying what came back instead and how to fix it."""
    if type(images).__module__.split(".")[0] == "torch":
        images = images.detach().cpu().numpy()
    if not isinstance(images, np.ndarray):
        raise GeneratorError(
            f"{who} returned {type(images).__name__}; return a numpy uint8 array of "
            f"{n}×{shape[0]}×{shape[1]}×{shape[2]} images (N×C×H×W)"
        )
    want = (n, *shape)
    if images.dtype != np.uint8:
        hint = (" (floats in [0, 1]: (images * 255).round().astype(np.uint8))"
                if images.dtype.kind == "f" else "")
        raise GeneratorError(
            f"{who} returned {images.dtype} images; return uint8 pixels 0..255{hint}"
        )
    if images.shape != want:
        hint = ""
        if images.ndim == 4 and images.shape[0] != n:
            hint = f": {images.shape[0]} images where {n} were asked for (sum of counts)"
        elif images.ndim == 4 and images.shape[1:] == (shape[1], shape[2], shape[0]):
            hint = ": channels last; return images.transpose(0, 3, 1, 2)"
        elif images.ndim == 4 and images.shape[1] != shape[0]:
            hint = f": {images.shape[1]} channel(s) where the dataset has {shape[0]}"
        elif images.ndim == 4:
            hint = (f": {images.shape[2]}×{images.shape[3]} images where the dataset's are "
                    f"{shape[1]}×{shape[2]}")
        raise GeneratorError(
            f"{who} returned an array of shape {images.shape}, expected {want} (N×C×H×W)"
            f"{hint}"
        )
    return images


def to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Floats mapped linearly from [low, high] to 0..255 (clipped, rounded)."""
    scaled = (np.asarray(values, dtype=np.float64) - low) * (255.0 / (high - low))
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def match_channels(images: np.ndarray, channels: int, convert: bool, who: str) -> np.ndarray:
    """uint8 N×C×H×W with ``channels`` channels: RGB → luma or gray → RGB when ``convert``,
    else GeneratorError naming both counts and the ``convert_channels`` switch."""
    have = images.shape[1]
    if have == channels:
        return images
    if not convert or (have, channels) not in ((3, 1), (1, 3)):
        fix = "; set convert_channels = true to convert" if (have, channels) in (
            (3, 1), (1, 3)) else ""
        raise GeneratorError(
            f"{who} makes {have}-channel images but the dataset's have {channels}{fix}"
        )
    if channels == 3:
        return np.repeat(images, 3, axis=1)
    luma = np.tensordot(_LUMA, images.astype(np.float64), axes=([0], [1]))
    return np.clip(np.round(luma), 0, 255).astype(np.uint8)[:, None]


def write_manifest(workdir: Path, facts: dict[str, Any]) -> None:
    """Write what ``load`` needs (JSON) into the fit's work directory, atomically."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_atomic(workdir / MANIFEST, json.dumps(facts, indent=2))


def read_manifest(workdir: Path, plugin: str) -> dict[str, Any]:
    """The manifest :func:`write_manifest` wrote; GeneratorError when fit never ran there."""
    path = Path(workdir) / MANIFEST
    if not path.is_file():
        raise GeneratorError(
            f"generator {plugin!r}: {path} not found; run fit() into this workdir first"
        )
    facts: dict[str, Any] = json.loads(path.read_text())
    return facts


class ClassSampler(Generator):
    """Base of the generators that draw a pretrained model's images class by class
    (``diffusers``, ``monai``): the manifest ``fit`` wrote, the loop over classes in ``sample``
    and the efficiency probe with the entry's own sample parameters.

    A subclass sets ``self._manifest`` in ``fit`` (``load`` reads it back) and implements
    :meth:`_class_images`; :meth:`_finish` may adapt each class's images to the dataset.
    """

    _manifest: dict[str, Any] | None = None
    _last_params: Mapping[str, Any] | None = None  # the entry's, for efficiency()

    def _class_images(self, cls: int, n: int, seed: int, device: torch.device,
                      params: Mapping[str, Any]) -> np.ndarray:
        raise NotImplementedError

    def _finish(self, images: np.ndarray) -> np.ndarray:
        """One class's images as the dataset holds them (default: as drawn)."""
        return images

    def load(self, workdir: Path, ctx: RunContext) -> None:
        """Read what ``fit`` checked; models load on first use."""
        self._manifest = read_manifest(workdir, self.name)

    def sample(
        self, counts: Sequence[int], seed: int, ctx: RunContext, **sample_params: Any
    ) -> ImageSet:
        """``counts[c]`` images of class ``c``, class by class."""
        if self._manifest is None:
            raise GeneratorError(f"generator {self.name!r}: sample() called before fit() or load()")
        params = self.validate_sample(sample_params)
        self._last_params = params
        values = check_counts(counts, len(self._manifest["class_names"]), self.name)
        device = resolve_device(ctx)
        parts = []
        with ctx.progress(f"{self.name} sampling", total=sum(values)) as task:
            for cls, n in enumerate(values):
                if n:
                    parts.append(self._finish(self._class_images(cls, n, seed, device, params)))
                    task.advance(n)
        return ImageSet(np.concatenate(parts), labels_for(values))

    def efficiency(
        self, ctx: RunContext, image_shape: tuple[int, int, int]
    ) -> dict[str, float | None]:
        """Peak GPU memory (MB) for 8 images of class 0 (None on CPU) and seconds per 1000,
        with the sample parameters of the last :meth:`sample` call (the entry's), else the
        defaults."""
        if self._manifest is None:
            return {}
        device = resolve_device(ctx)
        params = self._last_params or self.validate_sample({})
        return measure_sampling(lambda n: self._class_images(0, n, 0, device, params), device,
                                n_timed=64 if device.type == "cuda" else 8)
