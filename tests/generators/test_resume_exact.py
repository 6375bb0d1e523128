"""Exact resume: a fit SIGKILLed between two checkpoints and run again ends bit for bit where an
uninterrupted fit ends (weights, optimiser and RNG states, sampled images), for every trained
generator family; plus the global-RNG helpers the resume relies on.

The interrupted fit runs in a subprocess that checkpoints every ``EVERY`` steps and, at step
``kill_step`` of stage ``kill_tag`` (between two checkpoints, after a few steps past the last
one have advanced the weights and every RNG), tells the test and waits to be killed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from medsynbench import RunContext
from medsynbench.errors import GeneratorError
from medsynbench.plugins.generators.ldm import LDM
from medsynbench.plugins.generators.rng import fit_rng, rng_state, set_rng_state
from medsynbench.plugins.generators.stylegan2 import StyleGAN2
from medsynbench.plugins.generators.training import (
    Trainer,
    read_checkpoint,
    save_checkpoint,
)
from medsynbench.plugins.generators.vqvae2 import VQVAE2
from medsynbench.testing import make_toy_splits
from torch import nn

EVERY = 4  # checkpoint cadence of the interrupted run
WAIT_SECONDS = 120.0

# The interrupted fit. Checkpointing more often than the plugin does, and stopping at the kill
# point, are the only changes: neither touches the maths or the random numbers.
CHILD = r"""
import importlib, json, sys, time
from pathlib import Path
import torch
from medsynbench import RunContext
from medsynbench.plugins.generators.training import Trainer
from medsynbench.testing import make_toy_splits

spec = json.loads(sys.argv[1])
torch.set_num_threads(spec["threads"])
init, run = Trainer.__init__, Trainer.run

def checkpoint_often(self, *args, **kwargs):
    init(self, *args, **kwargs)
    self.checkpoint_every = spec["every"]

def wait_at_kill_point(self, step_fn):
    def step(i):
        if self.tag == spec["kill_tag"] and i == spec["kill_step"]:
            Path(spec["marker"]).write_text(str(i))
            time.sleep(600)
        return step_fn(i)
    return run(self, step)

Trainer.__init__, Trainer.run = checkpoint_often, wait_at_kill_point
module, name = spec["plugin"].rsplit(".", 1)
generator = getattr(importlib.import_module(module), name)(**spec["params"])
splits = make_toy_splits(**spec["splits"])
workdir = Path(spec["workdir"])
ctx = RunContext(device="cpu", seed=spec["seed"], workdir=workdir)
generator.fit(splits.train, splits.class_names, workdir, ctx)
"""

FAMILIES: dict[str, dict[str, Any]] = {
    # Killed in class 1's autoencoder: class 0's three stages resume from their final
    # checkpoints, class 1's autoencoder (EMA codebook restarts) from step 4.
    "vqvae2": {
        "cls": VQVAE2,
        "params": {"preset": "tiny", "vq_steps": 12, "prior_steps": 8},
        "splits": {"n_per_class": 8, "size": 16, "channels": 3},
        "kill_tag": "class1-vqvae",
        "kill_step": 6,
        "total": 12,
        "final": "vqvae2.pt",
        "modules": lambda g: g.parts,
    },
    # Killed in the first stage (VQ autoencoder with codebook restarts); the UNet stage then
    # runs from the resumed autoencoder.
    "ldm": {
        "cls": LDM,
        "params": {"preset": "tiny", "ae_steps": 12, "unet_steps": 8},
        "splits": {"n_per_class": 8, "size": 16, "channels": 1},
        "kill_tag": "autoencoder",
        "kill_step": 6,
        "total": 12,
        "final": "ldm.pt",
        "sample": {"ddim_steps": 4, "eta": 1.0},
        "modules": lambda g: g.models,
    },
    # Every global-RNG consumer on: z, noise inputs, style mixing, DiffAugment; data flips.
    "stylegan2": {
        "cls": StyleGAN2,
        "params": {"preset": "tiny", "kimg": 0.096, "mirror": True, "style_mixing": 0.5,
                   "augment": "color,translation,cutout"},
        "splits": {"n_per_class": 8, "size": 16, "channels": 1},
        "kill_tag": "train",
        "kill_step": 6,
        "total": 12,
        "final": "stylegan2.pt",
        "modules": lambda g: g._g,
    },
}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread here and in the subprocess: float sums then add up alike."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _fit(family: Mapping[str, Any], workdir: Path, log: list[str]) -> Any:
    splits = make_toy_splits(**family["splits"])
    ctx = RunContext(device="cpu", seed=3, workdir=workdir, log=log.append)
    generator = family["cls"](**family["params"])
    generator.fit(splits.train, splits.class_names, workdir, ctx)
    images = generator.sample([2, 2], seed=5, ctx=ctx, **family.get("sample", {})).images
    return generator, torch.from_numpy(images)


def _kill_between_checkpoints(family: Mapping[str, Any], workdir: Path) -> None:
    """Run the fit in a subprocess and SIGKILL it at the kill point."""
    marker = workdir.parent / f"{workdir.name}.at-kill-point"
    spec = {
        "plugin": f"{family['cls'].__module__}.{family['cls'].__name__}",
        "params": family["params"], "splits": family["splits"], "seed": 3,
        "workdir": str(workdir), "threads": 1, "every": EVERY,
        "kill_tag": family["kill_tag"], "kill_step": family["kill_step"], "marker": str(marker),
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(spec)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while not marker.exists():
            if child.poll() is not None:
                pytest.fail(f"the fit ended before the kill point: {child.stderr.read()!r}")
            if time.monotonic() > deadline:
                pytest.fail(f"the fit did not reach the kill point in {WAIT_SECONDS:.0f} s")
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stderr.close()  # type: ignore[union-attr]


def _assert_identical(a: Any, b: Any, where: str) -> None:
    """Equal nested checkpoint contents: tensors bit for bit, everything else by ==."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert torch.equal(a, b), f"{where} differs"
    elif isinstance(a, Mapping):
        assert isinstance(b, Mapping) and set(a) == set(b), f"{where}: keys differ"
        for key in a:
            if key != "elapsed":  # wall-clock seconds
                _assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("name", list(FAMILIES))
def test_fit_killed_between_checkpoints_resumes_bit_for_bit(name: str, tmp_path: Path) -> None:
    family = FAMILIES[name]
    straight, straight_images = _fit(family, tmp_path / "straight", [])

    killed = tmp_path / "killed"
    _kill_between_checkpoints(family, killed)
    # Killed between two checkpoints: the last one is behind the kill point, the fit unfinished.
    checkpoint = read_checkpoint(killed / f"{family['kill_tag']}.resume.pt", name)
    last = family["kill_step"] // EVERY * EVERY
    assert 0 < checkpoint["step"] == last < family["kill_step"] < family["total"]
    assert not (killed / family["final"]).exists()

    log: list[str] = []
    resumed, resumed_images = _fit(family, killed, log)
    assert any(f"resuming {family['kill_tag']} from step {last}" in m for m in log), log

    assert torch.equal(resumed_images, straight_images)
    straight_state = family["modules"](straight).state_dict()
    resumed_state = family["modules"](resumed).state_dict()
    _assert_identical(resumed_state, straight_state, name)
    checkpoints = sorted(p.name for p in (tmp_path / "straight").glob("*.pt"))
    assert checkpoints == sorted(p.name for p in killed.glob("*.pt"))
    for file in checkpoints:  # every stage: weights, optimisers, data and global RNG states
        _assert_identical(read_checkpoint(killed / file, name),
                          read_checkpoint(tmp_path / "straight" / file, name), file)


# --------------------------------------------------------------------------- the helpers
def _draw() -> tuple[float, float, float]:
    return float(torch.rand(())), float(np.random.random()), random.random()


def test_rng_state_roundtrips_through_a_weights_only_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    np.random.standard_normal()  # leaves a cached gaussian in numpy's state
    random.gauss(0, 1)  # and in python's
    save_checkpoint(tmp_path / "c.pt", "demo", {}, {"rng": rng_state()})
    expected = _draw()
    _draw()
    set_rng_state(read_checkpoint(tmp_path / "c.pt", "demo")["rng"])
    assert _draw() == expected


def test_fit_rng_seeds_the_fit_and_gives_the_caller_its_states_back() -> None:
    torch.manual_seed(11)
    np.random.seed(11)
    random.seed(11)
    caller = _draw()
    torch.manual_seed(11)
    np.random.seed(11)
    random.seed(11)
    inside = []
    for _ in range(2):
        with fit_rng(7, torch.device("cpu")):
            inside.append(_draw())
    assert inside[0] == inside[1]  # the fit's draws depend on its seed only
    assert _draw() == caller  # and the caller's stream went on untouched


def test_resume_checkpoint_without_rng_state_is_refused(tmp_path: Path) -> None:
    """A resume checkpoint of an earlier version (no RNG states) would resume inexactly."""
    ctx = RunContext(workdir=tmp_path)

    def trainer() -> Trainer:
        model = nn.Linear(2, 1)
        return Trainer("demo", {"lr": 0.1}, ctx, {"m": model},
                       {"m": torch.optim.SGD(model.parameters(), lr=0.1)}, 4)

    old = trainer()
    state = {k: v for k, v in old._state().items() if k != "rng"}
    save_checkpoint(old.resume_path, "demo", old.config, state)
    with pytest.raises(GeneratorError, match=r"did not save the random-number state.*delete it"):
        trainer().try_resume()


@pytest.mark.gpu
def test_rng_state_roundtrips_cuda_states(tmp_path: Path) -> None:
    torch.cuda.manual_seed_all(2)
    torch.rand((), device="cuda")  # initialises CUDA, so its states are captured
    save_checkpoint(tmp_path / "c.pt", "demo", {}, {"rng": rng_state()})
    expected = torch.rand(4, device="cuda")
    set_rng_state(read_checkpoint(tmp_path / "c.pt", "demo")["rng"])
    assert torch.equal(torch.rand(4, device="cuda"), expected)
