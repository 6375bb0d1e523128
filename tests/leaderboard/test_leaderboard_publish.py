"""`medsynbench leaderboard publish`: validation of submissions and the regenerated site."""

from __future__ import annotations

import argparse
import base64
import io
import json
from pathlib import Path

import pytest
from leaderboard_fixtures import (
    PROTOCOL_HASH,
    make_entry,
    make_results,
    standard_entries,
    write_results,
)
from medsynbench.errors import MedSynBenchError, ResultsError
from medsynbench.leaderboard import cli, read_leaderboard
from medsynbench.leaderboard.publish import find_embedded_images, publish, regenerate_site
from PIL import Image


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="medsynbench")
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["leaderboard", *argv])
    return int(args.func(args))


def registered_root(tmp_path: Path) -> Path:
    root = tmp_path / "leaderboard"
    root.mkdir()
    registry = {"schema_version": 1, "suites": {"demo": [
        {"version": "1", "hash": PROTOCOL_HASH, "file": "suites/demo.toml"}]}}
    (root / "suites.json").write_text(json.dumps(registry))
    return root


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def png_base64() -> str:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_register_publish_two_submissions_and_regenerate(tmp_path: Path) -> None:
    root = tmp_path / "leaderboard"
    entries = standard_entries()
    first = write_results(tmp_path / "a", make_results(entries[:3]))
    assert run_cli("publish", str(first), "--root", str(root), "--register-suite") == 0
    registry = json.loads((root / "suites.json").read_text())
    # registered by protocol hash: a later submission with other generators still matches
    assert registry["suites"]["demo"] == [
        {"version": "1", "hash": PROTOCOL_HASH, "file": "suites/demo.toml"}]
    # a second submission of the same suite, with its own copy-real baseline
    second_entries = [entries[0], *entries[3:]]
    second = write_results(tmp_path / "b", make_results(second_entries, suite_hash="d" * 64))
    report = publish(second, root)
    assert report.stored is not None and report.stored.parent == root / "submissions" / "demo"
    stored = json.loads(report.stored.read_text())
    assert stored["submission"]["id"] == report.submission_id
    assert stored["manifest"]["gpu"] is None
    assert stored["suite"]["protocol_hash"] == PROTOCOL_HASH and stored["schema_version"] == 2
    # real-image mosaics are never stored; synthetic ones are, next to the submission
    assert "not stored: mosaic of 'copy-real' shows real training images" in report.notes
    stored_files = files_under(root / "submissions")
    assert not any("copy-real" in name for name in stored_files)
    assert f"demo/{report.submission_id}/samples/ldm.png" in stored_files
    # the site merges both submissions; the repeated baseline is qualified by submission id
    site = root / "site" / "demo-1"
    document = read_leaderboard(site / "leaderboard.json")
    names = [e["name"] for e in document["entries"]]
    assert names[:4] == ["stylegan2[truncation=0.6]", "vqvae2", "ldm", "noise"]
    assert names[-1] == "broken-gan"
    assert any(n.startswith("copy-real @ ") for n in names) and "copy-real" in names
    assert [e["rank"] for e in document["entries"]] == [1, 2, 3, 4, None, None, None]
    assert len(document["sources"]) == 2
    assert (site / "index.html").exists() and (site / "samples" / "ldm.png").exists()
    assert 'href="demo-1/index.html"' in (root / "site" / "index.html").read_text()
    # the submission id is a content hash: the same results get the same id (and replace it)
    assert publish(second, root, check_only=True).submission_id == report.submission_id


def test_republishing_leaves_unchanged_boards_byte_identical(tmp_path: Path) -> None:
    """Regenerating the site rebuilds every board; one whose submissions did not change keeps
    its bytes (its date, deterministic plot ids), so a publish diff shows only what changed."""
    root = tmp_path / "leaderboard"
    results = write_results(tmp_path / "a", make_results(standard_entries()[:3]))
    assert run_cli("publish", str(results), "--root", str(root), "--register-suite") == 0
    site = root / "site"
    before = {name: (site / name).read_bytes() for name in files_under(site)}
    assert any(name.endswith(".svg") for name in before)
    regenerate_site(root)
    assert {name: (site / name).read_bytes() for name in files_under(site)} == before
    # a changed board gets a new date
    board = site / "demo-1" / "leaderboard.json"
    document = json.loads(board.read_text())
    document["generated"], document["entries"] = "2000-01-01T00:00:00+00:00", []
    board.write_text(json.dumps(document))
    regenerate_site(root)
    assert json.loads(board.read_text())["generated"] != "2000-01-01T00:00:00+00:00"


def test_check_only_writes_nothing(tmp_path: Path) -> None:
    root = registered_root(tmp_path)
    before = files_under(root)
    path = write_results(tmp_path / "a", make_results(standard_entries()))
    assert run_cli("publish", str(path), "--root", str(root), "--check") == 0
    assert files_under(root) == before


def test_rejects_wrong_suite_hash(tmp_path: Path) -> None:
    root = registered_root(tmp_path)
    path = write_results(tmp_path / "a", make_results([make_entry("x")], suite_hash="f" * 64,
                                                       protocol_hash="f" * 64))
    with pytest.raises(ResultsError, match="does not match the registered hash") as info:
        publish(path, root)
    assert "re-run suites/demo.toml unchanged" in str(info.value)
    assert not (root / "submissions").exists()


def test_rejects_unknown_suite_and_version_mismatch(tmp_path: Path) -> None:
    root = registered_root(tmp_path)
    path = write_results(tmp_path / "a", make_results([make_entry("x")], suite_name="dmeo"))
    with pytest.raises(ResultsError, match='not a known leaderboard suite — did you mean "demo"'):
        publish(path, root)
    document = make_results([make_entry("x")])
    document["suite"]["version"] = "2"
    path = write_results(tmp_path / "b", document)
    with pytest.raises(ResultsError, match="registered as version '1'"):
        publish(path, root)
    with pytest.raises(ResultsError, match="already registered with hash"):
        publish(write_results(tmp_path / "c", make_results([make_entry("x")],
                              protocol_hash="e" * 64)), root, register_suite=True)


def test_rejects_missing_provenance_fields(tmp_path: Path) -> None:
    root = registered_root(tmp_path)
    document = make_results([make_entry("x")])
    del document["suite"]["version"]
    del document["manifest"]["started"]
    document["manifest"]["platform"] = ""
    document["manifest"]["device"] = "cuda"
    path = write_results(tmp_path / "a", document)
    with pytest.raises(ResultsError) as info:
        publish(path, root)
    message = str(info.value)
    for expected in ("$.suite: missing required field 'version'",
                     "$.manifest: missing required field 'started'",
                     "$.manifest.platform: expected a non-empty string",
                     "$.manifest.gpu: expected a non-empty string, got null"):
        assert expected in message
    del document["manifest"]
    path = write_results(tmp_path / "b", document)
    with pytest.raises(ResultsError, match="missing required field 'manifest'"):
        publish(path, root)


def test_rejects_embedded_real_images(tmp_path: Path) -> None:
    root = registered_root(tmp_path)
    entry = make_entry("x")
    entry["params"]["sample"]["init_image"] = "data:image/png;base64," + png_base64()
    document = make_results([entry, make_entry("y")])
    document["entries"][1]["real_examples"] = [png_base64()]
    path = write_results(tmp_path / "a", document)
    with pytest.raises(ResultsError) as info:
        run_cli("publish", str(path), "--root", str(root))
    message = str(info.value)
    assert "$.entries[0].params.sample.init_image: embedded image data (data: URI" in message
    assert "$.entries[1].real_examples[0]: embedded image data (base64 PNG" in message
    assert not (root / "submissions").exists()


def test_embedded_image_detector_ignores_ordinary_strings() -> None:
    document = make_results(standard_entries())
    assert find_embedded_images(document) == []
    assert find_embedded_images({"hash": "a" * 64, "blob": "QUJD" * 2000}) == [
        "$.blob: embedded image data (a large base64 payload, 8,000 characters)"]


def test_rejects_bad_mosaic_paths(tmp_path: Path) -> None:
    root = registered_root(tmp_path)
    outside = write_results(tmp_path / "a", make_results([make_entry("x", samples="../x.png")]),
                            mosaics=False)
    with pytest.raises(ResultsError, match="must be a path inside the results folder"):
        publish(outside, root)
    missing = write_results(tmp_path / "b", make_results([make_entry("x", samples="s/x.png")]),
                            mosaics=False)
    with pytest.raises(ResultsError, match="not found next to the results file"):
        publish(missing, root)
    (tmp_path / "b" / "s").mkdir()
    (tmp_path / "b" / "s" / "x.png").write_text("GIF89a not a png")
    with pytest.raises(ResultsError, match="is not a PNG file"):
        publish(missing, root)


def test_rejects_other_schema_version_and_bad_cli_use(tmp_path: Path) -> None:
    root = registered_root(tmp_path)
    path = write_results(tmp_path / "a", make_results([make_entry("x")], schema_version=0))
    with pytest.raises(ResultsError, match="schema_version int 0"):
        publish(path, root)
    with pytest.raises(MedSynBenchError, match=r"exactly one RESULTS\.json"):
        run_cli("publish", str(path), str(path), "--root", str(root))
    with pytest.raises(MedSynBenchError, match="do not apply to publish"):
        run_cli("publish", str(path), "--out", str(tmp_path / "x"))
    with pytest.raises(MedSynBenchError, match="only apply to `leaderboard publish`"):
        run_cli(str(path), "--out", str(tmp_path / "x"), "--check")


def test_published_submissions_in_the_repository_validate() -> None:
    """Every submission stored under leaderboard/ still passes publish's checks."""
    root = Path(__file__).resolve().parents[2] / "leaderboard"
    submissions = sorted((root / "submissions").glob("*/*.json"))
    if not submissions:
        pytest.skip("no published submissions in leaderboard/")
    for path in submissions:
        report = publish(path, root, check_only=True)
        assert report.stored is None
        stored = json.loads(path.read_text())
        assert stored["submission"]["id"] == path.stem
        for entry in stored["entries"]:
            assert not (entry.get("samples") and entry["generator"] in ("copy-real",
                                                                       "classical-augment"))


def test_registry_records_a_suite_file_inside_the_repository_as_a_relative_path(
    tmp_path: Path,
) -> None:
    root = tmp_path / "leaderboard"
    document = make_results(standard_entries()[:3])
    document["suite"]["file"] = str(tmp_path / "suites" / "demo.toml")  # run with an absolute path
    results = write_results(tmp_path / "a", document)
    assert run_cli("publish", str(results), "--root", str(root), "--register-suite") == 0
    registry = json.loads((root / "suites.json").read_text())
    assert registry["suites"]["demo"][0]["file"] == "suites/demo.toml"
