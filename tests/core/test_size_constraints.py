"""Image sizes: what each generator accepts (ImageSize); the suite refuses the rest at validate.

The rules were checked against the architectures by running the networks on good and bad sizes
(vqvae2: 24 and 32 fit, 28 and 36 do not; stylegan2: 32 fits, 28 and 48 give 16 and 32 px
fakes; ldm with unet_mults [1, 2]: 16, 32, 64 fit, 8, 24, 40 do not; with [1, 2, 4]: 32 and 64).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from medsynbench.errors import GeneratorError, SuiteError
from medsynbench.kinds import ImageSize
from medsynbench.plugins.generators.controls import MarkerInject
from medsynbench.plugins.generators.ldm import LDM
from medsynbench.plugins.generators.stylegan2 import StyleGAN2
from medsynbench.plugins.generators.vqvae2 import VQVAE2
from medsynbench.registry import get_registry
from medsynbench.suite import load_suite


def test_image_size_rule_in_words_and_numbers():
    anything = ImageSize()
    assert anything.accepts(28, 31) and anything.describe() == "any size"
    eights = ImageSize(multiple=8)
    assert eights.accepts(24, 32) and not eights.accepts(28, 32)
    assert eights.problems(28, 28) == ["28 is not a multiple of 8"]
    assert eights.problems(28, 36) == ["28 is not a multiple of 8", "36 is not a multiple of 8"]
    assert eights.describe() == "image sides a multiple of 8"
    gan = ImageSize(power_of_two=True, square=True, min_side=8)
    assert gan.accepts(8, 8) and gan.accepts(256, 256)
    assert gan.problems(4, 4) == ["4 is below 8"]
    assert gan.problems(32, 64) == ["32×64 is not square"]
    assert gan.problems(48, 48) == ["48 is not a power of two"]
    assert gan.describe() == "square images, sides a power of two ≥ 8 px"
    assert ImageSize(min_side=12).describe() == "image sides at least 12 px"


def test_each_generator_declares_what_its_architecture_needs():
    assert VQVAE2(preset="tiny").image_size().multiple == 8
    gan = StyleGAN2(preset="tiny").image_size()
    assert (gan.square, gan.power_of_two, gan.min_side) == (True, True, 8)
    # LDM: 8× first stage, then one halving per UNet level after the first.
    assert LDM(preset="tiny").image_size().multiple == 16  # unet_mults [1, 2]
    assert LDM(preset="paper").image_size().multiple == 32  # [1, 2, 4]
    assert LDM(preset="tiny", unet_mults=[1]).image_size().multiple == 8
    assert "unet_mults" in LDM(preset="paper").image_size().fix
    assert LDM(preset="tiny", unet_mults=[1]).image_size().fix == ""
    assert MarkerInject().image_size().min_side == 12
    assert MarkerInject(marker_mode="presence").image_size() == ImageSize()


@pytest.mark.parametrize("plugin", ["copy-real", "classical-augment", "noise", "label-swap",
                                    "near-copy", "mode-collapse", "blur"])
def test_real_image_rows_accept_any_size(plugin):
    assert get_registry().create("generator", plugin, {}).image_size() == ImageSize()


def test_fit_refuses_a_bad_size_with_the_same_rule():
    gen = StyleGAN2(preset="tiny")
    with pytest.raises(GeneratorError, match=r"28×28 images do not fit: it needs square images, "
                       r"sides a power of two ≥ 8 px .*but 28 is not a power of two"):
        gen.require_image_size(28, 28)
    gen.require_image_size(32, 32)


SUITE = """
[suite]
name = "sizes"
seeds = [0, 1, 2, 3, 4, 5, 6, 7]

[dataset]
plugin = "phantom-xray"
resolution = {side}
n_train = 4
n_val = 4
n_test = 4

[[generators]]
plugin = "copy-real"

[[generators]]
plugin = "vqvae2"
train = {{ preset = "tiny" }}

[[generators]]
plugin = "stylegan2"
train = {{ preset = "tiny" }}
sample = {{ truncation = [0.5, 1.0] }}

[[generators]]
plugin = "ldm"
train = {{ preset = "paper" }}

[[metrics]]
plugin = "mean-image-jpeg"
codec = "{codec}"
"""


def _suite(tmp_path: Path, side: int, codec: str = "jpeg") -> Path:
    path = tmp_path / "sizes.toml"
    path.write_text(SUITE.format(side=side, codec=codec))
    return path


def test_validate_reports_every_generator_that_refuses_the_planned_size(tmp_path):
    # 24 px: vqvae2 fits (a multiple of 8); stylegan2 (swept into two entries: one problem)
    # and ldm's paper UNet (a multiple of 32) do not. A bad metric parameter is reported too.
    # The fix is a side all three accept: 32 (16 would not suit ldm).
    with pytest.raises(SuiteError) as info:
        load_suite(_suite(tmp_path, 24, codec="gif"), get_registry())
    lines = info.value.problems
    assert len(lines) == 3, lines
    assert lines[0].startswith("metrics[0].codec")
    assert lines[1] == (
        "generators[2]: generator 'stylegan2' cannot be fitted on the dataset's 24×24 images: it "
        "needs square images, sides a power of two ≥ 8 px (the synthesis network doubles a 4×4 "
        "constant), but 24 is not a power of two; set dataset.resolution = 32 (a side every "
        "generator of this suite accepts)")
    assert lines[2].startswith("generators[3]: generator 'ldm' cannot be fitted on the "
                               "dataset's 24×24 images: it needs image sides a multiple of 32")
    assert lines[2].endswith("= 32 (a side every generator of this suite accepts); or give "
                             "unet_mults fewer levels (now [1, 2, 4]; each level removed halves "
                             "the multiple)")


def test_the_suggested_side_satisfies_every_generator(tmp_path):
    # 40 px: vqvae2 fits, stylegan2 and ldm do not; 64 suits all three, 32 too.
    with pytest.raises(SuiteError, match=r"set dataset.resolution = 64 or 32 "):
        load_suite(_suite(tmp_path, 40), get_registry())
    suite = load_suite(_suite(tmp_path, 64), get_registry())
    assert [e.name for e in suite.entries] == [
        "copy-real", "vqvae2", "stylegan2[truncation=0.5]", "stylegan2[truncation=1.0]", "ldm"]
