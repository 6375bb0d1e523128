"""A tiny finished run (phantom X-rays at 32 px, three entries, two seeds) shared by the reader
study tests, and helpers that answer a study by a known rule the way the page would."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from medsynbench.reader_study.answers import ANSWERS_KIND, read_study
from medsynbench.reader_study.build import StudyOptions, build_study
from medsynbench.reader_study.layout import reader_order
from medsynbench.reader_study.stats import LADDER_MS, Staircase

TINY_SUITE = """
[suite]
name = "reader-tiny"
seeds = [0, 1]
device = "cpu"
cpu_threads = 1

[dataset]
plugin = "phantom-xray"
classes = 2
resolution = 32
n_train = 12
n_val = 12
n_test = 6
seed = 0

[[generators]]
plugin = "noise"

[[generators]]
plugin = "copy-real"

[[generators]]
plugin = "heldout-real"
train = { pool = "val" }

[[metrics]]
plugin = "mean-image-jpeg"

[[tasks]]
plugin = "augmentation"
classifier = "small-cnn"
image_size = 32
epochs = 1
"""
ENTRIES = ("noise", "copy-real", "heldout-real")

Rule = Callable[[dict[str, Any], int], str]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a finished run of :data:`TINY_SUITE` (about 5 s on a 2-core CPU)."""
    from medsynbench.registry import get_registry
    from medsynbench.runner import Runner
    from medsynbench.suite import load_suite

    root = tmp_path_factory.mktemp("reader-run")
    suite_file = root / "tiny.toml"
    suite_file.write_text(TINY_SUITE)
    registry = get_registry()
    suite = load_suite(suite_file, registry, allow_underpowered=True)
    Runner(suite, registry, root / "run", device="cpu").run()
    return root / "run"


def build(run: Path, out: Path, **options: Any) -> Path:
    """Build a study with small defaults (4 images per kind per entry, 2 attention pairs)."""
    settings: dict[str, Any] = {"images": 4, "attention_pairs": 2, "display_size": 64}
    settings.update(options)
    build_study(run, out, StudyOptions(**settings))
    return out


def answer_like_page(study_dir: Path, reader: str, rule: Rule) -> dict[str, Any]:
    """The answers file the page exports when ``reader`` answers every image by ``rule``
    (trial from the answer key, position) — with the page's order and staircase."""
    study = read_study(study_dir)
    trials = study.trials
    order = reader_order(study.study_id, reader, sorted(trials))
    stairs: dict[int, Staircase] = {}
    answers = []
    for index, trial_id in enumerate(order):
        trial = trials[trial_id]
        answer = rule(trial, index)
        exposure = None
        if study.protocol == "timed":
            group = trial["group"]
            if group is None:
                exposure = LADDER_MS[0]
            else:
                stair = stairs.setdefault(group, Staircase())
                exposure = stair.exposure_ms
                stair.answer(answer == trial["truth"])
        answers.append({"index": index, "trial": trial_id, "answer": answer,
                        "confidence": 2 if study.protocol == "unlimited" else None,
                        "rt_ms": 800 + index, "exposure_ms": exposure,
                        "at": "2026-11-29T20:00:00Z"})
    return {"kind": ANSWERS_KIND, "schema_version": 1, "study_id": study.study_id,
            "protocol": study.protocol, "reader": reader, "started": "2026-11-29T20:00:00Z",
            "finished": "2026-11-29T20:10:00Z", "complete": True, "n_trials": len(order),
            "order": order, "answers": answers}


def write_answers(folder: Path, document: dict[str, Any]) -> Path:
    path = folder / f"answers-{document['study_id']}-{document['reader']}.json"
    path.write_text(json.dumps(document, indent=1))
    return path


def truthful(trial: dict[str, Any], index: int) -> str:
    """A perfect reader."""
    return str(trial["truth"])


def fooled_by_copies(trial: dict[str, Any], index: int) -> str:
    """Calls every image real except the noise entry's synthetic images and the attention noise."""
    noise = trial["entry"] == "noise" and trial["kind"] == "synthetic"
    return "fake" if noise or trial["kind"] == "attention-noise" else "real"
