"""The metric plugins: registration, declared quantities, representation handling."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from medsynbench import Metric, MetricInputs, RunContext, metrics
from medsynbench.errors import DataError, ParameterError
from medsynbench.plugins.metrics import PLUGINS

BY_NAME = {cls.name: cls for cls in PLUGINS}


def make_inputs(representation: str = "features", heldout: bool = True,
                **changes: Any) -> MetricInputs:
    rng = np.random.default_rng(0)
    if representation == "codes":
        real, fake = rng.integers(0, 6, size=(40, 16)), rng.integers(0, 6, size=(30, 16))
    elif representation == "images":
        real = rng.integers(0, 256, size=(40, 1, 8, 8), dtype=np.uint8)
        fake = rng.integers(0, 256, size=(30, 1, 8, 8), dtype=np.uint8)
    else:
        real, fake = rng.normal(size=(40, 6)), rng.normal(size=(30, 6)) + 0.2
    values: dict[str, Any] = dict(
        real=real, synthetic=fake, heldout=real[:20] if heldout else None,
        real_labels=np.arange(40) % 2, synthetic_labels=np.arange(30) % 2,
        class_names=("a", "b"), representation=representation,
    )
    values.update(changes)
    return MetricInputs(**values)


def test_every_plugin_is_registered_and_declares_its_quantities() -> None:
    assert set(BY_NAME) == {"fid", "kid", "prdc", "knn-privacy", "dcr", "authenticity",
                            "mean-image-jpeg", "marker-rate", "fd-infinity", "vendi",
                            "data-copying", "alpha-precision", "frd"}
    for cls in PLUGINS:
        assert issubclass(cls, Metric) and cls.quantities and cls.description


@pytest.mark.parametrize("name", ["fid", "kid", "prdc", "knn-privacy", "dcr", "authenticity"])
def test_feature_plugins_compute_declared_quantities(name: str, ctx: RunContext) -> None:
    cls = BY_NAME[name]
    params = {"subsets": 3, "subset_size": 20} if name == "kid" else {}
    values = cls(**params).compute(make_inputs(), ctx)
    assert values and set(values) <= set(cls.quantities)
    assert all(isinstance(v, float) and np.isfinite(v) for v in values.values())


def test_plugins_equal_the_functional_api(ctx: RunContext) -> None:
    inputs = make_inputs()
    assert BY_NAME["prdc"](k=3).compute(inputs, ctx) == metrics.prdc(
        inputs.real, inputs.synthetic, k=3, device="cpu")
    assert BY_NAME["fid"]().compute(inputs, ctx)["fid"] == metrics.fid(
        inputs.real, inputs.synthetic, device="cpu")


def test_codes_use_hamming(ctx: RunContext) -> None:
    inputs = make_inputs("codes")
    for name in ("knn-privacy", "prdc", "authenticity"):
        fn = getattr(metrics, name.replace("-", "_"))
        assert BY_NAME[name]().compute(inputs, ctx) == fn(
            inputs.real, inputs.synthetic, distance="hamming", device="cpu")


def test_dcr_without_heldout_is_a_clear_error(ctx: RunContext) -> None:
    with pytest.raises(DataError, match="held-out real images"):
        BY_NAME["dcr"]().compute(make_inputs(heldout=False), ctx)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ParameterError, match="k"):
        BY_NAME["prdc"](k=0)
    with pytest.raises(ParameterError, match="unknown parameter"):
        BY_NAME["knn-privacy"](kk=3)


def test_mean_image_jpeg_and_variety_across_entries(ctx: RunContext) -> None:
    cls = BY_NAME["mean-image-jpeg"]
    assert cls.input == "images" and cls.default_encoder is None
    inputs = make_inputs("images")
    values = cls().compute(inputs, ctx)
    sizes = metrics.mean_image_variety(inputs.synthetic, inputs.synthetic_labels)
    assert values["jpeg_bytes"] == sizes["all"]
    assert values["jpeg_bytes_class_mean"] == (sizes["class_0"] + sizes["class_1"]) / 2
    assert values["real_jpeg_bytes"] == metrics.mean_image_variety(inputs.real,
                                                                   inputs.real_labels)["all"]
    # V is derived on the board, over exactly its entries (inverse min-max of the raw bytes)
    from medsynbench.leaderboard.verdict import derive_board_quantities

    def entry(name: str, total: float, class_mean: float) -> dict[str, Any]:
        metrics_ = {"mean-image-jpeg.jpeg_bytes": {"value": total},
                    "mean-image-jpeg.jpeg_bytes_class_mean": {"value": class_mean}}
        for quantity, q in cls.quantities.items():
            if q.board_rule:
                metrics_[f"mean-image-jpeg.{quantity}"] = {
                    "value": None, "board_rule": q.board_rule,
                    "source": f"mean-image-jpeg.{q.source}"}
        return {"name": name, "status": "ok", "metrics": metrics_}

    board = [entry("gan", 900.0, 10.0), entry("copy", 700.0, 30.0), entry("ldm", 750.0, 20.0)]
    derive_board_quantities(board)
    got = {e["name"]: (e["metrics"]["mean-image-jpeg.variety"]["value"],
                       e["metrics"]["mean-image-jpeg.variety_class_mean"]["value"]) for e in board}
    assert got == {"gan": (0.0, 1.0), "copy": (1.0, 0.0), "ldm": (0.75, 0.5)}
    two = [entry("gan", 900.0, 10.0), entry("ldm", 750.0, 20.0)]  # without "copy": recomputed
    derive_board_quantities(two)
    assert two[1]["metrics"]["mean-image-jpeg.variety"]["value"] == 1.0


def test_read_only_memory_mapped_features(tmp_path: Any) -> None:
    rng = np.random.default_rng(1)
    np.save(tmp_path / "real.npy", rng.normal(size=(30, 4)).astype(np.float32))
    real = np.load(tmp_path / "real.npy", mmap_mode="r")
    fake = real[::-1] + np.float32(0.5)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = metrics.knn_privacy(real, fake, k=3, device="cpu")
    assert out == metrics.knn_privacy(np.array(real), fake, k=3, device="cpu")
