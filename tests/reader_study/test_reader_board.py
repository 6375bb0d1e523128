"""The human fidelity column on a leaderboard, and publishing refusing a study folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from medsynbench.cli import main
from medsynbench.errors import ResultsError
from medsynbench.leaderboard import publish, read_results
from medsynbench.leaderboard.build import build_site
from medsynbench.leaderboard.loading import merge_results
from medsynbench.leaderboard.ranking import judge
from medsynbench.reader_study.answers import read_answers, read_study
from medsynbench.reader_study.board import FIR_KEY, read_scores
from medsynbench.reader_study.score import score_study, write_scores

from .conftest import answer_like_page, build, fooled_by_copies, truthful, write_answers


@pytest.fixture(scope="module")
def scored(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study of the tiny run, answered by two readers and scored: its scores.json."""
    root = tmp_path_factory.mktemp("board")
    study = build(tiny_run, root / "study", images=4)
    files = [write_answers(root, answer_like_page(study, r, rule))
             for r, rule in (("A", truthful), ("B", fooled_by_copies))]
    scores = score_study(read_study(study), read_answers(files, read_study(study)))
    json_file, _ = write_scores(scores, root / "scores")
    return json_file


def test_human_fir_is_a_fidelity_column_correlated_never_ranked(
        tiny_run: Path, scored: Path, tmp_path: Path) -> None:
    loaded = [read_results(tiny_run / "results.json")]
    plain, _ = judge(merge_results(loaded).entries)  # the same board's ranking, without it
    human = build_site(loaded, tmp_path / "human", human_scores=read_scores(scored))
    column = next(c for c in human["columns"] if c["key"] == FIR_KEY)
    assert column == {"key": FIR_KEY, "source": "metric", "axis": "fidelity",
                      "label": "human FIR", "higher_is_better": False}
    firs = {e["name"]: e["metrics"][FIR_KEY]["value"] for e in human["entries"]}
    assert firs == {"noise": 1.0, "copy-real": 0.5, "heldout-real": 0.5}
    ranks = [(e["name"], e["rank"], e.get("rank_interval")) for e in human["entries"]]
    assert ranks == [(e["name"], e["rank"], e.get("rank_interval")) for e in plain]
    rows = [r for r in human["correlations"] if r["metric"] == FIR_KEY]
    assert rows and rows[0]["n"] == 3 and rows[0]["axis"] == "fidelity"
    assert "human FIR" in (tmp_path / "human" / "index.html").read_text()
    assert "human FIR" in (tmp_path / "human" / "leaderboard.md").read_text()


def test_cli_board_with_human_scores_and_a_wrong_suite(
        tiny_run: Path, scored: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = str(tiny_run / "results.json")
    assert main(["leaderboard", results, "--human-scores", str(scored),
                 "--out", str(tmp_path / "board")]) == 0
    board = json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    assert any(c["key"] == FIR_KEY for c in board["columns"])
    other = json.loads(scored.read_text())
    other["suite"]["protocol_hash"] = "f" * 64
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(other))
    assert main(["leaderboard", results, "--human-scores", str(wrong),
                 "--out", str(tmp_path / "board2")]) == 2
    assert "come from a study of suite 'reader-tiny'" in capsys.readouterr().err
    assert not (tmp_path / "board2").exists()
    with pytest.raises(ResultsError, match="not a reader-study scores file"):
        read_scores(tiny_run / "results.json")
    renamed = json.loads(scored.read_text())
    renamed["entries"][0]["entry"] = "stylegan2"
    with pytest.raises(ResultsError, match="entry 'stylegan2' of the human scores is not on"):
        build_site([read_results(results)], tmp_path / "board3", human_scores=renamed)


def test_publish_refuses_a_study_folder(tiny_run: Path, scored: Path, tmp_path: Path) -> None:
    study = scored.parent.parent / "study"
    inside = study / "results.json"
    shutil.copy(tiny_run / "results.json", inside)
    root = tmp_path / "leaderboard"
    for target in (inside, study, study / "page"):
        with pytest.raises(ResultsError, match=r"reader-study folder .* holds real images"):
            publish(target, root, register_suite=True)
    inside.unlink()
    # a results file next to a study folder whose "mosaic" is one of the study's real images
    run = study.parent / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("cache"))
    shutil.copytree(study, run / "study")
    document = json.loads((run / "results.json").read_text())
    image = next((run / "study" / "page" / "images").iterdir())
    document["entries"][0]["samples"] = f"study/page/images/{image.name}"
    (run / "results.json").write_text(json.dumps(document))
    with pytest.raises(ResultsError, match=r"reader-study folder .* holds real images"):
        publish(run / "results.json", root, register_suite=True)
    assert not (root / "submissions").exists()
