"""timm:<model>: offline weight resolution, random-weights flag, features, registry naming."""

from __future__ import annotations

from pathlib import Path

import medsynbench.plugins.encoders as encoders_package
import numpy as np
import pytest
import timm
import torch
from medsynbench import RunContext
from medsynbench.errors import ParameterError, WeightsError
from medsynbench.plugins.encoders.timm_encoder import RANDOM_WEIGHTS_FLAG, TimmEncoder
from medsynbench.registry import PluginRegistry
from safetensors.torch import save_file

MODEL = "test_resnet"  # a 0.4 M-parameter timm test network, 96-d features
HUB_REPO = "timm/test_resnet.r160_in1k"


@pytest.fixture
def empty_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the HF and torch caches at empty folders (nothing can be found, or fetched)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def reference_state(seed: int = 7) -> dict[str, torch.Tensor]:
    """A full (with-classifier) state dict standing in for downloaded weights."""
    torch.manual_seed(seed)
    return timm.create_model(MODEL, pretrained=False).state_dict()


def images(n: int = 4, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, channels, 36, 36), dtype=np.uint8)


def test_random_weights_are_flagged_and_deterministic(ctx: RunContext) -> None:
    encoder = TimmEncoder(model=MODEL, pretrained=False, resolution=48, batch_size=3)
    assert encoder.flags() == [RANDOM_WEIGHTS_FLAG]
    features = encoder.encode(images(), ctx)
    assert features.shape == (4, 96) and features.dtype == np.float32
    again = TimmEncoder(model=MODEL, pretrained=False, resolution=48).encode(images(), ctx)
    np.testing.assert_allclose(features, again, rtol=1e-5, atol=1e-6)
    other_seed = TimmEncoder(model=MODEL, pretrained=False, resolution=48, seed=1)
    assert not np.allclose(other_seed.encode(images(), ctx), features)


def test_grayscale_equals_repeated_rgb(ctx: RunContext) -> None:
    encoder = TimmEncoder(model=MODEL, pretrained=False, resolution=32)
    gray = images(3, channels=1)
    np.testing.assert_allclose(
        encoder.encode(gray, ctx), encoder.encode(np.repeat(gray, 3, axis=1), ctx), atol=1e-6
    )


def test_missing_weights_error_names_model_files_and_fix(empty_caches: Path) -> None:
    with pytest.raises(WeightsError) as err:
        TimmEncoder(model=MODEL)
    message = str(err.value)
    assert f"timm model {MODEL!r}: pretrained weights not found offline" in message
    assert str(empty_caches / "hf" / "models--timm--test_resnet.r160_in1k") in message
    assert "model.safetensors" in message
    assert f"https://huggingface.co/{HUB_REPO}" in message
    assert 'weights = "path/to/file"' in message
    assert "pretrained = false" in message


def test_weights_from_hugging_face_cache(empty_caches: Path, ctx: RunContext) -> None:
    snapshot = empty_caches / "hf" / "models--timm--test_resnet.r160_in1k" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    state = reference_state()
    save_file(state, str(snapshot / "model.safetensors"))
    encoder = TimmEncoder(model=MODEL, resolution=40)
    assert encoder.weights_path() == snapshot / "model.safetensors"
    assert encoder.flags() == []
    torch.testing.assert_close(encoder.model().conv1[0].weight, state["conv1.0.weight"])
    assert encoder.encode(images(2), ctx).shape == (2, 96)


def test_weights_from_local_file(tmp_path: Path, ctx: RunContext) -> None:
    path = tmp_path / "my_resnet.pth"
    state = reference_state(seed=3)
    torch.save(state, path)
    encoder = TimmEncoder(model=MODEL, weights=str(path), resolution=40)
    torch.testing.assert_close(encoder.model().conv1[0].weight, state["conv1.0.weight"])
    # pretrained weights differ from the seeded random init
    random = TimmEncoder(model=MODEL, pretrained=False, resolution=40)
    assert not np.allclose(encoder.encode(images(2), ctx), random.encode(images(2), ctx))


def test_missing_local_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"weights file .*nope\.pth does not exist"):
        TimmEncoder(model=MODEL, weights=str(tmp_path / "nope.pth"))


def test_corrupt_local_file_is_a_weights_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.pth"
    path.write_bytes(b"not a checkpoint")
    encoder = TimmEncoder(model=MODEL, weights=str(path))
    with pytest.raises(WeightsError, match=r"cannot load weights from .*broken\.pth"):
        encoder.model()


def test_unknown_model_suggests_a_name() -> None:
    with pytest.raises(ParameterError, match=r"unknown timm model 'resnet5O'.*did you mean"):
        TimmEncoder(model="resnet5O", pretrained=False)


def test_family_name_from_registry() -> None:
    registry = PluginRegistry()
    registry.add_module(encoders_package, "medsynbench")
    encoder = registry.create("encoder", f"timm:{MODEL}", {"pretrained": False})
    assert isinstance(encoder, TimmEncoder)
    assert encoder.params["model"] == MODEL
    assert encoder.flags() == [RANDOM_WEIGHTS_FLAG]
