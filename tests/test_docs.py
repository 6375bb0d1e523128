"""The docs hold: TOML examples in README.md and docs/*.md parse, suite examples validate against
the registry, repository paths they name exist, and `data info` writes under an output folder.

A TOML block is a suite example when it has a ``[suite]`` table; a block preceded by the line
``<!-- fragment -->`` is only parsed. A suite example's ``include`` files and its dataset ``root``
stand for the reader's own files: the test supplies an empty base file and an empty root folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from medsynbench.registry import get_registry
from medsynbench.suite import load_suite

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
# `benchmark/kinds.py`, [x](docs/statistics.md), suites/demo.toml ... and the old wrong prefix
# medsynbench/..., which is the import name, not a folder of this repository.
PATH = re.compile(
    r"(?<![\w./-])((?:benchmark|plugins|suites|docs|bench|tests|medsynbench)/[\w./-]*[\w/])"
)


def blocks(language: str) -> list[tuple[str, int, str, bool]]:
    """(file name, line, text, is_fragment) of every fenced block of ``language``."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if match.group(1) != language:
                continue
            line = text.count("\n", 0, match.start()) + 1
            before = text[: match.start()].rstrip().splitlines()[-1:] or [""]
            found.append((doc.name, line, match.group(2), before[0].strip() == "<!-- fragment -->"))
    return found


TOML_BLOCKS = blocks("toml")


def block_id(name: str, line: int, text: str, fragment: bool) -> str:
    """``README.md:<suite name>`` for a suite example (stable while lines move), else the line."""
    match = re.search(r'^\[suite\][^\[]*?^name = "([^"]+)"', text, re.M | re.S)
    return f"{name}:{match.group(1) if match else line}"

# Names that stand for the reader's own file in an example message, not for a shipped file.
ILLUSTRATIVE = {"suites/x.toml"}
# Examples known to be wrong, each with its fix; strict: the test fails once one is fixed, so
# that this list only ever shrinks.
KNOWN_WRONG: dict[str, str] = {}


def test_the_docs_have_a_suite_example():
    assert any("[suite]" in text for _, _, text, _ in TOML_BLOCKS)


@pytest.mark.parametrize(
    "name, line, text, fragment",
    [pytest.param(*block, id=block_id(*block),
                  marks=[pytest.mark.xfail(reason=KNOWN_WRONG[block_id(*block)], strict=True)]
                  if block_id(*block) in KNOWN_WRONG else [])
     for block in TOML_BLOCKS],
)
def test_toml_example_parses_and_suites_validate(name, line, text, fragment, tmp_path,
                                                 monkeypatch):
    parsed = tomllib.loads(text)
    if fragment or "suite" not in parsed:
        return
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MEDSYNBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    includes = parsed.get("include", [])
    for include in [includes] if isinstance(includes, str) else includes:
        (tmp_path / include).write_text("")  # the reader's own base file
    root = parsed.get("dataset", {}).get("root")
    if isinstance(root, str):
        Path(os.path.expandvars(os.path.expanduser(root))).mkdir(parents=True, exist_ok=True)
    path = tmp_path / "example.toml"
    path.write_text(text)
    suite = load_suite(path, get_registry(), allow_underpowered=True)
    assert suite.entries, f"{name}:{line}"


def test_paths_named_in_the_docs_exist():
    missing = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in PATH.finditer(text):
            path = match.group(1).rstrip(".")
            if "*" in path or "<" in path or path in ILLUSTRATIVE:
                continue
            if not (REPO / path).exists():
                line = text.count("\n", 0, match.start()) + 1
                missing.append(f"{doc.relative_to(REPO)}:{line}: {path}")
    assert not missing, "paths named in the docs that do not exist:\n" + "\n".join(missing)


def test_data_info_writes_its_mosaic_under_an_output_folder(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                                     os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "medsynbench.cli", "data", "info", "phantom-xray",
               "--set", "n_train=4", "--set", "n_val=0", "--set", "n_test=2",
               "--set", "resolution=32"]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["runs/data-info/phantom-xray-train-mosaic.png"], written
    out = tmp_path / "elsewhere"
    proc = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True,
                          cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (out / "phantom-xray-train-mosaic.png").is_file()
    assert "runs/" in (REPO / ".gitignore").read_text()  # the default folder is ignored
