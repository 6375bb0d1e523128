"""`medsynbench leaderboard RESULTS.json... --out DIR`: merging, outputs, correlations, safety."""

from __future__ import annotations

import argparse
import copy
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from leaderboard_fixtures import (
    SUITE_HASH,
    make_entry,
    make_results,
    standard_entries,
    write_results,
)
from medsynbench.errors import MedSynBenchError, ResultsError
from medsynbench.leaderboard import cli, rank_entries, read_leaderboard
from medsynbench.leaderboard.correlation import correlate, correlations
from scipy import stats


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="medsynbench")
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["leaderboard", *argv])
    return int(args.func(args))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two results files of one suite (the second holds the failed entry) merged into one site."""
    root = tmp_path_factory.mktemp("lb")
    entries = standard_entries()
    first = write_results(root / "run1", make_results(entries[:3]))
    second = write_results(root / "run2", make_results(entries[3:]))
    assert run_cli(str(first), str(second), "--out", str(root / "site")) == 0
    return root / "site"


def test_outputs_exist_and_json_validates(site: Path) -> None:
    for name in ("leaderboard.json", "leaderboard.csv", "leaderboard.md", "index.html"):
        assert (site / name).stat().st_size > 0
    document = read_leaderboard(site / "leaderboard.json")
    ranked = [e["name"] for e in document["entries"]]
    assert ranked == ["stylegan2[truncation=0.6]", "vqvae2", "ldm", "noise", "copy-real",
                      "broken-gan"]
    assert [e["rank"] for e in document["entries"]] == [1, 2, 3, 4, None, None]
    assert document["schema_version"] == 2 and document["verdict"]["rank_task"] == "augmentation"
    assert {e["source"] for e in document["entries"]} == {
        str(site.parent / "run1" / "results.json"), str(site.parent / "run2" / "results.json")}


def test_plots_written_as_png_and_svg(site: Path) -> None:
    document = read_leaderboard(site / "leaderboard.json")
    kinds = [p["kind"] for p in document["plots"]]
    assert kinds.count("scatter") == 5  # fid, precision, jpeg_bytes, variety V, privacy
    assert kinds.count("heatmap") == 1 and kinds.count("boxplot") == 1
    for plot in document["plots"]:
        assert (site / plot["png"]).read_bytes()[:4] == b"\x89PNG"
        assert b"<svg" in (site / plot["svg"]).read_bytes()[:500]


def test_real_mosaics_withheld_synthetic_copied(site: Path) -> None:
    document = read_leaderboard(site / "leaderboard.json")
    by_name = {e["name"]: e for e in document["entries"]}
    assert by_name["copy-real"]["samples"] is None
    assert "real training images" in by_name["copy-real"]["samples_note"]
    assert by_name["ldm"]["samples"] == "samples/ldm.png"
    assert (site / "samples" / "ldm.png").exists()
    copied = sorted(p.name for p in (site / "samples").iterdir())
    assert copied == ["ldm.png", "noise.png", "stylegan2_truncation_0.6.png"]
    page = (site / "index.html").read_text()
    assert 'alt="synthetic samples of copy-real' not in page
    assert 'alt="synthetic samples of ldm, one row per class"' in page
    assert "Mosaic withheld" in page


def test_include_real_shows_real_mosaic(tmp_path: Path) -> None:
    path = write_results(tmp_path / "run", make_results(standard_entries()[:2]))
    assert run_cli(str(path), "--out", str(tmp_path / "site"), "--include-real") == 0
    assert (tmp_path / "site" / "samples" / "copy-real.png").exists()


def test_csv_rows_follow_rank(site: Path) -> None:
    rows = list(csv.DictReader((site / "leaderboard.csv").open()))
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4", "", ""]
    assert [r["reference"] for r in rows] == ["", "", "", "", "memoriser", ""]
    assert float(rows[0]["augmentation.delta_pp"]) == pytest.approx(2.5)
    assert rows[0]["fid.fid"] == "20.0"
    assert rows[0]["augmentation.p_value_adj"] == "0.03125"  # Holm: 4 ranked × 2/2^8
    assert rows[0]["augmentation.family"] == "ranked entries"
    assert rows[0]["augmentation.direction"] == "better" and rows[3]["augmentation.direction"] \
        == "worse"
    assert rows[4]["augmentation.family"] == "reference rows"
    assert float(rows[0]["mean-image-jpeg.variety"]) == pytest.approx(0.375)  # 1 − 5000/8000
    assert rows[-1]["error"] == "CUDA out of memory while sampling"


def test_correlations_match_scipy_exact_permutation(site: Path) -> None:
    document = read_leaderboard(site / "leaderboard.json")
    row = next(r for r in document["correlations"] if r["metric"] == "fid.fid")
    ok = [e for e in document["entries"] if e["status"] == "ok"]  # reference rows included
    fid = [e["metrics"]["fid.fid"]["value"] for e in ok]
    delta = [e["utility"]["augmentation"]["delta_pp"] for e in ok]
    rho = stats.spearmanr(fid, delta).statistic
    tau, tau_p = stats.kendalltau(fid, delta, method="exact")  # no ties: scipy is exact too
    exact = stats.permutation_test(
        (delta,), lambda d: abs(stats.spearmanr(fid, d).statistic), permutation_type="pairings",
        alternative="greater", n_resamples=np.inf)
    assert row["n"] == 5 and row["method"] == "exact" and row["resamples"] == 120
    assert row["spearman"] == pytest.approx(rho)
    assert row["spearman_p"] == pytest.approx(exact.pvalue)
    assert row["kendall"] == pytest.approx(tau) and row["kendall_p"] == pytest.approx(tau_p)
    assert row["agreement"] == pytest.approx(-rho)  # FID: lower is better
    # ρ = −0.3 = 1 − 6Σd²/120 (Σd² = 26); |ρ| ≥ 0.3 ⇔ Σd² ≤ 14 or ≥ 26: 41 + 41 of the
    # 120 orderings of five values (the t-approximation said 0.624)
    assert row["spearman_p"] == pytest.approx(82 / 120)


def test_correlation_reasons_for_small_and_constant() -> None:
    assert "needs at least 3" in correlate([1.0, 2.0], [1.0, 2.0])["reason"]
    constant = correlate([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])
    assert constant["spearman"] is None and "metric is constant" in constant["reason"]
    flat = correlate([1.0, 2.0, 3.0], [0.5, 0.5, 0.5])
    assert flat["kendall"] is None and "utility Δ is constant" in flat["reason"]
    # over judged entries (the board's Δ): raw results carry no Δ
    rows = correlations(rank_entries([make_entry("a", 1.0, fid=5.0),
                                      make_entry("b", 2.0, fid=6.0)]))
    assert all(r["spearman"] is None and "only 2 entries" in r["reason"] for r in rows)


def test_refuses_different_suite_hash(tmp_path: Path) -> None:
    first = write_results(tmp_path / "a", make_results([make_entry("x")]))
    other = write_results(tmp_path / "b", make_results([make_entry("y")], suite_hash="b" * 64,
                                                       protocol_hash="b" * 64))
    with pytest.raises(ResultsError, match="different suites") as info:
        run_cli(str(first), str(other), "--out", str(tmp_path / "site"))
    assert str(first) in str(info.value) and str(other) in str(info.value)
    assert not (tmp_path / "site").exists()


def test_refuses_other_schema_version(tmp_path: Path) -> None:
    path = write_results(tmp_path / "a", make_results([make_entry("x")], schema_version=3))
    with pytest.raises(ResultsError, match="schema_version int 3; this leaderboard reads version"):
        run_cli(str(path), "--out", str(tmp_path / "site"))


def test_refuses_missing_and_malformed_fields(tmp_path: Path) -> None:
    document = make_results([make_entry("x"), make_entry("y")])
    del document["suite"]["hash"]
    del document["entries"][0]["name"]
    document["entries"][1]["status"] = "done"
    document["entries"][1]["metrics"]["fid.fid"]["value"] = "low"
    path = write_results(tmp_path / "a", document)
    with pytest.raises(ResultsError) as info:
        run_cli(str(path), "--out", str(tmp_path / "site"))
    message = str(info.value)
    for expected in ("$.suite: missing required field 'hash'",
                     "$.entries[0]: missing required field 'name'",
                     "$.entries[1].status: expected one of ['ok', 'failed']",
                     "$.entries[1].metrics.fid.fid.value: expected a number"):
        assert expected in message


def test_refuses_duplicate_entries_across_files_and_bad_json(tmp_path: Path) -> None:
    first = write_results(tmp_path / "a", make_results([make_entry("x")]))
    second = write_results(tmp_path / "b", make_results([make_entry("x")]))
    with pytest.raises(ResultsError, match="entry 'x' appears in both"):
        run_cli(str(first), str(second), "--out", str(tmp_path / "site"))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ResultsError, match=r"broken\.json is not valid JSON"):
        run_cli(str(broken), "--out", str(tmp_path / "site"))
    with pytest.raises(ResultsError, match="does not exist"):
        run_cli(str(tmp_path / "nope.json"), "--out", str(tmp_path / "site"))
    with pytest.raises(MedSynBenchError, match="--out DIR is required"):
        run_cli(str(first))


def test_leaderboard_json_validated_on_read(site: Path, tmp_path: Path) -> None:
    document = json.loads((site / "leaderboard.json").read_text())
    wrong_version = copy.deepcopy(document)
    wrong_version["schema_version"] = 99
    (tmp_path / "v.json").write_text(json.dumps(wrong_version))
    with pytest.raises(ResultsError, match="leaderboard schema_version int 99"):
        read_leaderboard(tmp_path / "v.json")
    shuffled = copy.deepcopy(document)
    shuffled["entries"][0]["rank"] = 3
    (tmp_path / "r.json").write_text(json.dumps(shuffled))
    with pytest.raises(ResultsError, match=r"ranks must be 1\.\.4 in order"):
        read_leaderboard(tmp_path / "r.json")
    with pytest.raises(ResultsError, match=r"not a leaderboard\.json"):
        read_leaderboard(site.parent / "run1" / "results.json")


def test_script_name_is_escaped_everywhere(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    entry = make_entry(evil, 1.0, samples="samples/evil.png")
    entry["generator"] = '"><img src=x onerror=alert(2)>'
    entry["params"]["sample"] = {"note": "</script><script>alert(3)</script>"}
    failed = make_entry("f<b>", status="failed")
    failed["error"] = "<iframe src=javascript:alert(4)>"
    document = make_results([entry, make_entry("ok", 0.5), make_entry("z", 0.25), failed])
    document["suite"]["name"] = "<b>suite</b>"
    path = write_results(tmp_path / "run", document)
    assert run_cli(str(path), "--out", str(tmp_path / "site")) == 0
    page = (tmp_path / "site" / "index.html").read_text()
    assert page.count("<script>") == 1  # the page's own sorting script only
    for raw in (evil, "<img src=x", "<iframe", "<b>suite</b>", "f<b>"):
        assert raw not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    markdown = (tmp_path / "site" / "leaderboard.md").read_text()
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown
    assert json.loads((tmp_path / "site" / "leaderboard.json").read_text())["entries"][0]["name"] \
        == evil  # data stays data; only renderings are escaped


def test_suite_hash_kept_in_markdown(site: Path) -> None:
    assert SUITE_HASH[:12] in (site / "leaderboard.md").read_text()


def test_console_script_prints_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from medsynbench.cli import main

    first = write_results(tmp_path / "a", make_results([make_entry("x")]))
    other = write_results(tmp_path / "b", make_results([make_entry("y")], suite_hash="c" * 64,
                                                       protocol_hash="c" * 64))
    assert main(["leaderboard", str(first), str(other), "--out", str(tmp_path / "site")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: cannot merge results of different suites")
    assert "Traceback" not in error
