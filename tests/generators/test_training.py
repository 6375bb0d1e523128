"""Shared generator training helpers: requests, seeds, checkpoints, resumption, NaN guard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from medsynbench import RunContext
from medsynbench.errors import GeneratorError
from medsynbench.plugins.generators.training import (
    TimeBudget,
    Trainer,
    batch_indices,
    batch_iterator,
    check_counts,
    check_finite,
    class_seed,
    from_unit,
    load_checkpoint,
    measure_sampling,
    require_fitted,
    resolve_preset,
    save_checkpoint,
    to_unit,
    torch_generator,
)
from medsynbench.plugins.generators.vq import VectorQuantizerEMA, VQAutoencoder
from torch import nn


def test_check_counts_accepts_and_rejects() -> None:
    assert check_counts([2, 0, 1], 3) == [2, 0, 1]
    with pytest.raises(GeneratorError, match="0 images in total"):
        check_counts([0, 0])
    with pytest.raises(GeneratorError, match=">= 0"):
        check_counts([3, -1])
    with pytest.raises(GeneratorError, match="fitted on 3 classes"):
        check_counts([1, 1], 3)


def test_require_fitted() -> None:
    require_fitted(object(), "x")
    with pytest.raises(GeneratorError, match=r"before fit\(\) or load\(\)"):
        require_fitted(None, "x")


def test_seeds_are_deterministic_and_distinct() -> None:
    assert class_seed(3, 1) == class_seed(3, 1)
    assert len({class_seed(3, 0), class_seed(3, 1), class_seed(4, 0)}) == 3
    a = torch.rand(4, generator=torch_generator(7, 2))
    b = torch.rand(4, generator=torch_generator(7, 2))
    assert torch.equal(a, b)
    assert not torch.equal(a, torch.rand(4, generator=torch_generator(8, 2)))


def test_unit_roundtrip_is_exact() -> None:
    images = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    back = from_unit(to_unit(images, torch.device("cpu")))
    assert back.dtype == np.uint8 and np.array_equal(back, images)


def test_batch_indices_cover_each_epoch_and_depend_only_on_step() -> None:
    epoch = torch.cat([batch_indices(i, 10, 4, seed=3) for i in range(2)])
    assert len(set(epoch.tolist())) == 8  # one epoch = 2 batches of 4, no repeats
    assert torch.equal(batch_indices(5, 10, 4, seed=3), batch_indices(5, 10, 4, seed=3))
    assert not torch.equal(batch_indices(2, 10, 4, seed=3), batch_indices(2, 10, 4, seed=4))
    with pytest.raises(GeneratorError, match="empty"):
        batch_indices(0, 0, 4, seed=0)


def test_batch_iterator_covers_each_epoch() -> None:
    it = batch_iterator(10, 5, torch_generator(0))
    epoch = torch.cat([next(it), next(it)])
    assert sorted(epoch.tolist()) == list(range(10))
    with pytest.raises(GeneratorError, match="empty"):
        next(batch_iterator(0, 4, torch_generator(0)))


def test_resolve_preset_overrides_only_given_values() -> None:
    presets = {"tiny": {"a": 1, "b": 2}}
    merged = resolve_preset(presets, {"preset": "tiny", "a": None, "b": 5, "c": None})
    assert merged == {"a": 1, "b": 5, "preset": "tiny", "c": None}


def test_checkpoint_roundtrip_and_config_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, "demo", {"channels": 8, "mults": (1, 2)}, {"w": torch.ones(3)})
    data = load_checkpoint(path, "demo", {"channels": 8, "mults": [1, 2]})
    assert torch.equal(data["w"], torch.ones(3))
    with pytest.raises(GeneratorError) as info:
        load_checkpoint(path, "demo", {"channels": 16, "mults": [1, 2]})
    message = str(info.value)
    assert "different configuration" in message
    assert "checkpoint=8 current=16" in message
    assert "'channels': 8" in message and "'channels': 16" in message
    with pytest.raises(GeneratorError, match="not a other checkpoint"):
        load_checkpoint(path, "other", {"channels": 8, "mults": [1, 2]})
    with pytest.raises(GeneratorError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt", "demo", {})


def test_checkpoint_is_loaded_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "generator": "demo", "config": {}, "obj": Path("x")}, path)
    with pytest.raises(GeneratorError, match="cannot read checkpoint"):
        load_checkpoint(path, "demo", {})


def test_check_finite_names_step_and_loss() -> None:
    check_finite({"loss": 0.5}, 3)
    with pytest.raises(GeneratorError, match=r"diverged at step 7, .*loss=nan"):
        check_finite({"loss": float("nan")}, 7)
    with pytest.raises(GeneratorError, match="diverged at step 2"):
        check_finite({"loss": float("inf")}, 2)


def _train(ctx: RunContext, steps: int, fail_at: int | None = None) -> tuple[nn.Module, dict]:
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    trainer = Trainer(
        "demo", {"lr": 0.05}, ctx, {"m": model}, {"m": opt}, steps, checkpoint_every=5
    )
    data = torch.randn(32, 4, generator=torch_generator(1))

    def step(i: int) -> dict[str, torch.Tensor]:
        if fail_at is not None and i == fail_at:
            raise KeyboardInterrupt  # the run is killed mid-way
        x = data[trainer.batch(i, 32, 8)]
        loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
        trainer.backward(loss, opt)
        return {"loss": loss}

    return model, trainer.run(step)


def test_trainer_resumes_to_the_same_weights(tmp_path: Path) -> None:
    straight, result = _train(RunContext(workdir=tmp_path / "a"), 12)
    assert result["steps"] == 12 and result["losses"]["loss"] < 20
    with pytest.raises(KeyboardInterrupt):
        _train(RunContext(workdir=tmp_path / "b"), 12, fail_at=8)
    assert (tmp_path / "b" / "train.resume.pt").is_file()  # saved at step 5
    resumed, result_b = _train(RunContext(workdir=tmp_path / "b"), 12)
    assert result_b["steps"] == 12
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.allclose(p, q)


def test_trainer_stops_on_nan(tmp_path: Path) -> None:
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer("demo", {}, RunContext(workdir=tmp_path), {"m": model}, {"m": opt}, 10)

    def step(i: int) -> dict[str, float]:
        return {"loss": float("nan") if i == 3 else 1.0}

    with pytest.raises(GeneratorError, match="diverged at step 3, loss=nan"):
        trainer.run(step)


def test_trainer_time_limit(tmp_path: Path) -> None:
    import time

    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def slow(i: int) -> dict[str, float]:
        time.sleep(0.03)
        return {"loss": 1.0}

    limited = Trainer(
        "demo",
        {},
        RunContext(workdir=tmp_path / "a"),
        {"m": model},
        {"m": opt},
        1000,
        max_seconds=0.05,
    )
    assert 2 <= limited.run(slow)["steps"] <= 4  # the first (warm-up) step is not counted
    exhausted = Trainer(
        "demo",
        {},
        RunContext(workdir=tmp_path / "b"),
        {"m": model},
        {"m": opt},
        1000,
        max_seconds=0.0,
    )
    assert exhausted.run(slow)["steps"] == 1  # only the uncounted warm-up step


def test_time_budget_passes_unused_time_on() -> None:
    budget = TimeBudget(90.0, 3)
    assert budget.next_limit() == 30.0
    budget.spend(10.0)  # a quick stage leaves time for the others
    assert budget.next_limit() == 40.0
    assert TimeBudget(None, 2).next_limit() is None


def test_vector_quantizer_ema_and_restart() -> None:
    torch.manual_seed(0)
    vq = VectorQuantizerEMA(8, 2, decay=0.5)
    z = torch.tensor([[3.0, 3.0], [-3.0, -3.0]]).repeat(16, 1).reshape(2, 4, 4, 2)
    z = z.permute(0, 3, 1, 2)
    for _ in range(20):
        quant, loss, codes, _ = vq(z)
    # Dead codes were re-seeded from the data and the two clusters got their own codes.
    assert torch.allclose(quant, z, atol=1e-3) and loss.item() < 1e-4
    assert codes.unique().numel() == 2
    vq.eval()
    before = vq.embedding.clone()
    vq(z * 2)
    assert torch.equal(before, vq.embedding)  # no EMA update in eval mode


def test_vq_autoencoder_compresses_8x() -> None:
    model = VQAutoencoder(3, 16, 4, 1, 8, 16, 4)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    recon, loss, codes = model(x)
    assert recon.shape == x.shape and codes.shape == (2, 4, 4) and loss.ndim == 0
    assert model.encode_latent(x).shape == (2, 4, 4, 4)


def test_measure_sampling_on_cpu() -> None:
    calls: list[int] = []
    result = measure_sampling(calls.append, torch.device("cpu"), n_timed=4)
    assert result["peak_gpu_memory_mb_8"] is None
    assert result["seconds_per_1000"] is not None and result["seconds_per_1000"] >= 0
    assert calls == [2, 4]


def test_shared_tensor_reads_a_read_only_memory_map_without_copy_or_warning(tmp_path) -> None:
    import warnings

    import numpy as np
    from medsynbench.plugins.generators.training import shared_tensor

    np.save(tmp_path / "x.npy", np.arange(12, dtype=np.uint8).reshape(3, 4))
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")  # what the runner hands a generator
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensor = shared_tensor(mapped)
    assert tensor.tolist() == mapped.tolist()
    assert tensor.data_ptr() == mapped.ctypes.data  # shared, not copied
