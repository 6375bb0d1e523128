"""The ``diffusers`` generator on tiny random pipelines saved in the test (no downloads)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from medsynbench import RunContext
from medsynbench.errors import GeneratorError, ParameterError, PluginError, WeightsError
from medsynbench.registry import get_registry
from medsynbench.testing import make_toy_splits

diffusers = pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")

CLASSES = ["dark", "bright"]
_BLOCKS = {"block_out_channels": (8, 16), "layers_per_block": 1, "norm_num_groups": 4}


def _unet(channels=1, **extra):
    return diffusers.UNet2DModel(
        sample_size=16, in_channels=channels, out_channels=channels,
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
        **_BLOCKS, **extra)


def _ddpm(unet):
    return diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler(
        num_train_timesteps=50))


def _text_pipeline(folder):
    transformers = pytest.importorskip("transformers")
    vocab = {"<|startoftext|>": 0, "!": 1, "<|endoftext|>": 2}
    for suffix in ("", "</w>"):
        vocab.update({c + suffix: len(vocab) for c in "abcdefghijklmnopqrstuvwxyz"})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = transformers.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"),
                                           pad_token="!", model_max_length=16)
    text_encoder = transformers.CLIPTextModel(transformers.CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_attention_heads=2,
        num_hidden_layers=1, max_position_embeddings=16, bos_token_id=0, pad_token_id=1,
        eos_token_id=2, projection_dim=16))
    unet = diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, cross_attention_dim=16,
        attention_head_dim=2, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), **_BLOCKS)
    return diffusers.StableDiffusionPipeline(
        unet=unet, vae=_vae(), text_encoder=text_encoder, tokenizer=tokenizer,
        scheduler=_scheduler(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def _vae():
    return diffusers.AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=4, sample_size=16)


def _scheduler():
    return diffusers.DDIMScheduler(num_train_timesteps=50, steps_offset=1, clip_sample=False)


def _dit_pipeline():
    transformer = diffusers.DiTTransformer2DModel(
        num_attention_heads=2, attention_head_dim=4, in_channels=4, out_channels=8, num_layers=1,
        sample_size=8, patch_size=2, norm_num_groups=4)
    return diffusers.DiTPipeline(transformer=transformer, vae=_vae(), scheduler=_scheduler(),
                                 id2label={0: "dark", 1: "bright"})


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory):
    """Tiny random pipelines: one unconditional per class, a class-conditioned and a text one."""
    root = tmp_path_factory.mktemp("pipelines")
    torch.manual_seed(0)
    for name in CLASSES:
        _ddpm(_unet()).save_pretrained(root / f"ddpm-{name}")
    _ddpm(_unet(num_class_embeds=3)).save_pretrained(root / "ddpm-class")  # label 2: no class
    _text_pipeline(root).save_pretrained(root / "text")
    _dit_pipeline().save_pretrained(root / "dit")
    _unet().save_pretrained(root / "bare-unet")  # a model folder, not a pipeline
    return root


def make(**params):
    return get_registry().create("generator", "diffusers", params)


def per_class(root):
    return {name: str(root / f"ddpm-{name}") for name in CLASSES}


def nothing_written(ctx):
    return not ctx.workdir.exists() or not any(ctx.workdir.iterdir())


def test_one_unconditional_pipeline_per_class(pipelines, toy_splits, ctx):
    gen = make(class_paths=per_class(pipelines))
    assert gen.conditioning == "none" and len(gen.params["digest"]) == 64
    info = gen.fit(toy_splits.train, CLASSES, ctx.workdir, ctx)
    assert info["conditioning"] == "none"

    fresh = make(class_paths=per_class(pipelines))
    fresh.load(ctx.workdir, ctx)
    out = fresh.sample([3, 2], seed=5, ctx=ctx, steps=3)
    assert out.images.shape == (5, 1, 16, 16) and out.labels.tolist() == [0, 0, 0, 1, 1]
    # every image has its own generator: the batch size does not change the images
    again = fresh.sample([3, 2], seed=5, ctx=ctx, steps=3, batch_size=2)
    assert np.array_equal(out.images, again.images)
    assert not np.array_equal(out.images, fresh.sample([3, 2], 6, ctx, steps=3).images)
    probe = fresh.efficiency(ctx, (1, 16, 16))
    assert probe["peak_gpu_memory_mb_8"] is None and probe["seconds_per_1000"] > 0


def test_a_class_conditioned_unet_with_guidance_and_another_scheduler(pipelines, toy_splits,
                                                                      ctx):
    gen = make(path=str(pipelines / "ddpm-class"), null_class=2)
    assert gen.conditioning == "class"
    gen.fit(toy_splits.train, CLASSES, ctx.workdir, ctx)
    plain = gen.sample([2, 2], seed=0, ctx=ctx, steps=2)
    assert plain.images.shape == (4, 1, 16, 16)
    guided = gen.sample([2, 2], seed=0, ctx=ctx, steps=2, guidance=3.0,
                        scheduler="DDIMScheduler")
    assert type(gen._loaded[1].scheduler).__name__ == "DDIMScheduler"
    assert not np.array_equal(plain.images, guided.images)
    # a class label reaches the UNet: the same noise gives other images for the other class
    swapped = make(path=str(pipelines / "ddpm-class"), class_labels=[1, 0])
    swapped.fit(toy_splits.train, CLASSES, ctx.workdir / "swapped", ctx)
    other = swapped.sample([2, 2], seed=0, ctx=ctx, steps=2)
    assert not np.array_equal(plain.images, other.images)

    unguided = make(path=str(pipelines / "ddpm-class"))
    unguided.fit(toy_splits.train, CLASSES, ctx.workdir / "unguided", ctx)
    with pytest.raises(GeneratorError, match="guidance != 1 on a class-conditioned UNet needs "
                       "`null_class`"):
        unguided.sample([1, 1], seed=0, ctx=ctx, steps=2, guidance=2.0)


def test_a_dit_pipeline_takes_the_class_labels_itself(pipelines, ctx):
    rgb = make_toy_splits(channels=3)
    gen = make(path=str(pipelines / "dit"))
    assert gen.conditioning == "class"
    gen.fit(rgb.train, CLASSES, ctx.workdir, ctx)
    out = gen.sample([2, 2], seed=0, ctx=ctx, steps=2, guidance=2.0)
    assert out.images.shape == (4, 3, 16, 16)
    # the same seeds with the labels swapped: other images, so the label reaches the model
    swapped = make(path=str(pipelines / "dit"), class_labels=[1, 0])
    swapped.fit(rgb.train, CLASSES, ctx.workdir / "swapped", ctx)
    other = swapped.sample([2, 2], seed=0, ctx=ctx, steps=2, guidance=2.0)
    assert not np.array_equal(out.images, other.images)


def test_a_text_pipeline_with_one_prompt_template(pipelines, ctx):
    rgb = make_toy_splits(channels=3)
    gen = make(path=str(pipelines / "text"), prompt="a chest xray showing {class_name}",
               negative_prompt="blurry")
    assert gen.conditioning == "text"
    gen.fit(rgb.train, CLASSES, ctx.workdir, ctx)
    assert [gen._prompt(c) for c in (0, 1)] == ["a chest xray showing dark",
                                              "a chest xray showing bright"]
    out = gen.sample([2, 1], seed=0, ctx=ctx, steps=2, guidance=2.0)
    assert out.images.shape == (3, 3, 16, 16) and out.images.dtype == np.uint8

    gray = make(path=str(pipelines / "text"), prompt=["dark lungs", "bright lungs"],
                convert_channels=True)
    gray.fit(make_toy_splits().train, CLASSES, ctx.workdir / "gray", ctx)
    assert gray.sample([1, 1], seed=0, ctx=ctx, steps=2).images.shape == (2, 1, 16, 16)


def test_the_pipelines_own_error_is_one_message(pipelines, ctx):
    gen = make(path=str(pipelines / "text"), prompt="{class_name}")
    with pytest.raises(GeneratorError, match=r"StableDiffusionPipeline from .*text failed: "
                       r"ValueError: .*divisible by 8"):
        gen.fit(make_toy_splits(size=12, channels=3).train, CLASSES, ctx.workdir, ctx)
    assert nothing_written(ctx)


def test_a_text_pipeline_without_prompts_is_refused(pipelines):
    with pytest.raises(ParameterError, match=r"is a text-conditioned pipeline and needs "
                       r"`prompt`: a template such as \"a chest X-ray showing \{class_name\}\""):
        make(path=str(pipelines / "text"))


def test_a_folder_that_is_not_a_pipeline(pipelines, tmp_path):
    with pytest.raises(GeneratorError, match=r"bare-unet is not a diffusers pipeline: it has no "
                       r"model_index.json; save one with pipeline.save_pretrained"):
        make(path=str(pipelines / "bare-unet"))
    with pytest.raises(WeightsError, match=r"pipeline folder '.*nowhere' not found"):
        make(path=str(tmp_path / "nowhere"))
    with pytest.raises(WeightsError, match=r"pipeline folder '.*ddpm-dark' not found"):
        make(class_paths=per_class(tmp_path))
    with pytest.raises(ParameterError, match=r"give `path` \(one pipeline folder\) or "
                       r"`class_paths` \(one unconditional pipeline per class\), not neither"):
        make()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text(json.dumps(
        {"_class_name": "DDPMPipeline", "unet": ["diffusers", "UNet2DModel"],
         "scheduler": ["diffusers", "DDPMScheduler"]}))
    gen = make(path=str(broken))
    with pytest.raises(GeneratorError, match=r"diffusers cannot load the pipeline in .*broken"):
        gen.fit(make_toy_splits().train, ["only"], tmp_path / "work", RunContext())
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize("splits, message", [
    (make_toy_splits(size=32), r"makes 16×16 images but the dataset's are 32×32; set the "
     r"dataset's `resolution` to 16"),
    (make_toy_splits(channels=3), r"makes 1-channel images but the dataset's have 3; set "
     r"convert_channels = true"),
])
def test_a_pipeline_whose_images_differ_from_the_dataset(pipelines, ctx, splits, message):
    gen = make(class_paths=per_class(pipelines))
    with pytest.raises(GeneratorError, match=message):
        gen.fit(splits.train, CLASSES, ctx.workdir, ctx)
    assert nothing_written(ctx)


def test_one_unconditional_pipeline_cannot_label_two_classes(pipelines, toy_splits, ctx):
    gen = make(path=str(pipelines / "ddpm-dark"))
    with pytest.raises(GeneratorError, match=r"unconditional pipeline, which cannot make labelled "
                       r"images of 2 classes; save one pipeline per class and give them as "
                       r"class_paths"):
        gen.fit(toy_splits.train, CLASSES, ctx.workdir, ctx)
    with pytest.raises(GeneratorError, match=r"`class_paths` must name each class of the dataset "
                       r"once \(dark, grey\); 'bright' is not one; no folder for 'grey'"):
        make(class_paths=per_class(pipelines)).fit(toy_splits.train, ["dark", "grey"],
                                                   ctx.workdir, ctx)
    assert nothing_written(ctx)


def test_class_paths_are_for_unconditional_pipelines(pipelines):
    with pytest.raises(ParameterError, match=r"`class_paths` is for unconditional pipelines, one "
                       r"per class, but some are class-conditioned; give a conditioned pipeline "
                       r"as `path`"):
        make(class_paths={"dark": str(pipelines / "ddpm-dark"),
                          "bright": str(pipelines / "ddpm-class")})


def test_scheduler_names_and_guidance_are_checked(pipelines, toy_splits, ctx):
    with pytest.raises(ParameterError, match=r"'DDIMSchedular' is not a diffusers scheduler — "
                       r"did you mean \"DDIMScheduler\"\?"):
        get_registry().get("generator", "diffusers").validate_sample(
            {"scheduler": "DDIMSchedular"})
    gen = make(class_paths=per_class(pipelines))
    gen.fit(toy_splits.train, CLASSES, ctx.workdir, ctx)
    with pytest.raises(GeneratorError, match="DDPMPipeline takes no guidance scale"):
        gen.sample([1, 1], seed=0, ctx=ctx, steps=2, guidance=2.0)


def test_new_weights_get_a_new_digest(pipelines, tmp_path):
    folder = tmp_path / "pipe"
    _ddpm(_unet()).save_pretrained(folder)
    before = make(path=str(folder)).params["digest"]
    torch.manual_seed(1)
    _ddpm(_unet()).save_pretrained(folder)  # retrained in place
    assert make(path=str(folder)).params["digest"] != before
    with pytest.raises(GeneratorError, match="does not match the `digest`"):
        make(path=str(folder), digest=before)


def test_without_diffusers_installed(pipelines, monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(PluginError, match=r"needs the `diffusers` package \(to load pipelines\), "
                       r"which is not installed: pip install 'medsynbench\[diffusion\]'"):
        make(path=str(pipelines / "ddpm-dark"))
