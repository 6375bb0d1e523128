"""``reader-study score``: the numbers a known answering rule implies, and refused answers."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from statistics import NormalDist
from typing import Any

import pytest
from medsynbench.cli import main
from medsynbench.errors import ResultsError
from medsynbench.reader_study.answers import read_answers, read_study
from medsynbench.reader_study.score import score_study
from medsynbench.reader_study.stats import wilson
from sklearn.metrics import cohen_kappa_score

from .conftest import answer_like_page, build, fooled_by_copies, truthful, write_answers


@pytest.fixture(scope="module")
def study(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tiny_run, tmp_path_factory.mktemp("score") / "study", images=4)


@pytest.fixture(scope="module")
def timed_study(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tiny_run, tmp_path_factory.mktemp("timed") / "study", images=6,
                 protocol="timed", entries=("noise", "copy-real"), attention_pairs=1)


def _files(study: Path, folder: Path, *rules: tuple[str, Any]) -> list[Path]:
    return [write_answers(folder, answer_like_page(study, reader, rule)) for reader, rule in rules]


def _by_entry(scores: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["entry"]: row for row in scores["entries"]}


def test_scores_equal_what_the_rule_implies(study: Path, tmp_path: Path) -> None:
    files = _files(study, tmp_path, ("A", truthful), ("B", fooled_by_copies))
    assert main(["reader-study", "score", *map(str, files), "--study", str(study),
                 "--out", str(tmp_path / "scores")]) == 0
    scores = json.loads((tmp_path / "scores" / "scores.json").read_text())
    rows = _by_entry(scores)
    z = NormalDist().inv_cdf
    # noise: both readers call its 4 synthetic images fake and its 4 real images real
    assert rows["noise"]["fir"] == 1.0 and rows["noise"]["real_error"] == 0.0
    assert rows["noise"]["agreement"] == {"method": "cohen", "kappa": 1.0, "reason": None}
    for name in ("copy-real", "heldout-real"):  # A: all right; B: every image "real"
        row = rows[name]
        assert row["fir"] == 0.5 and row["fir_ci95"] == wilson(4, 8)
        assert row["real_error"] == 0.0 and row["real_error_ci95"] == wilson(0, 8)
        assert row["error_rate"] == row["hype_inf"] == 4 / 16
        assert row["d_prime"] == pytest.approx(z(4.5 / 9) - z(0.5 / 9))
        a = ["fake"] * 4 + ["real"] * 4
        assert row["agreement"]["kappa"] == pytest.approx(cohen_kappa_score(a, ["real"] * 8))
        assert [r["fir"] for r in row["per_reader"]] == [1.0, 0.0]
    assert [r["attention"]["passed"] for r in scores["readers"]] == [True, True]
    csv_rows = (tmp_path / "scores" / "scores.csv").read_text().splitlines()
    assert csv_rows[0].startswith("entry,readers,synthetic_images,real_images,fir,fir_ci95_low")
    assert len(csv_rows) == 4


def test_a_reader_failing_attention_checks_is_flagged_and_left_out(study: Path,
                                                                    tmp_path: Path) -> None:
    def everything_real(trial: dict[str, Any], index: int) -> str:
        return "real"

    files = _files(study, tmp_path, ("A", truthful), ("B", fooled_by_copies),
                   ("C", everything_real))
    readers = read_answers(files, read_study(study))
    scores = score_study(read_study(study), readers)
    flagged = {r["reader"]: (r["flagged"], r["included"]) for r in scores["readers"]}
    assert flagged == {"A": (False, True), "B": (False, True), "C": (True, False)}
    assert _by_entry(scores)["copy-real"]["fir"] == 0.5  # A and B only
    kept = score_study(read_study(study), readers, keep_flagged=True)
    row = _by_entry(kept)["copy-real"]
    assert row["fir"] == pytest.approx(4 / 12) and row["agreement"]["method"] == "fleiss"
    with pytest.raises(ResultsError, match=r"every reader \(C\) failed the attention checks"):
        score_study(read_study(study), read_answers(files[2:], read_study(study)))


def _staircase_rule() -> Any:
    """Right on every image of an entry except its 7th and 11th: 3-down/1-up then gives
    500×3, 350×3, 250 (wrong), 350×3, 250 (wrong), 350 → reversals 250, 350, 250."""
    seen: Counter[str] = Counter()

    def rule(trial: dict[str, Any], index: int) -> str:
        if trial["entry"] is None:
            return str(trial["truth"])
        seen[trial["entry"]] += 1
        wrong = seen[trial["entry"]] in (7, 11)
        return ("real" if trial["truth"] == "fake" else "fake") if wrong else str(trial["truth"])

    return rule


def test_timed_threshold_is_the_mean_of_the_reversals(timed_study: Path, tmp_path: Path) -> None:
    files = _files(timed_study, tmp_path, ("T1", _staircase_rule()))
    scores = score_study(read_study(timed_study), read_answers(files, read_study(timed_study)))
    for row in scores["entries"]:
        assert row["threshold_ms"] == pytest.approx(850 / 3)
        assert row["per_reader"][0]["reversals"] == [250, 350, 250]
        assert row["hype_inf"] is None and row["error_rate"] == pytest.approx(2 / 12)
    document = json.loads(files[0].read_text())
    document["answers"][5]["exposure_ms"] = 100  # not what the staircase gives
    files[0].write_text(json.dumps(document))
    with pytest.raises(ResultsError, match="where the staircase gives"):
        score_study(read_study(timed_study), read_answers(files, read_study(timed_study)))


# --- bad input: one clear message, nothing written -----------------------------------------

def _refused(files: list[Path], study: Path, out: Path, match: str,
             capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["reader-study", "score", *map(str, files), "--study", str(study),
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert match in err, err
    assert not out.exists()


def test_answers_from_another_study(study: Path, tiny_run: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    other = build(tiny_run, tmp_path / "other", images=4, seed=7)
    files = _files(other, tmp_path, ("A", truthful))
    _refused(files, study, tmp_path / "out", f"answers study {read_study(other).study_id!r}, "
             f"not {read_study(study).study_id!r}", capsys)


def test_duplicated_answer_files(study: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    (first,) = _files(study, tmp_path, ("A", truthful))
    _refused([first, first], study, tmp_path / "out", "duplicated answers", capsys)
    second = tmp_path / "copy-of-A.json"
    document = answer_like_page(study, "A", fooled_by_copies)  # same reader, other answers
    second.write_text(json.dumps(document))
    _refused([first, second], study, tmp_path / "out", "both hold reader 'A'", capsys)


def test_truncated_answer_file(study: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    (path,) = _files(study, tmp_path, ("A", truthful))
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    _refused([path], study, tmp_path / "out", "is truncated or not valid JSON", capsys)


def test_a_reader_who_skipped_images(study: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    document = answer_like_page(study, "A", truthful)
    total = len(document["answers"])
    document["answers"] = document["answers"][:-3]
    path = write_answers(tmp_path, document)
    _refused([path], study, tmp_path / "out",
             f"reader 'A' answered {total - 3} of {total} images (3 not answered)", capsys)
    document = answer_like_page(study, "B", truthful)
    del document["answers"][4]  # skipped one in the middle
    _refused([write_answers(tmp_path, document)], study, tmp_path / "out",
             "is out of the page's order", capsys)


def test_mixed_protocols(study: Path, timed_study: Path, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    files = [*_files(study, tmp_path, ("A", truthful)),
             *_files(timed_study, tmp_path, ("B", truthful))]
    _refused(files, study, tmp_path / "out", "the answers mix protocols", capsys)
    _refused(files[1:], study, tmp_path / "out",
             "are from a study of protocol 'timed' but", capsys)
