"""dinov2: weights from a local file (timm or Meta format) or the torch hub cache, the precise
missing-file error, random-weights flag. Random ViT-S/14 weights are saved inside each test."""

from __future__ import annotations

from pathlib import Path

import medsynbench.plugins.encoders as encoders_package
import numpy as np
import pytest
import timm
import torch
from medsynbench import RunContext
from medsynbench.errors import ParameterError, WeightsError
from medsynbench.plugins.encoders.dinov2 import DINOv2Encoder
from medsynbench.plugins.encoders.timm_encoder import RANDOM_WEIGHTS_FLAG
from medsynbench.registry import PluginRegistry

MODEL = "vit_small_patch14_dinov2.lvd142m"  # the smallest DINOv2: 22 M parameters, 384-d


@pytest.fixture(scope="module")
def saved_state(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """Random DINOv2 ViT-S/14 weights (518 px position embeddings, as published) on disk."""
    torch.manual_seed(11)
    state = timm.create_model(MODEL, pretrained=False).state_dict()
    path = tmp_path_factory.mktemp("dinov2") / "dinov2_vits14_random.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture
def empty_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def images(n: int = 3, channels: int = 1) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, channels, 30, 30), dtype=np.uint8)


def test_local_weights_are_loaded_and_encode(
    saved_state: tuple[Path, dict[str, torch.Tensor]], ctx: RunContext
) -> None:
    path, state = saved_state
    encoder = DINOv2Encoder(model=MODEL, weights=str(path), resolution=28)
    assert encoder.flags() == []
    model = encoder.model()
    torch.testing.assert_close(model.blocks[0].attn.qkv.weight, state["blocks.0.attn.qkv.weight"])
    assert model.pos_embed.shape[1] == 1 + 2 * 2  # resampled to 28 px: 2×2 patches + CLS
    features = encoder.encode(images(), ctx)
    assert features.shape == (3, 384) and features.dtype == np.float32
    random = DINOv2Encoder(model=MODEL, pretrained=False, resolution=28)
    assert random.flags() == [RANDOM_WEIGHTS_FLAG]
    assert not np.allclose(random.encode(images(), ctx), features)


def test_meta_checkpoint_in_the_torch_hub_cache(
    saved_state: tuple[Path, dict[str, torch.Tensor]], empty_caches: Path, ctx: RunContext
) -> None:
    # torch.hub.load("facebookresearch/dinov2", "dinov2_vits14") leaves this file; Meta's
    # format has a mask_token timm drops on load.
    _, state = saved_state
    checkpoints = empty_caches / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save({**state, "mask_token": torch.zeros(1, 384)},
               checkpoints / "dinov2_vits14_pretrain.pth")
    encoder = DINOv2Encoder(model=MODEL, resolution=28)
    assert encoder.weights_path() == checkpoints / "dinov2_vits14_pretrain.pth"
    torch.testing.assert_close(encoder.model().patch_embed.proj.weight,
                               state["patch_embed.proj.weight"])
    assert encoder.encode(images(2, channels=3), ctx).shape == (2, 384)


def test_missing_weights_error_names_every_place_and_url(empty_caches: Path) -> None:
    with pytest.raises(WeightsError) as err:
        DINOv2Encoder(model=MODEL)
    message = str(err.value)
    assert message.startswith(f"encoder 'dinov2': timm model {MODEL!r}: pretrained weights "
                              "not found offline")
    assert str(empty_caches / "hf" / "models--timm--vit_small_patch14_dinov2.lvd142m") in message
    assert str(empty_caches / "torch" / "hub" / "checkpoints") in message
    assert "https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth" in (
        message)
    assert f"https://huggingface.co/timm/{MODEL}" in message
    assert 'weights = "path/to/file"' in message and "pretrained = false" in message


def test_missing_or_wrong_local_file(tmp_path: Path,
                                     saved_state: tuple[Path, dict[str, torch.Tensor]]) -> None:
    with pytest.raises(WeightsError, match=r"weights file .*nope\.pth does not exist"):
        DINOv2Encoder(model=MODEL, weights=str(tmp_path / "nope.pth"))
    # weights without registers for the model with registers: one clear error naming the file
    encoder = DINOv2Encoder(model="vit_small_patch14_reg4_dinov2.lvd142m",
                            weights=str(saved_state[0]), resolution=28)
    with pytest.raises(WeightsError, match=r"cannot load weights from .*dinov2_vits14_random"):
        encoder.model()


def test_parameters_are_checked() -> None:
    with pytest.raises(ParameterError, match="multiple of 14"):
        DINOv2Encoder(pretrained=False, resolution=30)
    with pytest.raises(ParameterError, match="model"):
        DINOv2Encoder(model="vit_small_patch16_224", pretrained=False)


def test_registered_with_dgm_eval_defaults() -> None:
    registry = PluginRegistry()
    registry.add_module(encoders_package, "medsynbench")
    encoder = registry.create("encoder", "dinov2", {"pretrained": False})
    assert isinstance(encoder, DINOv2Encoder)
    assert encoder.params["model"] == "vit_large_patch14_dinov2.lvd142m"
    assert encoder.params["resolution"] == 224
