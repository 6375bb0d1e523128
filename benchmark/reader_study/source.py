"""Find a finished run's images: the prepared real splits and each entry's sampled set.

Both are read from the run's stage cache (``RUN_DIR/cache`` unless the run was given
``--cache-dir``), at the cache keys results.json records (``dataset.unit``, each entry's
``units.sample``). Results written before those keys were recorded are matched instead:

* the **prepared data** is the unique ``prepare`` unit of the dataset plugin with the recorded
  split counts;
* an **entry's sampled images** are the ``sample`` unit whose ``mosaic.png`` is byte-identical
  to the mosaic results.json names for that entry (the runner copies it from that unit).

Only completed units (marker written) are read; nothing in the run or its cache is changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cache import COMPLETE
from ..data import DataSplits, ImageSet
from ..errors import DataError
from ..leaderboard.loading import read_results, sample_path
from ..params import did_you_mean

__all__ = ["RunImages", "load_run"]


@dataclass(frozen=True)
class RunImages:
    """A finished run's results document, its prepared splits and the chosen entries' samples."""

    results: dict[str, Any]
    results_path: Path
    data: DataSplits
    synthetic: dict[str, ImageSet]
    sample_keys: dict[str, str]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _complete_units(cache: Path, stage: str) -> list[Path]:
    folder = cache / stage
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / COMPLETE).is_file())


def _prepare_unit(results: dict[str, Any], cache: Path, run: Path) -> Path:
    dataset = results["dataset"]
    plugin = dataset.get("plugin")
    key = dataset.get("unit")
    if isinstance(key, str) and (cache / "prepare" / key / COMPLETE).is_file():
        return cache / "prepare" / key
    counts = dataset.get("counts")
    found = []
    for unit in _complete_units(cache, "prepare"):
        try:
            meta = json.loads((unit / COMPLETE).read_text())
            info = json.loads((unit / "info.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if meta.get("plugin") == plugin and info.get("counts") == counts:
            found.append(unit)
    if len(found) == 1:
        return found[0]
    raise DataError(
        f"{run}: the run's prepared {plugin!r} data is not in its cache {cache} "
        f"({'several candidates' if found else 'no matching prepare unit'}); re-run "
        f"`medsynbench run {results['suite'].get('file') or 'SUITE.toml'} --out {run}` (cached "
        "stages are reused), or pass --cache-dir where the run kept its cache"
    )


def _sample_units(cache: Path) -> dict[str, list[Path]]:
    """mosaic digest → completed sample units holding that mosaic."""
    found: dict[str, list[Path]] = {}
    for unit in _complete_units(cache, "sample"):
        mosaic = unit / "mosaic.png"
        if mosaic.is_file() and (unit / "images.npy").is_file():
            found.setdefault(_digest(mosaic), []).append(unit)
    return found


def _no_samples(run: Path, name: str, why: str) -> DataError:
    return DataError(
        f"{run}: entry {name!r} has no sampled images to show ({why}); a study needs a finished "
        "run with its sample stage: re-run `medsynbench run SUITE.toml --out RUN_DIR` (cached "
        "stages are reused) or pass --cache-dir where the run kept its cache"
    )


def load_run(
    run: str | Path, entries: list[str] | None = None, cache_dir: str | Path | None = None
) -> RunImages:
    """The images of the finished run in folder ``run`` for ``entries`` (default: every entry
    that completed). Raises DataError / ResultsError with the fix when something is missing."""
    folder = Path(run)
    results_file = folder / "results.json" if folder.is_dir() else folder
    folder = results_file.parent
    if not results_file.is_file():
        raise DataError(
            f"{folder} holds no results.json: pass the folder of a finished run "
            "(`medsynbench run SUITE.toml --out RUN_DIR`)"
        )
    loaded = read_results(results_file)
    results = loaded.document
    by_name = {str(e["name"]): e for e in results["entries"]}
    ok = [name for name, e in by_name.items() if e.get("status") == "ok"]
    chosen = list(dict.fromkeys(entries)) if entries else ok
    for name in chosen:
        if name not in by_name:
            raise DataError(
                f"--entries {name!r}: the run has no such entry{did_you_mean(name, list(by_name))}"
                f" (entries: {', '.join(by_name)})"
            )
        if name not in ok:
            raise DataError(f"--entries {name!r}: that entry failed in the run; it has no images")
    if not chosen:
        raise DataError(f"{results_file}: no entry completed, so there are no images to study")
    cache = Path(cache_dir) if cache_dir is not None else folder / "cache"
    if not cache.is_dir():
        raise _no_samples(folder, chosen[0], f"its stage cache {cache} does not exist")
    units: dict[str, list[Path]] | None = None  # by mosaic digest: only for older results
    synthetic: dict[str, ImageSet] = {}
    keys: dict[str, str] = {}
    for name in chosen:
        recorded = (by_name[name].get("units") or {}).get("sample")
        if isinstance(recorded, str) and (cache / "sample" / recorded / COMPLETE).is_file():
            synthetic[name] = ImageSet.load(cache / "sample" / recorded)
            keys[name] = recorded
            continue
        if units is None:
            units = _sample_units(cache)
        declared = by_name[name].get("samples")
        mosaic = sample_path(folder, declared) if isinstance(declared, str) and declared else None
        if mosaic is None or not mosaic.is_file():
            raise _no_samples(folder, name, "results.json names no sample mosaic for it"
                              if mosaic is None else f"its mosaic {declared} is missing")
        matches = units.get(_digest(mosaic), [])
        if not matches:
            raise _no_samples(folder, name, f"no completed sample unit in {cache} matches it")
        synthetic[name] = ImageSet.load(matches[0])
        keys[name] = matches[0].name
    data = DataSplits.load(_prepare_unit(results, cache, folder))
    return RunImages(results, results_file, data, synthetic, keys)
