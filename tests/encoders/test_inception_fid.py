"""inception-fid: pytorch-fid's network and preprocessing, offline weights, flags.

Only random weights are used here (the real file is not shipped); these tests check the code
path and the equality with pytorch-fid's own pipeline, never FID values.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from medsynbench import RunContext
from medsynbench.errors import PluginError, WeightsError
from medsynbench.plugins.encoders.inception_fid import (
    FID_WEIGHTS_FILE,
    FID_WEIGHTS_URL,
    InceptionFID,
    build_fid_inception,
)
from medsynbench.plugins.encoders.timm_encoder import RANDOM_WEIGHTS_FLAG

pytest.importorskip("pytorch_fid")


@pytest.fixture(scope="module")
def small_input_encoder() -> InceptionFID:
    """Random weights, with the library's 299-px resize switched off so CPU tests are fast.

    Our preprocessing runs before the library's resize either way, so equality with
    pytorch-fid's pipeline at 32 px implies equality at 299 px.
    """
    encoder = InceptionFID(pretrained=False, batch_size=2)
    encoder.model().resize_input = False
    return encoder


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


def small_images(n: int, channels: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, channels, 80, 80), dtype=np.uint8)


@pytest.mark.slow
def test_full_299_pipeline_with_random_weights(ctx: RunContext) -> None:
    encoder = InceptionFID(pretrained=False)
    assert encoder.flags() == [RANDOM_WEIGHTS_FLAG]
    features = encoder.encode(small_images(1, 1), ctx)
    assert features.shape == (1, 2048) and features.dtype == np.float32
    assert np.isfinite(features).all() and features.std() > 0


def test_batching_invariance_and_determinism(
    small_input_encoder: InceptionFID, ctx: RunContext
) -> None:
    images = small_images(3, 3)
    features = small_input_encoder.encode(images, ctx)  # batches of 2 and 1
    assert features.shape == (3, 2048)
    # image 1 alone equals image 1 inside a batch of 2: no cross-talk between batch items
    single = small_input_encoder.encode(images[1:2], ctx)
    np.testing.assert_allclose(single, features[1:2], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(small_input_encoder.encode(images[2:], ctx), features[2:])


def test_matches_pytorch_fid_pipeline_on_grayscale(
    small_input_encoder: InceptionFID, ctx: RunContext
) -> None:
    """Our uint8 path equals pytorch-fid's: PIL convert("RGB") → ToTensor → InceptionV3."""
    from PIL import Image
    from torchvision.transforms.functional import to_tensor

    gray = small_images(1, 1, seed=3)
    reference_input = torch.stack([to_tensor(Image.fromarray(g[0]).convert("RGB")) for g in gray])
    with torch.no_grad():
        reference = small_input_encoder.model()(reference_input)[0].flatten(1).numpy()
    np.testing.assert_allclose(
        small_input_encoder.encode(gray, ctx), reference, rtol=1e-5, atol=1e-6
    )


def test_missing_weights_names_file_checksum_url_and_place(torch_home: Path) -> None:
    with pytest.raises(WeightsError) as err:
        InceptionFID()
    message = str(err.value)
    assert f"{FID_WEIGHTS_FILE} not found at {torch_home / 'hub' / 'checkpoints'}" in message
    assert "sha256 starts with 6726825d" in message
    assert FID_WEIGHTS_URL in message
    assert f'weights = "path/to/{FID_WEIGHTS_FILE}"' in message


def test_missing_weights_param_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"weights file .*absent\.pth \(parameter `weights`\)"):
        InceptionFID(weights=str(tmp_path / "absent.pth"))


def test_cached_file_is_loaded_and_nonstandard_hash_flagged(torch_home: Path) -> None:
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    state = _skeleton_state(seed=5)
    torch.save(state, checkpoints / FID_WEIGHTS_FILE)
    encoder = InceptionFID()
    assert encoder.weights_path() == checkpoints / FID_WEIGHTS_FILE
    (flag,) = encoder.flags()
    assert "not the standard FID Inception, not comparable" in flag
    # the wrapper's layers carry the file's tensors (first conv and the last FID block)
    model = encoder.model()
    torch.testing.assert_close(model.blocks[0][0].conv.weight, state["Conv2d_1a_3x3.conv.weight"])
    torch.testing.assert_close(
        model.blocks[3][2].branch_pool.conv.weight, state["Mixed_7c.branch_pool.conv.weight"]
    )


def _skeleton_state(seed: int) -> dict[str, torch.Tensor]:
    """A state dict in the layout of the published weights file (torchvision Inception3 keys)."""
    from pytorch_fid import inception

    captured: dict[str, dict[str, torch.Tensor]] = {}
    original = inception._inception_v3

    def keep(*args: object, **kwargs: object) -> torch.nn.Module:
        model = original(*args, **kwargs)
        captured["model"] = model  # type: ignore[assignment]
        return model

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inception, "_inception_v3", keep)
        build_fid_inception(None, seed=seed)
    return captured["model"].state_dict()  # type: ignore[attr-defined]


def test_wrong_state_dict_is_a_weights_error(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, path)
    encoder = InceptionFID(weights=str(path))
    with pytest.raises(WeightsError, match=r"other\.pth is not the FID Inception state dict"):
        encoder.model()


def test_missing_library_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pytorch_fid", None)
    with pytest.raises(PluginError, match=r'pip install "medsynbench\[fid\]"'):
        InceptionFID(pretrained=False)
