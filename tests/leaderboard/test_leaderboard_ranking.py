"""rank_entries and render_markdown: utility decides the order, nothing else does."""

from __future__ import annotations

import copy

from leaderboard_fixtures import make_entry, make_results, standard_entries
from medsynbench.leaderboard import rank_entries, render_markdown


def names(entries: list[dict]) -> list[str]:
    return [e["name"] for e in entries]


def test_ranked_by_delta_then_reference_rows_then_failed() -> None:
    ranked = rank_entries(standard_entries())
    assert names(ranked) == [
        "stylegan2[truncation=0.6]",  # Δ +2.5, significant
        "vqvae2",  # Δ +1.25, NOT significant: still above ldm — significance is not a sort key
        "ldm",  # Δ +1.0, significant
        "noise",  # Δ -3.0
        "copy-real",  # the memoriser: a reference row, shown but never ranked
        "broken-gan",  # failed
    ]
    assert [e["rank"] for e in ranked] == [1, 2, 3, 4, None, None]
    by_name = {e["name"]: e for e in ranked}
    assert by_name["vqvae2"]["utility"]["augmentation"]["significant"] is False
    assert by_name["ldm"]["utility"]["augmentation"]["significant"] is True
    # vqvae2 above ldm by Δ, but the data cannot order them: their rank intervals overlap
    assert "ldm" in by_name["vqvae2"]["tied_with"] and "vqvae2" in by_name["ldm"]["tied_with"]
    assert by_name["noise"]["rank_interval"] == [4, 4] and by_name["noise"]["tied_with"] == []
    assert by_name["copy-real"]["rank_interval"] is None
    assert by_name["copy-real"]["utility"]["augmentation"]["family"] == "reference rows"


def test_input_is_not_modified() -> None:
    entries = standard_entries()
    before = copy.deepcopy(entries)
    ranked = rank_entries(entries)
    assert entries == before
    assert "delta_pp" not in entries[2]["utility"]["augmentation"]  # the board's, not the input's
    ranked[0]["utility"]["augmentation"]["delta_pp"] = 99.0
    assert entries == before


def test_fidelity_never_affects_rank() -> None:
    entries = standard_entries()
    shuffled = copy.deepcopy(entries)
    for i, entry in enumerate(shuffled):
        for record in entry["metrics"].values():
            record["value"] = float(1000 - 37 * i)
        entry["efficiency"]["fit_seconds"] = float(i)
    first, second = rank_entries(entries), rank_entries(shuffled)
    assert names(first) == names(second)
    assert [e["rank_interval"] for e in first] == [e["rank_interval"] for e in second]


def test_equal_delta_is_a_tie_ordered_by_name_not_by_secondary_utility() -> None:
    same = [2.0, 3.0, 2.5, 2.5, 3.0, 2.0, 2.25, 2.75]  # identical per-seed Δ, mean +2.5
    entries = [
        make_entry("b", deltas=same, feature_extraction=0.5),
        make_entry("a", deltas=same, feature_extraction=0.5),
        make_entry("c", deltas=same, feature_extraction=2.0),  # a larger secondary Δ: no effect
        make_entry("d", -3.0),
    ]
    for order in (entries, list(reversed(entries))):
        ranked = rank_entries(order)
        assert names(ranked) == ["a", "b", "c", "d"]
        assert [e["rank_label"] for e in ranked] == ["=1", "=1", "=1", "4"]
        assert sorted(ranked[0]["tied_with"]) == ["b", "c"]
        assert ranked[3]["tied_with"] == [] and ranked[3]["rank_interval"] == [4, 4]


def test_missing_primary_utility_ranks_after_present() -> None:
    entries = [make_entry("no-aug", None, feature_extraction=9.0), make_entry("neg", -5.0)]
    ranked = rank_entries(entries)
    assert names(ranked) == ["neg", "no-aug"]
    assert ranked[1]["rank"] == 2 and ranked[1]["rank_interval"] is None
    missing = make_entry("missing", deltas=[1.0] * 7 + [None])  # one seed produced no score
    ranked = rank_entries([missing, make_entry("low", -1.0)])
    assert names(ranked) == ["low", "missing"]
    record = ranked[1]["utility"]["augmentation"]
    assert record.get("delta_pp") is None and "no per-seed scores" in record["note"]
    nan = make_entry("nan", 1.0)
    nan["utility"]["augmentation"]["treated"]["accuracy"][3] = float("nan")
    assert names(rank_entries([nan, make_entry("low", -1.0)])) == ["low", "nan"]


def test_markdown_table_contents() -> None:
    text = render_markdown(make_results(standard_entries()))
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| Rank"))
    start = lines.index(header) + 2
    table = lines[start: lines.index("", start)]
    assert [row.split(" | ")[1] for row in table] == [
        "stylegan2[truncation=0.6]", "vqvae2", "ldm", "noise"]
    # rank label (tie "=1") with the 95% rank interval; Δ, simultaneous CI, Holm p, ▲
    assert table[0].startswith("| =1 (1–1) | stylegan2[truncation=0.6] | +2.50 [")
    assert "p=0.0312 ▲" in table[0]  # Holm over 4 ranked entries: 4 × 2/2^8
    assert table[1].startswith("| =1 (1–3) | vqvae2 | +1.25 [") and "p=0.281 |" in table[1]
    assert table[3].startswith("| 4 (4–4) | noise | -3.00 [") and "p=0.0312 ▼" in table[3]
    # the compact table: human names, one or two columns per axis (an unknown privacy
    # quantity keeps its key), fidelity before variety, privacy and efficiency
    assert header.endswith("| FID ↓ | precision ↑ | V ↑ | knn-privacy.P ↑ | s / 1000 img ↓ |")
    assert "fit s" not in header and "mean-image bytes" not in header  # folded away
    # ... into the full table, one per axis, where every value is
    assert "## All values, by axis" in text
    assert "| Entry | mean-image bytes ↓ |" not in text  # V and the bytes share the variety table
    assert "| Entry | V ↑ | mean-image bytes ↓ |" in text
    assert "| Entry | fit s ↓ | fit steps | sample s ↓ | s / 1000 img ↓ |" in text
    # Δ explained: what it measures, the real-only accuracy and the seeds
    assert ("- augmentation Δ = accuracy of a classifier trained on real + synthetic images of "
            "the entry minus the same classifier trained on real images only, in percentage "
            "points (pp), mean over 8 paired seeds. Real only: accuracy 80.12%") in text
    assert "- **FID ↓** (fidelity) — Fréchet distance: " in text
    # the memoriser and real only are reference rows, outside the ranked table
    assert "## Reference rows (not ranked)" in text
    assert "| real only | reference (Δ = 0) | 0 (accuracy 80.12%) |" in text
    assert "| copy-real | memoriser | +0.50 [" in text
    assert "## What the differences mean" in text
    assert "Not distinguishable from real data alone at α = 0.05 (Holm): vqvae2." in text
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
    assert "no ranked entry completed" in text and "**x** (stage `sample`)" in text


def test_markdown_of_plain_results_includes_correlations() -> None:
    text = render_markdown(make_results(standard_entries()))
    assert "## Does fidelity predict utility?" in text
    fid_row = next(line for line in text.splitlines() if line.startswith("| FID |"))
    # over the 5 completed entries (4 generators and the memoriser), by FID vs Δ: exact
    # permutation p over the 5! orderings (82 and 98 of 120 reach |ρ| ≥ 0.3, |τ| ≥ 0.2)
    assert "| 5 | -0.30 p=0.683 | -0.20 p=0.817 | +0.30 |" in fid_row
    assert "every one of the n! orderings" in text and "No interval on ρ: 5 entries" in text
