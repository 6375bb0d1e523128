"""The board's verdict: Δ, exact Wilcoxon + Holm per family, Δ vs classical, ties, board-derived
V, flags, and the results a board refuses — each number checked against a hand computation.

The per-seed Δ lists below are in percentage points (0.25 pp = one of 400 test images); with 8
seeds and no tied |Δ| the exact two-sided Wilcoxon p is 2 · #{sign patterns at least as extreme}
/ 2^8, which :func:`exact_wilcoxon` recomputes by brute force as a check of the hand values.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from leaderboard_fixtures import (
    PROTOCOL,
    make_entry,
    make_results,
    spread_deltas,
    write_results,
)
from medsynbench.errors import ResultsError
from medsynbench.leaderboard import cli, rank_entries, read_leaderboard
from medsynbench.leaderboard.ranking import judge

# Ranked entries (generators)
GEN_A = [1.5, 1.75, 2.0, 2.25, 2.75, 3.0, 3.25, 3.5]  # Δ +2.5, all > 0: p = 2/2^8
GEN_B = [-0.25, -0.5, -0.75, 1.0, 1.25, 1.5, 1.75, 2.0]  # Δ +0.75, T− = 1+2+3 = 6: p = 28/2^8
GEN_C = [-0.5, -0.75, -1.0, -1.25, -1.5, -1.75, -2.0, -2.25]  # Δ −1.375, all < 0: p = 2/2^8
# Reference rows
CLASSICAL = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]  # Δ +1.125: p = 2/2^8
POSITIVE = [2.25, 2.5, 2.75, 3.0, 3.25, 3.5, 3.75, 4.0]  # Δ +3.125: p = 2/2^8
NEGATIVE = [0.25, -0.5, -0.75, -1.0, -1.25, -1.5, -1.75, -2.0]  # Δ −1.0625, T+ = 1: p = 4/2^8


def exact_wilcoxon(deltas: list[float]) -> float:
    """Two-sided exact Wilcoxon signed-rank p by enumerating all 2^n sign flips (untied |Δ|)."""
    order = sorted(range(len(deltas)), key=lambda i: abs(deltas[i]))
    ranks = {i: r + 1 for r, i in enumerate(order)}
    observed = sum(ranks[i] for i, d in enumerate(deltas) if d > 0)
    total = sum(ranks.values())
    extreme = abs(observed - total / 2)
    hits = sum(
        abs(sum(r for r, s in zip(ranks.values(), signs, strict=True) if s) - total / 2)
        >= extreme
        for signs in itertools.product((0, 1), repeat=len(deltas))
    )
    return hits / 2 ** len(deltas)


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="medsynbench")
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["leaderboard", *argv])
    return int(args.func(args))


def task(entry: dict) -> dict:
    return entry["utility"]["augmentation"]


def hand_board() -> list[dict]:
    """Three generators and three reference rows, references listed first on purpose."""
    return [
        make_entry("label-swap", deltas=NEGATIVE, reference="negative-control"),
        make_entry("gen-c", deltas=GEN_C, jpeg_bytes=3000.0),
        make_entry("classical-augment", deltas=CLASSICAL, reference="classical"),
        make_entry("gen-a", deltas=GEN_A, jpeg_bytes=7000.0),
        make_entry("heldout-real", deltas=POSITIVE, reference="positive-control"),
        make_entry("gen-b", deltas=GEN_B, jpeg_bytes=5000.0),
    ]


# ------------------------------------------------------------------------ 1. hand-computed
def test_hand_p_values_agree_with_brute_force_enumeration() -> None:
    for deltas, hand in ((GEN_A, 2 / 256), (GEN_B, 28 / 256), (GEN_C, 2 / 256),
                         (CLASSICAL, 2 / 256), (POSITIVE, 2 / 256), (NEGATIVE, 4 / 256)):
        assert exact_wilcoxon(deltas) == pytest.approx(hand)


def test_hand_computed_board() -> None:
    entries, verdict = judge(hand_board())
    # ranked by Δ first, then the reference rows (input order), never ranked
    assert [e["name"] for e in entries] == [
        "gen-a", "gen-b", "gen-c", "label-swap", "classical-augment", "heldout-real"]
    assert [e["rank"] for e in entries] == [1, 2, 3, None, None, None]
    assert all(e["rank_interval"] is None and e["rank_label"] is None for e in entries[3:])
    by_name = {e["name"]: task(e) for e in entries}
    expected = {
        # name: (Δ pp, raw p, Holm p within the family, family, direction)
        "gen-a": (2.5, 2 / 256, 3 * 2 / 256, "ranked entries", "better"),
        "gen-b": (0.75, 28 / 256, 28 / 256, "ranked entries", None),
        "gen-c": (-1.375, 2 / 256, 3 * 2 / 256, "ranked entries", "worse"),
        "classical-augment": (1.125, 2 / 256, 3 * 2 / 256, "reference rows", "better"),
        "heldout-real": (3.125, 2 / 256, 3 * 2 / 256, "reference rows", "better"),
        "label-swap": (-1.0625, 4 / 256, 3 * 2 / 256, "reference rows", "worse"),
    }
    for name, (delta, p, p_adj, family, direction) in expected.items():
        record = by_name[name]
        assert record["delta_pp"] == pytest.approx(delta), name
        assert record["p_value"] == pytest.approx(p), name
        # Holm over the 3 members of its own family, not over all 6 (that would give 12/256)
        assert record["p_value_adj"] == pytest.approx(p_adj), name
        assert (record["family"], record["family_size"]) == (family, 3)
        assert record["direction"] == direction and record["significant"] is (direction is not None)
        low, high = record["ci95_pp"]
        sim_low, sim_high = record["ci_simultaneous_pp"]
        assert sim_low < low < delta < high < sim_high  # Bonferroni over 3 is wider
    # Student-t 95% CI of gen-a by hand: sd of GEN_A, t(0.975, 7) = 2.364624
    half = 2.3646243 * float(np.std(GEN_A, ddof=1)) / np.sqrt(8)
    assert by_name["gen-a"]["ci95_pp"] == pytest.approx([2.5 - half, 2.5 + half], abs=1e-5)
    # Δ vs classical, paired by seed: gen-a − classical = +1.25 on every seed
    versus = by_name["gen-a"]["vs_classical"]
    assert versus["entry"] == "classical-augment"
    assert versus["delta_pp"] == pytest.approx(2.5 - 1.125)
    assert versus["p_value"] == pytest.approx(2 / 256)
    assert by_name["gen-c"]["vs_classical"]["delta_pp"] == pytest.approx(-1.375 - 1.125)
    assert "vs_classical" not in by_name["classical-augment"]
    # the real-only row: mean of the shared baseline arm, 320.5 of 400 images
    assert verdict["real_only"]["augmentation"]["mean_pct"] == pytest.approx(80.125)
    assert verdict["real_only"]["augmentation"]["seeds"] == 8
    families = {(f["family"], tuple(sorted(f["members"]))) for f in verdict["families"]}
    assert families == {("ranked entries", ("gen-a", "gen-b", "gen-c")),
                        ("reference rows", ("classical-augment", "heldout-real", "label-swap"))}
    statements = " ".join(verdict["statements"])
    assert "Positive control heldout-real: +3.12 pp, significant" in statements
    assert "Negative control label-swap: -1.06 pp, significant" in statements
    assert "Not distinguishable from real data alone at α = 0.05 (Holm): gen-b." in statements


# ---------------------------------------------------------------------------------- 2. ties
def tie_board() -> list[dict]:
    near = [3.0, 2.0, 3.0, 2.0, 3.0, 2.0, 3.0, 1.75]  # Δ 2.46875: one image less than tie-x
    return [make_entry("low", -1.0), make_entry("tie-y", deltas=near),
            make_entry("tie-x", deltas=spread_deltas(2.5))]


def test_nearly_equal_delta_is_a_tie_in_every_output(tmp_path: Path) -> None:
    entries = rank_entries(tie_board())
    assert [(e["name"], e["rank"], e["rank_label"], e["rank_interval"], e["tied_with"])
            for e in entries] == [
        ("tie-x", 1, "=1", [1, 2], ["tie-y"]),
        ("tie-y", 2, "=1", [1, 2], ["tie-x"]),
        ("low", 3, "3", [3, 3], []),
    ]
    path = write_results(tmp_path / "run", make_results(tie_board()))
    site = tmp_path / "site"
    assert run_cli(str(path), "--out", str(site)) == 0
    document = read_leaderboard(site / "leaderboard.json")
    assert [(e["rank_label"], e["tied_with"]) for e in document["entries"]] == [
        ("=1", ["tie-y"]), ("=1", ["tie-x"]), ("3", [])]
    markdown = (site / "leaderboard.md").read_text()
    assert "| =1 (1–2) | tie-x |" in markdown and "| =1 (1–2) | tie-y |" in markdown
    assert "| 3 (3–3) | low |" in markdown
    tied = [line for line in markdown.splitlines() if line.startswith("- Tied")]
    assert len(tied) == 1 and "tie-x" in tied[0] and "tie-y" in tied[0] and "low" not in tied[0]
    rows = list(csv.DictReader((site / "leaderboard.csv").open()))
    assert [(r["rank"], r["rank_label"], r["rank_low"], r["rank_high"], r["tied_with"])
            for r in rows] == [("1", "'=1", "1", "2", "tie-y"), ("2", "'=1", "1", "2", "tie-x"),
                               ("3", "3", "3", "3", "")]
    page = (site / "index.html").read_text()
    assert ">=1 (1–2)</td>" in page and 'title="tied with tie-y"' in page


# ------------------------------------------------------------------------ 3. board identity
def identity_entries() -> list[dict]:
    return [
        make_entry("gen-a", deltas=GEN_A, jpeg_bytes=7000.0),
        make_entry("classical-augment", deltas=CLASSICAL, reference="classical",
                   jpeg_bytes=2000.0),
        make_entry("gen-b", deltas=GEN_B, jpeg_bytes=5000.0),
        make_entry("gen-c", deltas=GEN_C, jpeg_bytes=3000.0),
        make_entry("heldout-real", deltas=POSITIVE, reference="positive-control",
                   jpeg_bytes=9000.0),
    ]


def board_numbers(site: Path) -> dict[str, tuple]:
    document = read_leaderboard(site / "leaderboard.json")
    return {
        e["name"]: (task(e)["delta_pp"], task(e)["p_value_adj"], task(e)["family_size"],
                    e["rank_interval"], e["rank_label"],
                    (task(e).get("vs_classical") or {}).get("delta_pp"),
                    e["metrics"]["mean-image-jpeg.variety"]["value"])
        for e in document["entries"]
    }


def test_one_run_and_merged_runs_of_one_protocol_give_the_same_board(tmp_path: Path) -> None:
    entries = identity_entries()
    whole = write_results(tmp_path / "whole", make_results(entries))
    # two runs of the same protocol with different generators: suite hashes differ, the
    # protocol hash does not
    first = write_results(tmp_path / "one", make_results(entries[:2], suite_hash="b" * 64))
    second = write_results(tmp_path / "two", make_results(entries[2:], suite_hash="c" * 64))
    assert run_cli(str(whole), "--out", str(tmp_path / "site-whole")) == 0
    assert run_cli(str(first), str(second), "--out", str(tmp_path / "site-merged")) == 0
    merged = board_numbers(tmp_path / "site-merged")
    assert board_numbers(tmp_path / "site-whole") == merged
    # V = 1 − (bytes − 2000)/(9000 − 2000) over all five entries on the board
    assert merged["gen-a"][6] == pytest.approx(1 - 5000 / 7000)
    assert merged["gen-a"][1] == pytest.approx(3 * 2 / 256)

    # removing an entry recomputes Holm and V over the entries that remain
    fewer = write_results(tmp_path / "fewer", make_results(
        [e for e in entries if e["name"] not in ("gen-b", "heldout-real")]))
    assert run_cli(str(fewer), "--out", str(tmp_path / "site-fewer")) == 0
    smaller = board_numbers(tmp_path / "site-fewer")
    assert smaller["gen-a"][1] == pytest.approx(2 * 2 / 256) and smaller["gen-a"][2] == 2
    assert smaller["gen-a"][6] == pytest.approx(0.0)  # now the largest bytes on the board
    assert smaller["gen-c"][6] == pytest.approx(1 - 1000 / 5000)
    assert smaller["gen-a"][0] == merged["gen-a"][0]  # Δ is the entry's own


# ----------------------------------------------------------------------------- 4. bad inputs
def test_schema_1_results_are_refused_with_a_re_run_message(tmp_path: Path) -> None:
    old = make_results([make_entry("x")], schema_version=1)
    record = task(old["entries"][0])
    record.update(delta_pp=1.0, p_value=0.03, significant=True)  # frozen statistics, as in v1
    path = write_results(tmp_path / "a", old)
    with pytest.raises(ResultsError) as info:
        run_cli(str(path), "--out", str(tmp_path / "site"))
    message = str(info.value)
    assert message.startswith(f"{path} was written by an older medsynbench (results schema 1)")
    assert "Re-run its suite with `medsynbench run SUITE.toml`" in message
    assert not (tmp_path / "site").exists()


def test_merging_different_protocols_names_the_differing_field(tmp_path: Path) -> None:
    protocol = json.loads(json.dumps(PROTOCOL))
    protocol["tasks"][0][3]["epochs"] = 6
    first = write_results(tmp_path / "a", make_results([make_entry("x")]))
    other = write_results(tmp_path / "b", make_results(
        [make_entry("y")], protocol_hash="q" * 64, protocol=protocol))
    with pytest.raises(ResultsError) as info:
        run_cli(str(first), str(other), "--out", str(tmp_path / "site"))
    message = str(info.value)
    assert f"cannot merge {first} and {other}: they ran different protocols" in message
    assert "(differing field: protocol.tasks[0][3].epochs: 5 vs 6)" in message
    assert not (tmp_path / "site").exists()


def test_utility_record_without_per_seed_scores_is_refused(tmp_path: Path) -> None:
    document = make_results([make_entry("x"), make_entry("y")])
    del task(document["entries"][0])["treated"]["accuracy"]
    task(document["entries"][1])["baseline"]["accuracy"].pop()
    path = write_results(tmp_path / "a", document)
    with pytest.raises(ResultsError) as info:
        run_cli(str(path), "--out", str(tmp_path / "site"))
    message = str(info.value)
    assert "$.entries[0].utility.augmentation.treated: expected one accuracy score per seed " \
        "(8), got null" in message
    assert "$.entries[1].utility.augmentation.baseline: expected one accuracy score per seed " \
        "(8), got list" in message
    assert not (tmp_path / "site").exists()


# ---------------------------------------------------------------------------------- 5. flags
def test_flags_appear_in_markdown_csv_and_html(tmp_path: Path) -> None:
    flagged = make_entry("gen-a", deltas=GEN_A)
    task(flagged)["flags"] = ["seed 3: the classifier did not converge"]
    flagged["metrics"]["fid.fid"]["flags"] = ["encoder weights missing: random features"]
    flagged["flags"] = ["fit stopped early at step 40"]
    path = write_results(tmp_path / "run", make_results([flagged, make_entry("gen-b", 1.0)]))
    site = tmp_path / "site"
    assert run_cli(str(path), "--out", str(site)) == 0
    markdown = (site / "leaderboard.md").read_text()
    section = markdown.split("## Flags", 1)[1].split("\n## ", 1)[0]
    assert "- **gen-a** · augmentation: seed 3: the classifier did not converge" in section
    assert "- **gen-a** · fid: encoder weights missing: random features" in section
    assert "- **gen-a** · generator: fit stopped early at step 40" in section
    assert "gen-b" not in section
    row = next(line for line in markdown.splitlines() if line.startswith("| ") and "gen-a" in line)
    assert "⚑" in row
    rows = list(csv.DictReader((site / "leaderboard.csv").open()))
    assert rows[0]["augmentation.flags"] == "seed 3: the classifier did not converge"
    page = (site / "index.html").read_text()
    flags_html = page.split('<h2 id="flags">', 1)[1]
    for text in ("seed 3: the classifier did not converge",
                 "encoder weights missing: random features", "fit stopped early at step 40"):
        assert text in flags_html


def test_a_board_merging_two_float_stacks_says_so(tmp_path: Path) -> None:
    entries = identity_entries()
    first, second = make_results(entries[:2], suite_hash="b" * 64), make_results(entries[2:])
    first["manifest"]["float_stack_id"] = "aaaaaaaaaaaa"
    second["manifest"]["float_stack_id"] = "bbbbbbbbbbbb"
    paths = [write_results(tmp_path / "one", first), write_results(tmp_path / "two", second)]
    assert run_cli(*map(str, paths), "--out", str(tmp_path / "mixed")) == 0
    document = read_leaderboard(tmp_path / "mixed" / "leaderboard.json")
    assert document["verdict"]["stacks"] == ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]
    statement = "merges results computed on 2 different hardware/software stacks"
    assert any(statement in s for s in document["verdict"]["statements"])
    assert statement in (tmp_path / "mixed" / "leaderboard.md").read_text()
    # one stack: no such statement
    second["manifest"]["float_stack_id"] = "aaaaaaaaaaaa"
    paths[1] = write_results(tmp_path / "three", second)
    assert run_cli(*map(str, paths), "--out", str(tmp_path / "same")) == 0
    assert statement not in (tmp_path / "same" / "leaderboard.md").read_text()
