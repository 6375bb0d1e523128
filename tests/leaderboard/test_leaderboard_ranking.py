"""rank_entries and render_markdown: utility decides the order, nothing else does."""

from __future__ import annotations

import copy

from leaderboard_fixtures import make_entry, make_results, standard_entries
from medsynbench.leaderboard import rank_entries, render_markdown


def names(entries: list[dict]) -> list[str]:
    return [e["name"] for e in entries]


def test_significant_before_larger_nonsignificant_delta_and_failed_last() -> None:
    ranked = rank_entries(standard_entries())
    assert names(ranked) == [
        "stylegan2[truncation=0.6]",  # significant, Δ 2.5
        "ldm",  # significant, Δ 1.0
        "vqvae2",  # not significant, Δ 1.2
        "copy-real",  # 0.4
        "noise",  # -3.0
        "broken-gan",  # failed
    ]
    assert [e["rank"] for e in ranked] == [1, 2, 3, 4, 5, None]


def test_input_is_not_modified() -> None:
    entries = standard_entries()
    before = copy.deepcopy(entries)
    ranked = rank_entries(entries)
    assert entries == before
    ranked[0]["utility"]["augmentation"]["delta_pp"] = 99.0
    assert entries == before


def test_fidelity_never_affects_rank() -> None:
    entries = standard_entries()
    shuffled = copy.deepcopy(entries)
    for i, entry in enumerate(shuffled):
        for record in entry["metrics"].values():
            record["value"] = float(1000 - 37 * i)
        entry["efficiency"]["fit_seconds"] = float(i)
    assert names(rank_entries(entries)) == names(rank_entries(shuffled))


def test_ties_are_broken_by_secondary_utility_then_name() -> None:
    entries = [
        make_entry("b", 1.0, feature_extraction=0.5),
        make_entry("a", 1.0, feature_extraction=0.5),
        make_entry("c", 1.0, feature_extraction=2.0),
        make_entry("d", 1.0),  # no feature-extraction result: after those that have one
    ]
    assert names(rank_entries(entries)) == ["c", "a", "b", "d"]
    assert names(rank_entries(list(reversed(entries)))) == ["c", "a", "b", "d"]


def test_missing_primary_utility_ranks_after_present() -> None:
    entries = [make_entry("no-aug", None, feature_extraction=9.0), make_entry("neg", -5.0)]
    assert names(rank_entries(entries)) == ["neg", "no-aug"]
    nan = make_entry("nan", 1.0)
    nan["utility"]["augmentation"]["delta_pp"] = float("nan")
    assert names(rank_entries([nan, make_entry("low", -1.0)])) == ["low", "nan"]


def test_markdown_table_contents() -> None:
    text = render_markdown(make_results(standard_entries()))
    lines = text.splitlines()
    table = [line for line in lines if line.startswith("| ") and "Rank" not in line]
    assert table[0].startswith("| 1 | stylegan2[truncation=0.6] |")
    assert "+2.50 [+2.00, +3.00] p=0.0312 (Holm 0.0312) ✔" in table[0]
    assert "| 4 | copy-real | baseline |" in text
    header = next(line for line in lines if line.startswith("| Rank"))
    for column in ("augmentation Δ pp", "fid.fid ↓", "prdc.precision ↑", "knn-privacy.P ↑",
                   "mean-image-jpeg.variety ↑", "s / 1000 img ↓"):
        assert column in header
    # fidelity columns come before variety, privacy and efficiency
    assert header.index("fid.fid") < header.index("variety") < header.index("knn-privacy")
    assert header.index("knn-privacy") < header.index("fit s")
    assert "## Failed entries" in text
    assert "**broken-gan** (stage `sample`): CUDA out of memory while sampling" in text


def test_markdown_escapes_names_and_errors() -> None:
    evil = make_entry("<script>alert(1)</script>", 1.0)
    broken = make_entry("a|b", status="failed")
    broken["error"] = "bad <img src=x onerror=alert(1)> | pipe"
    text = render_markdown(make_results([evil, broken]))
    assert "<script>" not in text and "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "a\\|b" in text and "\\| pipe" in text


def test_markdown_without_completed_entries() -> None:
    text = render_markdown(make_results([make_entry("x", status="failed")]))
    assert "no entry completed" in text and "x" in text


def test_markdown_of_plain_results_includes_correlations() -> None:
    text = render_markdown(make_results(standard_entries()))
    assert "## Does fidelity predict utility?" in text
    fid_row = next(line for line in text.splitlines() if line.startswith("| fid.fid |"))
    assert "| 5 | -0.300 (0.624) | -0.200 (0.817) | +0.300 |" in fid_row
