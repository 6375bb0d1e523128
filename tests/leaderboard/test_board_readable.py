"""Issue 19: exact small-sample correlations, values to their precision, legible plots, mosaic
paths confined to the results folder."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from leaderboard_fixtures import make_entry, make_results, standard_entries, write_results
from medsynbench.leaderboard import read_results
from medsynbench.leaderboard.build import build_site
from medsynbench.leaderboard.columns import (
    Column,
    column_decimals,
    format_value,
    headline_columns,
    metric_columns,
)
from medsynbench.leaderboard.correlation import (
    EXACT_MAX_N,
    MC_RESAMPLES,
    correlate,
    fisher_interval,
    mid_ranks,
)
from medsynbench.leaderboard.markdown import render_markdown
from medsynbench.leaderboard.plots import heatmap_figure, place_labels, scatter_figure
from PIL import Image
from scipy import stats

# --- exact permutation p-values ----------------------------------------------------------


def test_perfect_order_of_four_is_p_one_twelfth_not_zero() -> None:
    row = correlate([1.0, 2.0, 3.0, 4.0], [0.1, 0.2, 0.3, 0.4])
    # 2 of the 4! = 24 orderings reach |ρ| = 1 (this one and its reverse)
    assert row["spearman"] == pytest.approx(1.0) and row["spearman_p"] == pytest.approx(2 / 24)
    assert row["kendall"] == pytest.approx(1.0) and row["kendall_p"] == pytest.approx(2 / 24)
    assert row["method"] == "exact" and row["resamples"] == 24
    assert row["min_p"] == pytest.approx(1 / 12) and row["conclusive"] is False
    assert "with 4 entries no ordering can reach p < 0.05" in row["reason"]
    assert "0.0833" in row["reason"]


def test_one_swap_in_four_hand_computed() -> None:
    row = correlate([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 4.0, 3.0])
    # ρ = 1 − 6·2/60 = 0.8; |ρ| ≥ 0.8 ⇔ Σd² ≤ 2 or ≥ 18: 1 + 3 + 3 + 1 orderings of 24
    assert row["spearman"] == pytest.approx(0.8) and row["spearman_p"] == pytest.approx(8 / 24)
    # τ = (5 − 1)/6; |τ| ≥ 2/3 ⇔ at most one or at least five inversions: 8 of 24
    assert row["kendall"] == pytest.approx(2 / 3) and row["kendall_p"] == pytest.approx(8 / 24)


def test_five_entries_can_conclude() -> None:
    row = correlate([1.0, 2.0, 3.0, 4.0, 5.0], [5.0, 4.0, 3.0, 2.0, 1.0])
    assert row["spearman"] == pytest.approx(-1.0) and row["spearman_p"] == pytest.approx(2 / 120)
    assert row["conclusive"] is True and row["reason"] is None


def test_ties_can_make_a_row_inconclusive() -> None:
    # four tied metric values: the most extreme orderings are 4!·2 of 6! → p ≥ 48/720
    row = correlate([0.0, 0.0, 0.0, 0.0, 0.03, 0.38], [-9.5, -11.0, 0.0, -8.0, 7.0, -22.0])
    assert row["min_p"] == pytest.approx(48 / 720)
    assert row["conclusive"] is False and "these ties" in row["reason"]


def test_mid_ranks_match_scipy() -> None:
    values = [3.0, 1.0, 3.0, 2.0, 3.0, 0.5]
    assert mid_ranks(values).tolist() == stats.rankdata(values).tolist()


@pytest.mark.parametrize("n", [6, 7])
def test_exact_p_matches_scipy_permutation_test_with_ties(n: int) -> None:
    rng = np.random.default_rng(n)
    metric = rng.integers(0, 3, n).astype(float)
    utility = rng.normal(size=n).round(1)
    row = correlate(list(metric), list(utility))
    for key, statistic in (("spearman", stats.spearmanr), ("kendall", stats.kendalltau)):
        exact = stats.permutation_test(
            (utility,), lambda u, f=statistic: abs(f(metric, u).statistic),
            permutation_type="pairings", alternative="greater", n_resamples=np.inf)
        assert row[key] == pytest.approx(statistic(metric, utility).statistic)
        assert row[f"{key}_p"] == pytest.approx(exact.pvalue)


def test_monte_carlo_above_exact_limit_is_seeded_and_close() -> None:
    n = EXACT_MAX_N + 3
    rng = np.random.default_rng(3)
    metric, utility = list(rng.normal(size=n)), list(rng.normal(size=n))
    first, again = correlate(metric, utility), correlate(metric, utility)
    assert first["method"] == "monte-carlo" and first["resamples"] == MC_RESAMPLES
    assert first["spearman_p"] == again["spearman_p"]  # fixed seed: the same board, the same p
    reference = stats.permutation_test(
        (np.array(utility),), lambda u: abs(stats.spearmanr(metric, u).statistic),
        permutation_type="pairings", alternative="greater", n_resamples=50_000,
        random_state=1).pvalue
    assert abs(first["spearman_p"] - reference) < 0.015
    assert first["spearman_p"] > 0


def test_fisher_interval_hand_computed_and_refused_when_small() -> None:
    interval, note = fisher_interval(0.5, 12)
    half = 1.959964 * math.sqrt((1 + 0.125) / 9)  # Bonett–Wright SE
    assert note is None and interval == pytest.approx(
        [math.tanh(math.atanh(0.5) - half), math.tanh(math.atanh(0.5) + half)], abs=1e-6)
    # z = atanh(0.5) = 0.5493, SE = √(1.125/9) = 0.3536, z ± 1.96·SE = −0.1436 … 1.2423
    assert interval == pytest.approx([-0.1427, 0.8461], abs=1e-4)
    assert fisher_interval(0.5, 9) == (None, "no interval on ρ: 9 entries are too few for one "
                                             "(it needs 10)")
    assert fisher_interval(1.0, 12)[0] is None


def test_markdown_says_when_no_row_can_conclude() -> None:
    entries = [make_entry(name, delta, fid=fid) for name, delta, fid in
               (("a", 1.0, 30.0), ("b", 2.0, 20.0), ("c", -1.0, 50.0), ("d", 0.5, 40.0))]
    text = render_markdown(make_results(entries))
    assert ("**Too few entries to conclude anything**: with 4 entries no ordering can reach "
            "p < 0.05") in text
    fid_row = next(line for line in text.splitlines() if line.startswith("| FID |"))
    assert "-1.00 p=0.0833" in fid_row  # exact, where the t-approximation printed 0.0e+00


# --- values to their precision, columns by axis ----------------------------------------


def test_float_noise_shows_as_zero_at_the_column_precision() -> None:
    entries = [make_entry("a", fid=-1.4e-13), make_entry("b", fid=722.96),
               make_entry("c", fid=-9e-06), make_entry("d", fid=11.39)]
    fid = next(c for c in metric_columns(entries) if c.key == "fid.fid")
    decimals = column_decimals(fid, entries)
    assert decimals == 1  # 4 significant digits of 722.96
    assert [format_value(fid.value(e), decimals) for e in entries] == [
        "0.0", "723.0", "0.0", "11.4"]
    assert format_value(None, 2) == "—"


def test_headline_keeps_an_axis_without_a_known_quantity() -> None:
    columns = [Column("x.odd", "metric", "privacy", "x.odd", True),
               Column("prdc.density", "metric", "fidelity", "density", True),
               Column("fid.fid", "metric", "fidelity", "FID", False)]
    assert [c.key for c in headline_columns(columns)] == ["x.odd", "fid.fid"]


# --- plots -------------------------------------------------------------------------------


def test_scatter_labels_do_not_overlap_even_for_coincident_points() -> None:
    column = Column("fid.fid", "metric", "fidelity", "FID", False)
    points = [(0.0, -9.5, {"name": "noise"}), (0.0, -11.0, {"name": "vqvae2"}),
              (0.0, -0.03, {"name": "copy-real", "reference": "memoriser"}),
              (0.0, -0.03, {"name": "label-swap", "reference": "negative-control"}),
              (0.03, -8.06, {"name": "classical"}), (0.0, -10.2, {"name": "x"})]
    figure, labels = scatter_figure(column, "augmentation", points, -0.14)
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [label.get_window_extent(renderer) for label in labels]
    assert [label.get_text() for label in labels] == ["1", "2", "3,4", "5", "6"]
    for i, box in enumerate(boxes):
        assert not any(box.overlaps(other) for other in boxes[i + 1:]), labels[i].get_text()


def test_place_labels_moves_a_label_off_a_neighbour() -> None:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    labels = place_labels(figure, axes, [(0.5, 0.5), (0.5, 0.505)], ["first", "second"])
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    one, two = (label.get_window_extent(renderer) for label in labels)
    assert not one.overlaps(two)
    plt.close(figure)


def test_heatmap_saved_without_clipping_the_colour_bar_label(tmp_path: Path) -> None:
    from medsynbench.leaderboard.plots import _save

    rows = [{"metric": f"m{i}", "utility": "augmentation.delta_pp", "spearman": 0.1 * i}
            for i in range(4)]
    figure = heatmap_figure(rows)
    assert figure is not None
    paths = _save(figure, tmp_path / "plots", "heat")
    pixels = np.asarray(Image.open(tmp_path / paths["png"]).convert("L"))
    # no ink on the outermost pixels: nothing (the colour-bar label on the right) was cut off
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    assert border.min() > 240
    assert (pixels[:, int(pixels.shape[1] * 0.85):] < 100).any()  # dark glyphs at the right


# --- mosaic paths confined to the results folder (#14) -------------------------------------


def test_mosaic_paths_outside_the_results_folder_are_not_copied(tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(secret)
    entries = [make_entry("absolute", 1.0, samples=str(secret)),
               make_entry("escape", 0.5, samples="../secret.png"),
               make_entry("inside", 0.25, samples="samples/inside.png")]
    run = tmp_path / "run"
    write_results(run, make_results(entries), mosaics=False)
    (run / "samples").mkdir()
    Image.fromarray(np.zeros((8, 16, 3), dtype=np.uint8)).save(run / "samples" / "inside.png")
    document = build_site([read_results(run / "results.json")], tmp_path / "site")
    by_name = {e["name"]: e for e in document["entries"]}
    assert by_name["inside"]["samples"] == "samples/inside.png"
    assert by_name["inside"]["samples_size"] == [16, 8]
    assert by_name["absolute"]["samples"] is None and by_name["escape"]["samples"] is None
    assert "this path is absolute" in by_name["absolute"]["samples_note"]
    assert "this path is outside it" in by_name["escape"]["samples_note"]
    assert sorted(p.name for p in (tmp_path / "site" / "samples").iterdir()) == ["inside.png"]
    page = (tmp_path / "site" / "index.html").read_text()
    assert "only files inside the results folder" in page


def test_full_board_keeps_raw_values_in_json(tmp_path: Path) -> None:
    entries = standard_entries()
    entries[0]["metrics"]["fid.fid"]["value"] = -8.561e-06
    path = write_results(tmp_path / "run", make_results(entries))
    document = build_site([read_results(path)], tmp_path / "site")
    copy_real = next(e for e in document["entries"] if e["name"] == "copy-real")
    assert copy_real["metrics"]["fid.fid"]["value"] == -8.561e-06
    text = (tmp_path / "site" / "leaderboard.md").read_text()
    assert "| copy-real | 0.0 |" in text and "e-06" not in text


def test_the_suite_description_heads_the_board(tmp_path: Path) -> None:
    """A suite that says what it is ("PIPELINE CHECK ... not evidence") says so on its board."""
    results = make_results(standard_entries()[:3])
    results["suite"]["description"] = "PIPELINE CHECK on 2 patients (not evidence)"
    path = write_results(tmp_path / "run", results)
    build_site([read_results(path)], tmp_path / "site")
    assert "> PIPELINE CHECK on 2 patients (not evidence)" in (
        tmp_path / "site" / "leaderboard.md").read_text()
    assert '<p class="description">PIPELINE CHECK on 2 patients (not evidence)</p>' in (
        tmp_path / "site" / "index.html").read_text()
