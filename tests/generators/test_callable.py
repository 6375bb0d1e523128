"""The ``callable`` generator: a user's function, checked against the dataset, cached by content."""

from __future__ import annotations

import hashlib
import textwrap

import numpy as np
import pytest
from medsynbench import RunContext
from medsynbench.errors import GeneratorError, ParameterError
from medsynbench.registry import get_registry

SCRIPT = '''
import numpy as np

CALLS = []

def generate(counts, seed, level=100):
    """Class c: a flat image of level + 50 c, plus seeded noise."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(counts)), counts)
    noise = rng.integers(0, 5, size=(len(labels), 1, 16, 16))
    return (level + 50 * labels[:, None, None, None] + noise).astype(np.uint8)

def with_context(counts, seed, image_shape, class_names):
    CALLS.append((tuple(image_shape), tuple(class_names)))
    return np.zeros((sum(counts), *image_shape), dtype=np.uint8)

def one_short(counts, seed):
    return np.zeros((sum(counts) - 1, 1, 16, 16), dtype=np.uint8)

def floats(counts, seed):
    return np.zeros((sum(counts), 1, 16, 16), dtype=np.float32)

def channels_last(counts, seed):
    return np.zeros((sum(counts), 16, 16, 1), dtype=np.uint8)

def too_small(counts, seed):
    return np.zeros((sum(counts), 1, 8, 8), dtype=np.uint8)

def a_list(counts, seed):
    return [0] * sum(counts)

def broken(counts, seed):
    raise ValueError("checkpoint not loaded")

def no_seed(counts):
    return None
'''


@pytest.fixture
def script(tmp_path, monkeypatch):
    path = tmp_path / "my_gen.py"
    path.write_text(SCRIPT)
    monkeypatch.chdir(tmp_path)
    return path


def make(target, **params):
    return get_registry().create("generator", "callable", {"target": target, **params})


def test_samples_from_a_script_deterministically(script, toy_splits, ctx):
    gen = make(f"{script}:generate", options={"level": 60})
    assert gen.params["digest"] == hashlib.sha256(script.read_bytes()).hexdigest()
    gen.fit(toy_splits.train, ["dark", "bright"], ctx.workdir, ctx)

    fresh = make(f"{script}:generate", options={"level": 60})
    fresh.load(ctx.workdir, ctx)
    out = fresh.sample([3, 2], seed=7, ctx=ctx)
    assert out.images.shape == (5, 1, 16, 16) and out.labels.tolist() == [0, 0, 0, 1, 1]
    assert out.images[:3].max() < 65 <= out.images[3:].min()  # options reached the function
    again = fresh.sample([3, 2], seed=7, ctx=ctx)
    assert np.array_equal(out.images, again.images)
    probe = fresh.efficiency(ctx, (1, 16, 16))
    assert probe["peak_gpu_memory_mb_8"] is None and probe["seconds_per_1000"] > 0


def test_a_module_target_with_context_arguments(script, toy_splits, ctx, monkeypatch):
    monkeypatch.syspath_prepend(str(script.parent))
    gen = make("my_gen:with_context")
    gen.fit(toy_splits.train, ["dark", "bright"], ctx.workdir, ctx)
    out = gen.sample([1, 1], seed=0, ctx=ctx)
    assert out.images.shape == (2, 1, 16, 16)
    import my_gen

    assert my_gen.CALLS[-1] == ((1, 16, 16), ("dark", "bright"))


@pytest.mark.parametrize("function, message", [
    ("one_short", r"shape \(1, 1, 16, 16\), expected \(2, 1, 16, 16\).*1 images where 2 were"),
    ("floats", r"returned float32 images; return uint8 .*astype\(np.uint8\)"),
    ("channels_last", r"channels last; return images.transpose\(0, 3, 1, 2\)"),
    ("too_small", r"8×8 images where the dataset's are 16×16"),
    ("a_list", r"returned list; return a numpy uint8 array"),
    ("broken", r"raised ValueError: checkpoint not loaded \(for counts=\[1, 1\], seed=0"),
])
def test_bad_output_is_one_message_and_nothing_is_written(script, toy_splits, ctx, function,
                                                          message):
    gen = make(f"{script}:{function}")
    with pytest.raises(GeneratorError, match=message):
        gen.fit(toy_splits.train, ["dark", "bright"], ctx.workdir, ctx)
    assert not ctx.workdir.exists() or not any(ctx.workdir.iterdir())


def test_a_target_that_cannot_be_imported(script):
    with pytest.raises(GeneratorError, match=r"'no_such_package.gen:f' cannot be imported: no "
                       r"module named 'no_such_package'; give target"):
        make("no_such_package.gen:f")
    with pytest.raises(GeneratorError, match=r"script 'missing.py' not found"):
        make("missing.py:generate")
    with pytest.raises(GeneratorError, match=r"has no function 'generat' \(its functions: "
                       r"a_list, broken"):
        make(f"{script}:generat")
    with pytest.raises(ParameterError, match=r"is not 'module:function'"):
        make("my_gen.generate")
    bad = script.parent / "bad_import.py"
    bad.write_text("import numpy\nraise RuntimeError('no GPU here')\n")
    with pytest.raises(GeneratorError, match=r"importing .*bad_import.py.* raised RuntimeError: "
                       r"no GPU here"):
        make(f"{bad}:f")


def test_a_function_that_cannot_take_counts_seed_and_options(script):
    with pytest.raises(ParameterError, match=r"no_seed\(counts\) cannot be called as "
                       r"f\(counts, seed\)"):
        make(f"{script}:no_seed")
    with pytest.raises(ParameterError, match=r"cannot be called as f\(counts, seed, \*\*options\)"
                       r".*'colour'"):
        make(f"{script}:generate", options={"colour": 1})


def test_an_edited_script_gets_a_new_digest_and_a_pinned_one_is_refused(script):
    before = make(f"{script}:generate").params["digest"]
    script.write_text(SCRIPT + textwrap.dedent("""
        def later(counts, seed):
            return None
    """))
    after = make(f"{script}:generate").params["digest"]
    assert after != before  # a new fit key: the edited function is sampled afresh
    with pytest.raises(GeneratorError, match=r"does not match the `digest`.*hash to "
                       f"{after}, not {before}"):
        make(f"{script}:generate", digest=before)


def test_sample_before_fit_is_refused(script):
    with pytest.raises(GeneratorError, match="before fit"):
        make(f"{script}:generate").sample([1, 1], 0, RunContext())
