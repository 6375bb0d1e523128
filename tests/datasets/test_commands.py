"""`medsynbench data info` / `data prepare` handlers (through argparse, as the CLI calls them)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from dataset_fakes import make_class_tree, write_image
from medsynbench.errors import DataError, ParameterError
from medsynbench.plugins.datasets import commands
from PIL import Image

# Tiny fixtures make tiny splits: that warning is expected here (and tested on its own).
pytestmark = [pytest.mark.filterwarnings("ignore:split .* has only"),
              pytest.mark.filterwarnings("ignore:split 'test' has .* images")]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medsynbench")
    commands.register_commands(parser.add_subparsers(dest="command"))
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return int(args.func(args))


def test_info_prints_counts_imbalance_and_writes_mosaic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:


    root = tmp_path / "tree"
    for k, (name, n) in enumerate({"rare": 2, "common": 8}.items()):
        for i in range(n):  # distinct noise: no duplicates across the classes
            write_image(root / name / f"img_{i}.png", value=40 * k, seed=100 * k + i)
    out = tmp_path / "mosaic.png"
    code = _run(["data", "info", "imagefolder", "--root", str(root), "--set", "channels=1",
                 "--set", "test_fraction=0.5", "--set", "val_fraction=0", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "train" in text and "test" in text and "rare" in text
    assert "class imbalance in 'train'" in text and "common 4 vs rare 1" in text
    with Image.open(out) as mosaic:
        assert mosaic.size[1] > 2 * 20  # two class rows


def test_info_on_a_phantom_rejects_root(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="reads no files"):
        _run(["data", "info", "phantom-xray", "--root", str(tmp_path)])


def test_info_phantom_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.png"
    _run(["data", "info", "phantom-xray", "--set", "n_train=3", "--set", "n_test=2",
          "--set", "n_val=0", "--set", "resolution=32", "--out", str(out)])
    text = capsys.readouterr().out
    assert "normal" in text and "pneumonia" in text and out.exists()
    assert "imbalance" not in text


def test_settings_parse_json_values() -> None:
    assert commands.parse_settings(["a=3", "b=0.5", "c=true", "d=null", "e=text"]) == {
        "a": 3, "b": 0.5, "c": True, "d": None, "e": "text"}
    with pytest.raises(ParameterError, match="key=value"):
        commands.parse_settings(["novalue"])


def test_prepare_fills_the_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_class_tree(tmp_path / "tree", {"a": 3, "b": 3})
    cache = tmp_path / "cache"
    assert _run(["data", "prepare", "imagefolder", "--root", str(root), "--cache-dir",
                 str(cache)]) == 0
    assert list((cache / "prepared" / "imagefolder").glob("*/COMPLETE"))
    assert "prepared" in capsys.readouterr().out


def test_prepare_without_cache_dir_is_refused(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDSYNBENCH_CACHE", raising=False)
    with pytest.raises(DataError, match="cache-dir"):
        _run(["data", "prepare", "phantom-xray"])


def test_hook_is_reachable_from_the_package() -> None:
    from medsynbench.plugins import datasets

    assert datasets.register_commands is commands.register_commands


def test_info_prints_duplicates_by_name(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "tree"
    for split, offset in (("train", 0), ("test", 50)):
        for k, name in enumerate(("a", "b")):
            for i in range(3):
                write_image(root / split / name / f"{name}{i}.png", value=40 * k,
                            seed=offset + 10 * k + i)
    (root / "test" / "a" / "copy.png").write_bytes((root / "train" / "a" / "a1.png").read_bytes())
    with pytest.warns(UserWarning, match="straddle splits"):
        _run(["data", "info", "imagefolder", "--root", str(root), "--set", "channels=1",
              "--set", "duplicates=report", "--out", str(tmp_path / "m.png")])
    text = capsys.readouterr().out
    assert "Duplicates" in text and "policy 'report'" in text
    assert "across train~test         1 exact pairs      0 near" in text
    assert "e.g. exact: train/a/a1.png, test/a/copy.png" in text
    assert "1 cluster(s) of duplicate images straddle splits" in text


def test_info_audits_a_procedural_dataset(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    _run(["data", "info", "phantom-xray", "--set", "n_train=5", "--set", "n_test=3",
          "--set", "n_val=0", "--set", "resolution=32", "--out", str(tmp_path / "m.png")])
    text = capsys.readouterr().out
    assert "Duplicates" in text and "across splits: none" in text and "clusters: 0" in text
