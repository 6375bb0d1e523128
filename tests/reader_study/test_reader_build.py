"""``reader-study build``: what a study holds, what the browser sees, and refused inputs."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from medsynbench.cli import main
from medsynbench.errors import DataError, OutputError, ParameterError
from medsynbench.reader_study.answers import read_study
from medsynbench.reader_study.build import StudyOptions, build_study

from .conftest import ENTRIES, build


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_study_is_stratified_without_repeats_and_reveals_nothing(tiny_run: Path,
                                                                  tmp_path: Path) -> None:
    out = build(tiny_run, tmp_path / "study", images=4)
    study = read_study(out)
    trials = list(study.trials.values())
    kinds = Counter((t["entry"], t["kind"], t["class"]) for t in trials)
    for entry in ENTRIES:
        for kind in ("synthetic", "real"):
            assert kinds[(entry, kind, "normal")] == 2 and kinds[(entry, kind, "pneumonia")] == 2
    assert Counter(t["kind"] for t in trials)["attention-noise"] == 2
    reals = [(t["source"]["split"], t["source"]["index"]) for t in trials
             if t["kind"] in ("real", "attention-real")]
    assert len(reals) == len(set(reals)) == 3 * 4 + 2  # no real image shown twice
    page = out / "page"
    for trial in trials:  # content-hashed names
        data = (page / trial["file"]).read_bytes()
        assert trial["file"] == f"images/{hashlib.sha256(data).hexdigest()[:20]}.png"
    script = (page / "study-data.js").read_text()
    for secret in (*ENTRIES, "truth", "synthetic", "attention-", "pneumonia", '"c":'):
        assert secret not in script  # unlimited studies hold no answer token either
    assert sorted(p.name for p in page.iterdir()) == [
        "images", "index.html", "medsynbench-study.json", "study-data.js", "study.css",
        "study.js"]
    assert (out / ".gitignore").read_text() == "*\n"
    again = build(tiny_run, tmp_path / "again", images=4)
    assert read_study(again).study_id == study.study_id  # one seed, one study
    other = build(tiny_run, tmp_path / "other", images=4, seed=1)
    assert read_study(other).study_id != study.study_id


def test_options_entries_classes_and_timed_tokens(tiny_run: Path, tmp_path: Path) -> None:
    out = build(tiny_run, tmp_path / "study", images=3, entries=("noise",),
                classes=("pneumonia",), protocol="timed", attention_pairs=1, display_size=48)
    study = read_study(out)
    assert study.manifest["entries"] == ["noise"] and study.protocol == "timed"
    assert {t["class"] for t in study.trials.values() if t["entry"]} == {"pneumonia"}
    page = json.loads((out / "page" / "study-data.js").read_text()
                      .removeprefix("window.MEDSYNBENCH_STUDY = ").rstrip(";\n"))
    assert page["timed"]["ladder_ms"][0] == 1000 and all("c" in t for t in page["trials"])
    from PIL import Image

    with Image.open(out / "page" / study.trials[next(iter(study.trials))]["file"]) as image:
        assert image.size == (48, 48)


def test_cli_build_says_what_the_folder_holds(tiny_run: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "study"
    assert main(["reader-study", "build", str(tiny_run), "--out", str(out), "--images", "2",
                 "--attention-pairs", "1"]) == 0
    captured = capsys.readouterr()
    assert "(unlimited): 14 images" in captured.out
    # 2 real per entry × 3 + 1 attention real + the 2 + 2 "synthetic" images of copy-real and
    # heldout-real, which are real images too
    assert "holds 11 real image(s)" in captured.err
    assert "cannot check images for burned-in identifiers" in captured.err


# --- bad input: one clear message, nothing written -----------------------------------------

def _refused(run: Path, out: Path, error: type[Exception], match: str, **options: object) -> None:
    with pytest.raises(error, match=match):
        build_study(run, out, StudyOptions(**options))  # type: ignore[arg-type]
    assert not out.exists()
    assert [n for n in _leftovers(out.parent) if ".tmp-" in n] == []


def test_a_run_without_samples_is_refused(tiny_run: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(tiny_run / "results.json", bare / "results.json")
    _refused(bare, tmp_path / "s1", DataError, r"has no sampled images to show \(its stage "
             r"cache .* does not exist\); a study needs a finished run")
    document = json.loads((tiny_run / "results.json").read_text())
    for entry in document["entries"]:
        assert set(entry["units"]) == {"fit", "sample"}  # where the run's images are
        entry["samples"], entry["units"] = None, {}
    (bare / "results.json").write_text(json.dumps(document))
    _refused(bare, tmp_path / "s2", DataError, "results.json names no sample mosaic",
             cache_dir=tiny_run / "cache")
    empty = tmp_path / "no-results"
    empty.mkdir()
    _refused(empty, tmp_path / "s3", DataError, "holds no results.json")


def test_an_entry_with_fewer_images_than_asked_is_refused(tiny_run: Path, tmp_path: Path) -> None:
    # the tiny run samples 12 images per class: 30 over 2 classes asks for 15 per class
    _refused(tiny_run, tmp_path / "s", DataError,
             r"entry 'noise' has 12 synthetic image\(s\) of class 'normal'; the study asks for "
             r"15 \(--images 30 over 2 class\(es\)\): lower --images", images=30)
    # 8 per class from 3 entries' reference split of 12 per class: the real pool runs out
    _refused(tiny_run, tmp_path / "s", DataError,
             r"split 'train' has 12 real image\(s\) of class 'normal'; the study needs 27 \(8 "
             r"for each of 3 entries", images=16)


def test_other_bad_options(tiny_run: Path, tmp_path: Path) -> None:
    _refused(tiny_run, tmp_path / "s", DataError,
             r'no such entry — did you mean "noise"\? \(entries: noise, copy-real',
             entries=("nosie",))
    _refused(tiny_run, tmp_path / "s", DataError,
             r'no such class — did you mean "normal"\? \(classes: normal, pneumonia\)',
             classes=("normla",))
    _refused(tiny_run, tmp_path / "s", ParameterError, "--protocol 'hype'", protocol="hype")
    _refused(tiny_run, tmp_path / "s", ParameterError, "--images 0", images=0)
    _refused(tiny_run, tmp_path / "s", ParameterError, "--display-size 8", display_size=8)
    _refused(tiny_run, tmp_path / "s", ParameterError, "--fixation-ms -1", fixation_ms=-1)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="already exists and is not empty"):
        build_study(tiny_run, taken, StudyOptions(images=2))
    assert _leftovers(taken) == ["keep.txt"]


def test_prepared_data_is_found_when_the_key_rule_changed(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (unit,) = (run / "cache" / "prepare").iterdir()
    moved = unit.rename(unit.with_name("0" * 64))  # as if the runner derived its key otherwise
    assert read_study(build(run, tmp_path / "study", images=2)).manifest["entries"] == list(
        ENTRIES)
    shutil.copytree(moved, moved.with_name("1" * 64))  # two candidates: which one is the run's?
    _refused(run, tmp_path / "s", DataError, "prepared 'phantom-xray' data is not in its cache "
             r".* \(several candidates\)", images=2)
