"""Every suite shipped in suites/ validates: plugin names, parameters and key paths are right.

Every suite reads its data under ``$MEDSYNBENCH_DATA``; here that is a temporary folder holding
minimal fake layouts of the paper datasets (and ../shared/data's open sets, linked, when present),
so validation reaches every plugin's parameter check.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from medsynbench.suite import load_suite

SUITES = Path(__file__).resolve().parents[2] / "suites"


def _fake_home(home: Path, data: Path) -> None:
    for split in ("train", "val", "test"):
        for cls in ("NORMAL", "PNEUMONIA"):
            (data / "chest_xray" / split / cls).mkdir(parents=True)
    for cls in ("inflammatory", "necrosis", "stroma", "tumor", "fat", "gland"):
        (data / "bcss-lizard" / cls).mkdir(parents=True)
    (data / "CheXpert-v1.0").mkdir(parents=True)
    hub = home / ".cache" / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    # Validation only checks that the FID Inception weights are in place; nothing loads them here.
    (hub / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"placeholder")
    (data / "CheXpert-v1.0" / "train.csv").write_text(
        "Path,Sex,Age,Frontal/Lateral,AP/PA,Pleural Effusion\n"
    )


@pytest.mark.parametrize("path", sorted(SUITES.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_suite_validates(path, monkeypatch, tmp_path, shared_data_or_fake):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / ".cache" / "torch"))
    monkeypatch.setenv("MEDSYNBENCH_DATA", str(shared_data_or_fake))
    _fake_home(tmp_path, shared_data_or_fake)
    from medsynbench.registry import get_registry

    suite = load_suite(path, get_registry())
    assert suite.entries and suite.seeds and len(suite.hash) == 64
    assert len(suite.seeds) >= 6  # every shipped suite can reach p < 0.05 with Wilcoxon


@pytest.fixture
def shared_data_or_fake(tmp_path: Path) -> Path:
    """A data folder: ../shared/data's open sets linked in when present, else their layouts."""
    shared = Path(os.environ.get("MEDSYNBENCH_SHARED_DATA", SUITES.parents[1] / "shared" / "data"))
    data = tmp_path / "open-data"
    data.mkdir()
    for name in ("pneumoniamnist", "lc25000"):
        if (shared / name).is_dir():
            (data / name).symlink_to(shared / name)
    if not (data / "pneumoniamnist").exists():
        (data / "pneumoniamnist").mkdir()
    if not (data / "lc25000").exists():
        (data / "lc25000" / "images").mkdir(parents=True)
    return data
