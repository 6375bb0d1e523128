"""The ``monai`` generator on tiny random MONAI networks saved in the test (no downloads)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from medsynbench.errors import GeneratorError, ParameterError, PluginError, WeightsError
from medsynbench.registry import get_registry
from medsynbench.testing import make_toy_splits

torch = pytest.importorskip("torch")
monai_bundle = pytest.importorskip("monai.bundle")
pytest.importorskip("einops")  # MONAI's generative networks need it

CLASSES = ["dark", "bright"]


def network_def(spatial_dims=2, **extra):
    return {"_target_": "monai.networks.nets.DiffusionModelUNet", "spatial_dims": spatial_dims,
            "in_channels": 1, "out_channels": 1, "channels": [8, 8],
            "attention_levels": [False, False], "num_res_blocks": 1, "norm_num_groups": 4,
            **extra}


SCHEDULER = {"_target_": "monai.networks.schedulers.DDPMScheduler", "num_train_timesteps": 20}


def random_network(config):
    """The network with every weight random: MONAI zero-initialises its output convolution,
    which would make an untrained network ignore its input and class."""
    torch.manual_seed(0)
    net = monai_bundle.ConfigParser(config).get_parsed_content("network_def")
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.normal_(0.0, 0.2)
    return net


def save_checkpoint(path, **network):
    config = {"network_def": network_def(**network), "noise_scheduler": SCHEDULER}
    net = random_network(config)
    torch.save({**config, "state_dict": net.state_dict()}, path)
    return path


def save_bundle(folder, **network):
    # as model-zoo bundles write them: a reference to a top-level item
    config = {"spatial_dims": 2, "network_def": {**network_def(**network),
                                                  "spatial_dims": "@spatial_dims"},
              "noise_scheduler": SCHEDULER}
    (folder / "configs").mkdir(parents=True)
    (folder / "models").mkdir()
    (folder / "configs" / "inference.json").write_text(json.dumps(config))
    net = random_network(config)
    torch.save(net.state_dict(), folder / "models" / "model.pt")
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("monai")
    save_checkpoint(root / "class.pt", num_class_embeds=3)  # label 2: no class
    save_bundle(root / "bundle")
    save_checkpoint(root / "ct3d.pt", spatial_dims=3)
    return root


def make(**params):
    return get_registry().create("generator", "monai", params)


def nothing_written(ctx):
    return not ctx.workdir.exists() or not any(ctx.workdir.iterdir())


def test_a_class_conditioned_2d_checkpoint(models, toy_splits, ctx):
    gen = make(path=str(models / "class.pt"), null_class=2, value_range=[-1.0, 1.0])
    assert len(gen.params["digest"]) == 64
    gen.fit(toy_splits.train, CLASSES, ctx.workdir, ctx)
    fresh = make(path=str(models / "class.pt"), null_class=2, value_range=[-1.0, 1.0])
    fresh.load(ctx.workdir, ctx)
    out = fresh.sample([3, 2], seed=1, ctx=ctx, steps=3)
    assert out.images.shape == (5, 1, 16, 16) and out.labels.tolist() == [0, 0, 0, 1, 1]
    assert np.array_equal(out.images, fresh.sample([3, 2], 1, ctx, steps=3).images)
    guided = fresh.sample([3, 2], seed=1, ctx=ctx, steps=3, guidance=3.0)
    assert not np.array_equal(out.images, guided.images)
    probe = fresh.efficiency(ctx, (1, 16, 16))
    assert probe["peak_gpu_memory_mb_8"] is None and probe["seconds_per_1000"] > 0


def test_an_unconditional_bundle_per_class(models, toy_splits, ctx):
    gen = make(class_paths={c: str(models / "bundle") for c in CLASSES})
    gen.fit(toy_splits.train, CLASSES, ctx.workdir, ctx)
    out = gen.sample([1, 2], seed=0, ctx=ctx, steps=2)
    assert out.images.shape == (3, 1, 16, 16)
    with pytest.raises(GeneratorError, match=r"is unconditional \(no num_class_embeds\), so it "
                       r"cannot make labelled images of 2 classes"):
        make(path=str(models / "bundle")).fit(toy_splits.train, CLASSES, ctx.workdir / "b", ctx)


def test_a_3d_model_cut_into_montages_like_ct(models, ctx):
    gen = make(path=str(models / "ct3d.pt"), sample_shape=[8, 8, 16], images_per_volume=2,
               slices_per_image=4)
    splits = make_toy_splits(n_per_class=4)
    one_class = splits.train.subset(np.flatnonzero(splits.train.labels == 0))
    gen.fit(one_class, ["ct"], ctx.workdir, ctx)
    out = gen.sample([3], seed=0, ctx=ctx, steps=2)  # two volumes, 2 montages each: 3 kept
    assert out.images.shape == (3, 1, 16, 16)
    with pytest.raises(ParameterError, match=r"a 3-D or latent model needs `sample_shape`"):
        make(path=str(models / "ct3d.pt")).fit(one_class, ["ct"], ctx.workdir / "x", ctx)


def test_a_latent_model_decodes_through_its_autoencoder(tmp_path, toy_splits, ctx):
    autoencoder_def = {
        "_target_": "monai.networks.nets.AutoencoderKL", "spatial_dims": 2, "in_channels": 1,
        "out_channels": 1, "channels": [4, 4], "latent_channels": 2, "num_res_blocks": 1,
        "attention_levels": [False, False], "norm_num_groups": 2}
    config = {"network_def": network_def(in_channels=2, out_channels=2, num_class_embeds=2),
              "noise_scheduler": SCHEDULER, "autoencoder_def": autoencoder_def,
              "scale_factor": 0.5}
    net = random_network(config)
    autoencoder = monai_bundle.ConfigParser(config).get_parsed_content("autoencoder_def")
    torch.save({**config, "state_dict": net.state_dict(),
                "autoencoder_state_dict": autoencoder.state_dict()}, tmp_path / "ldm.pt")
    gen = make(path=str(tmp_path / "ldm.pt"), sample_shape=[8, 8])  # latents at 1/2 the side
    gen.fit(toy_splits.train, CLASSES, ctx.workdir, ctx)
    assert gen.sample([1, 1], seed=0, ctx=ctx, steps=2).images.shape == (2, 1, 16, 16)
    without = {k: v for k, v in torch.load(tmp_path / "ldm.pt").items()
               if k != "autoencoder_state_dict"}
    torch.save(without, tmp_path / "no-ae.pt")
    with pytest.raises(GeneratorError, match="defines autoencoder_def but holds no "
                       "autoencoder_state_dict"):
        make(path=str(tmp_path / "no-ae.pt"), sample_shape=[8, 8]).fit(
            toy_splits.train, CLASSES, ctx.workdir / "x", ctx)


def test_missing_files_name_the_file(models, tmp_path):
    with pytest.raises(WeightsError, match=r"nowhere.pt not found; point `path` at a MONAI "
                       r"bundle folder or a torch.save checkpoint"):
        make(path=str(tmp_path / "nowhere.pt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match=r"is not a MONAI bundle: .*configs/inference.json "
                       r"not found"):
        make(path=str(tmp_path / "empty"))
    bundle = save_bundle(tmp_path / "b")
    (bundle / "models" / "model.pt").unlink()
    with pytest.raises(WeightsError, match=r"the bundle's weights .*models/model.pt not found"):
        make(path=str(bundle))


def test_bad_checkpoints_and_sizes_are_one_message(models, toy_splits, ctx, tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "bare.pt")
    with pytest.raises(GeneratorError, match=r"holds \['state_dict'\]; it needs network_def and "
                       r"noise_scheduler"):
        make(path=str(tmp_path / "bare.pt")).fit(toy_splits.train, CLASSES, ctx.workdir, ctx)
    big = make_toy_splits(size=32)
    with pytest.raises(GeneratorError, match=r"makes 16×16 images but the dataset's are 32×32"):
        make(path=str(models / "class.pt"), sample_shape=[16, 16]).fit(
            big.train, CLASSES, ctx.workdir, ctx)
    with pytest.raises(GeneratorError, match=r"makes 1-channel images but the dataset's have 3"):
        make(path=str(models / "class.pt")).fit(make_toy_splits(channels=3).train, CLASSES,
                                                ctx.workdir, ctx)
    with pytest.raises(GeneratorError, match=r"failed on noise of shape \(1, 1, 15, 15\): "
                       r"RuntimeError: .*check `sample_shape`"):
        make(path=str(models / "class.pt")).fit(make_toy_splits(size=15).train, CLASSES,
                                                ctx.workdir, ctx)
    assert nothing_written(ctx)


def test_without_monai_installed(models, monkeypatch):
    monkeypatch.setitem(sys.modules, "monai", None)
    with pytest.raises(PluginError, match=r"needs the `monai` package .* pip install "
                       r"'medsynbench\[monai\]'"):
        make(path=str(models / "class.pt"))
