"""``callable``: any Python function that returns images for (counts, seed).

The fastest way to put an existing script on the board without writing a distribution::

    [[generators]]
    plugin = "callable"
    train = { target = "examples/my_generator.py:generate", options = { contrast = 0.5 } }

``target`` is ``"package.module:function"`` (imported as Python imports it: an installed
package or a folder on ``PYTHONPATH``) or ``"path/to/script.py:function"`` (a file, relative
to the working directory). The function is called as ``function(counts, seed, **options)``:

- ``counts``: a list, ``counts[c]`` images of class ``c`` (the dataset's class order);
- ``seed``: an int; the same seed must give the same images;
- ``options``: the suite's ``options`` table, as keyword arguments;
- and, only when the function names them as parameters: ``image_shape`` ((C, H, W) of the
  dataset's images), ``class_names`` and ``device`` ("cpu" or "cuda").

It returns a numpy ``uint8`` array (or a torch tensor) of ``sum(counts)`` images, N×C×H×W,
class 0's first, then class 1's, ... Anything else is refused with what came back and the fix;
an exception inside the function is reported with its type and message (the traceback with
``--debug``). The target is imported when the suite is validated, so a typo fails at once.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable as CallableType
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from medsynbench import Generator, ImageSet, Param, RunContext
from medsynbench.errors import GeneratorError, MedSynBenchError, ParameterError

from .byo import DIGEST, check_images, labels_for, pin_digest, read_manifest, write_manifest
from .training import check_counts, measure_sampling, resolve_device

__all__ = ["Callable", "resolve_target"]

_CONTEXT = ("image_shape", "class_names", "device")
_HELP = ("give target = 'package.module:function' (importable: installed or on PYTHONPATH) "
         "or 'path/to/script.py:function'")


def _target_form(value: Any) -> str | None:
    module, sep, function = str(value).rpartition(":")
    if not sep or not module or not function.isidentifier():
        return f"{value!r} is not 'module:function'; {_HELP}"
    return None


def _load_file(path: Path) -> Any:
    if not path.is_file():
        raise GeneratorError(f"generator 'callable': script {str(path)!r} not found; {_HELP}")
    # One module name per file, so two targets in one suite never share a module object.
    name = "medsynbench_callable_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    stat = path.stat()
    stamp = (stat.st_size, stat.st_mtime_ns)
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__medsynbench_stamp__", None) == stamp:
        return loaded  # validated and run in one process: the script runs once
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise GeneratorError(f"generator 'callable': cannot import {path} as Python; {_HELP}")
    module = importlib.util.module_from_spec(spec)
    module.__medsynbench_stamp__ = stamp  # type: ignore[attr-defined]
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def resolve_target(target: str) -> tuple[CallableType[..., Any], Path | None]:
    """The function ``target`` names and its source file (None when it has none).

    Raises GeneratorError when the module cannot be imported, raises while importing, or has
    no such function.
    """
    module_name, _, function_name = target.rpartition(":")
    try:
        if module_name.endswith(".py") or "/" in module_name or "\\" in module_name:
            module = _load_file(Path(module_name).expanduser())
        else:
            module = importlib.import_module(module_name)
    except MedSynBenchError:
        raise
    except ModuleNotFoundError as exc:
        raise GeneratorError(
            f"generator 'callable': target {target!r} cannot be imported: no module named "
            f"{exc.name!r}; {_HELP}"
        ) from exc
    except Exception as exc:
        raise GeneratorError(
            f"generator 'callable': importing {module_name!r} for target {target!r} raised "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        known = sorted(n for n, v in vars(module).items()
                       if callable(v) and not n.startswith("_") and inspect.isfunction(v))
        raise GeneratorError(
            f"generator 'callable': {module_name!r} has no function {function_name!r} "
            f"(its functions: {', '.join(known) or 'none'})"
        )
    source = getattr(module, "__file__", None)
    return function, Path(source) if source else None


class Callable(Generator):
    """Images from a user's Python function ``target`` called as f(counts, seed, **options)."""

    name: ClassVar[str] = "callable"
    description: ClassVar[str] = (
        "a Python function: target = 'package.module:function' returning uint8 N×C×H×W "
        "images for (counts, seed)"
    )
    parameters: ClassVar[Mapping[str, Param]] = {
        "target": Param(Param.REQUIRED, str, "'package.module:function' or "
                        "'path/to/script.py:function'", check=_target_form),
        "options": Param({}, dict, "keyword arguments passed to the function"),
        "digest": DIGEST,
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._manifest: dict[str, Any] | None = None

    def check(self) -> None:
        """Import the target, check its signature and pin its source file's digest."""
        function, source = resolve_target(self.params["target"])
        self._function = function
        self._wants = self._context_names(function)
        if source is not None and source.is_file():
            pin_digest(self.params, hashlib.sha256(source.read_bytes()).hexdigest(),
                       self.name, f"the source of {self.params['target']!r} ({source})")

    def _context_names(self, function: CallableType[..., Any]) -> tuple[str, ...]:
        """The context arguments the function names; ParameterError when counts, seed and the
        options cannot be passed to it."""
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):  # a builtin without a signature: pass the basics
            return ()
        wants = tuple(n for n in _CONTEXT if n in signature.parameters)
        options = dict(self.params["options"])
        try:
            signature.bind([1], 0, **options, **dict.fromkeys(wants))
        except TypeError as exc:
            raise ParameterError(
                f"generator 'callable': {self.params['target']}{signature} cannot be called as "
                f"f(counts, seed{', **options' if options else ''}): {exc}; it must take the "
                "per-class counts and a seed first, then the suite's options by keyword"
            ) from None
        return wants

    def _call(self, counts: Sequence[int], seed: int, ctx: RunContext) -> np.ndarray:
        manifest = self._manifest
        assert manifest is not None
        shape = tuple(manifest["image_shape"])
        context = {"image_shape": shape, "class_names": tuple(manifest["class_names"]),
                   "device": str(resolve_device(ctx))}
        kwargs = {**self.params["options"], **{n: context[n] for n in self._wants}}
        who = f"generator 'callable': {self.params['target']}"
        try:
            images = self._function(list(counts), int(seed), **kwargs)
        except MedSynBenchError:
            raise
        except Exception as exc:
            raise GeneratorError(
                f"{who} raised {type(exc).__name__}: {exc} (for counts={list(counts)}, "
                f"seed={seed}; run with --debug for the traceback)"
            ) from exc
        return check_images(images, sum(counts), shape, who)

    def fit(
        self, train: ImageSet, class_names: Sequence[str], workdir: Path, ctx: RunContext
    ) -> dict[str, Any]:
        """Call the function for one image per class and check what it returns."""
        self._manifest = {"target": self.params["target"], "digest": self.params["digest"],
                          "class_names": list(class_names),
                          "image_shape": list(train.image_shape)}
        self._call([1] * len(class_names), ctx.seed, ctx)
        write_manifest(workdir, self._manifest)
        return {"steps": 0, "train_seconds": 0.0}

    def load(self, workdir: Path, ctx: RunContext) -> None:
        """Read the class names and image shape ``fit`` checked the function against."""
        self._manifest = read_manifest(workdir, self.name)

    def sample(
        self, counts: Sequence[int], seed: int, ctx: RunContext, **sample_params: Any
    ) -> ImageSet:
        """``counts[c]`` images of class ``c`` from one call of the function."""
        if self._manifest is None:
            raise GeneratorError("generator 'callable': sample() called before fit() or load()")
        values = check_counts(counts, len(self._manifest["class_names"]), self.name)
        return ImageSet(self._call(values, seed, ctx), labels_for(values))

    def efficiency(
        self, ctx: RunContext, image_shape: tuple[int, int, int]
    ) -> dict[str, float | None]:
        """Peak GPU memory (MB) for 8 images of class 0 (None on CPU) and seconds per 1000."""
        if self._manifest is None:
            return {}
        n_classes = len(self._manifest["class_names"])
        device = resolve_device(ctx)
        return measure_sampling(
            lambda n: self._call([n] + [0] * (n_classes - 1), 0, ctx), device,
            n_timed=64 if device.type == "cuda" else 8,
        )
