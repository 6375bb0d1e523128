"""open-clip: a tiny random open_clip model saved inside each test, loaded from a checkpoint file
(registered architecture) or a Hugging Face style folder; precise errors for missing files."""

from __future__ import annotations

import json
from pathlib import Path

import medsynbench.plugins.encoders as encoders_package
import numpy as np
import open_clip
import pytest
import torch
from medsynbench import RunContext
from medsynbench.errors import ParameterError, WeightsError
from medsynbench.plugins.encoders.open_clip_encoder import OpenCLIPEncoder
from medsynbench.plugins.encoders.timm_encoder import RANDOM_WEIGHTS_FLAG
from medsynbench.registry import PluginRegistry

TINY = "medsynbench-tiny-clip"  # 43 k parameters, 16-d embeddings, 32 px
TINY_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16,
                   "head_width": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def tiny_architecture(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Register the tiny architecture with open_clip, as a built-in name would be."""
    configs = tmp_path_factory.mktemp("open_clip_configs")
    (configs / f"{TINY}.json").write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(configs)
    return TINY


@pytest.fixture(scope="module")
def hub_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face style open_clip folder: config (SigLIP-like mean/std) + random weights."""
    folder = tmp_path_factory.mktemp("tiny_clip")
    (folder / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": TINY_CFG, "preprocess_cfg": {"mean": [0.5] * 3, "std": [0.5] * 3}}))
    torch.manual_seed(5)
    model = open_clip.create_model(f"local-dir:{folder}", load_weights=False)
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder


def images(n: int = 3, channels: int = 1) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, channels, 24, 24), dtype=np.uint8)


def test_folder_weights_are_loaded_and_encode(hub_folder: Path, ctx: RunContext) -> None:
    encoder = OpenCLIPEncoder(weights=str(hub_folder))
    assert encoder.flags() == []
    saved = torch.load(hub_folder / "open_clip_pytorch_model.bin", weights_only=True)
    model = encoder.model()
    torch.testing.assert_close(model.visual.conv1.weight, saved["visual.conv1.weight"])
    assert list(model.visual.preprocess_cfg["mean"]) == [0.5] * 3  # the folder's, not OpenAI's
    features = encoder.encode(images(), ctx)
    assert features.shape == (3, 16) and features.dtype == np.float32
    # the embedding is encode_image of the normalised, resized image
    x = torch.from_numpy(images()).float().div(255).expand(-1, 3, -1, -1)
    x = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear", antialias=True,
                                        align_corners=False)
    with torch.no_grad():
        expected = model.encode_image((x - 0.5) / 0.5).numpy()
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)


def test_checkpoint_file_of_a_named_architecture(
    tiny_architecture: str, hub_folder: Path, ctx: RunContext
) -> None:
    path = hub_folder / "open_clip_pytorch_model.bin"
    encoder = OpenCLIPEncoder(model=tiny_architecture, weights=str(path))
    from_folder = OpenCLIPEncoder(weights=str(hub_folder))
    # same weights; the bare file carries no preprocessing, so OpenAI's mean/std apply
    torch.testing.assert_close(encoder.model().visual.proj, from_folder.model().visual.proj)
    assert not np.allclose(encoder.encode(images(), ctx), from_folder.encode(images(), ctx))
    registry = PluginRegistry()
    registry.add_module(encoders_package, "medsynbench")
    named = registry.create("encoder", f"open-clip:{tiny_architecture}", {"weights": str(path)})
    np.testing.assert_allclose(named.encode(images(), ctx), encoder.encode(images(), ctx))


def test_random_weights_are_flagged_and_seeded(tiny_architecture: str, ctx: RunContext) -> None:
    encoder = OpenCLIPEncoder(model=tiny_architecture, pretrained=False)
    assert encoder.flags() == [RANDOM_WEIGHTS_FLAG]
    again = OpenCLIPEncoder(model=tiny_architecture, pretrained=False)
    np.testing.assert_allclose(encoder.encode(images(), ctx), again.encode(images(), ctx))
    other = OpenCLIPEncoder(model=tiny_architecture, pretrained=False, seed=1)
    assert not np.allclose(other.encode(images(), ctx), encoder.encode(images(), ctx))


def test_missing_file_names_it_and_the_published_weights(tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as err:
        OpenCLIPEncoder(model="ViT-B-32", weights=str(tmp_path / "clip.bin"))
    message = str(err.value)
    assert f"weights file {tmp_path / 'clip.bin'} (parameter `weights`) does not exist" in message
    assert "checkpoint of 'ViT-B-32'" in message
    hub = "https://huggingface.co/laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
    assert f"tag laion2b_s34b_b79k: {hub}" in message
    assert "more in open_clip.list_pretrained_tags_by_model('ViT-B-32')" in message
    with pytest.raises(WeightsError, match=r"needs a local checkpoint .*pretrained = false"):
        OpenCLIPEncoder(model="ViT-B-32")


def test_incomplete_folders_are_refused(tmp_path: Path, hub_folder: Path) -> None:
    with pytest.raises(WeightsError, match=r"has no open_clip_config\.json"):
        OpenCLIPEncoder(weights=str(tmp_path))
    (tmp_path / "open_clip_config.json").write_text(
        (hub_folder / "open_clip_config.json").read_text())
    # open_clip alone would warn and go on with random weights
    with pytest.raises(WeightsError, match=r"has open_clip_config\.json but no checkpoint"):
        OpenCLIPEncoder(weights=str(tmp_path))


def test_wrong_checkpoint_is_one_weights_error(tiny_architecture: str, tmp_path: Path) -> None:
    path = tmp_path / "other.bin"
    torch.save({"visual.conv1.weight": torch.zeros(3)}, path)
    encoder = OpenCLIPEncoder(model=tiny_architecture, weights=str(path))
    with pytest.raises(WeightsError, match=r"cannot build .*other\.bin"):
        encoder.model()


def test_parameters_are_checked() -> None:
    with pytest.raises(ParameterError, match=r"unknown open_clip model 'ViT-B-23'.*did you mean"):
        OpenCLIPEncoder(model="ViT-B-23", pretrained=False)
    with pytest.raises(ParameterError, match="name the architecture"):
        OpenCLIPEncoder(pretrained=False)
    with pytest.raises(ParameterError, match="no pretrained tag 'laion9'"):
        OpenCLIPEncoder(model="ViT-B-32", tag="laion9", pretrained=False)
