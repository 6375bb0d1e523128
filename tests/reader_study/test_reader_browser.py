"""A whole study in a real headless Chromium, both protocols: readers answer by a known rule
with the keyboard or the mouse, one closes the tab half-way and resumes, each exports the
answers file, and the scores of those files equal the scores the rule implies.

Setup as tests/leaderboard/test_browser.py: Debian's `chromium` and `pip install playwright`
(never `playwright install`); skips when either is missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from medsynbench.reader_study.answers import read_answers, read_study
from medsynbench.reader_study.layout import reader_order
from medsynbench.reader_study.score import score_study

from .conftest import Rule, answer_like_page, build, fooled_by_copies, truthful, write_answers
from .test_reader_score import _staircase_rule

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
COMPARED = ("fir", "fir_ci95", "real_error", "real_error_ci95", "error_rate", "hype_inf",
            "d_prime", "agreement", "threshold_ms")


def chromium_path() -> str:
    candidates = [os.environ.get("MEDSYNBENCH_CHROMIUM", ""), "/usr/bin/chromium",
                  shutil.which("chromium") or "", shutil.which("chromium-browser") or ""]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("Chromium not found (apt-get install -y chromium, or set MEDSYNBENCH_CHROMIUM)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright not installed (pip install playwright)"
    )
    executable = chromium_path()
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _open(context: Any, study: Path) -> Any:
    page = context.new_page()
    page.problems, page.requests = [], []
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.on("request", lambda r: page.requests.append(r.url))
    page.goto((study / "page" / "index.html").as_uri(), wait_until="load")
    return page


def _start(page: Any, reader: str, keyboard: bool) -> None:
    if keyboard:
        page.focus("#reader")
        page.keyboard.type(reader)
        page.keyboard.press("Tab")
        page.keyboard.press("Space")  # the consent box
        page.keyboard.press("Enter")
    else:
        page.fill("#reader", reader)
        page.check("#consent")
        page.click("#start")


def _answer(page: Any, study: Path, reader: str, rule: Rule, keyboard: bool,
            stop_after: int | None = None) -> None:
    """Answer from the image on screen to the end (or ``stop_after`` answers in all),
    checking the page shows the images in the order Python derives for ``reader``."""
    key = read_study(study)
    trials, unlimited = key.trials, key.protocol == "unlimited"
    order = reader_order(key.study_id, reader, sorted(trials))
    page.wait_for_selector("#answer-real:not([disabled])")
    first = int(page.inner_text("#progress-text").split()[1]) - 1
    for index in range(first, len(order) if stop_after is None else stop_after):
        page.wait_for_selector("#answer-real:not([disabled])")
        trial = trials[order[index]]
        assert page.get_attribute("#image", "src") == trial["file"]
        assert page.inner_text("#progress-text") == f"Image {index + 1} of {len(order)}"
        assert page.get_attribute("#image", "alt") == f"Image {index + 1} of {len(order)}: " \
                                                      "real or fake?"
        answer = rule(trial, index)
        if keyboard:
            page.keyboard.press("r" if answer == "real" else "f")
            if unlimited:
                page.keyboard.press("2")
        else:
            page.click(f"#answer-{answer}")
            if unlimited:
                assert page.get_attribute(f"#answer-{answer}", "aria-pressed") == "true"
                page.click('#confidence button[data-confidence="2"]')


def _export(page: Any, folder: Path) -> Path:
    page.wait_for_selector("#done:not([hidden])")
    with page.expect_download() as download:
        page.click("#export")
    path = folder / download.value.suggested_filename
    download.value.save_as(path)
    return path


def _reader(browser: Any, study: Path, folder: Path, reader: str, rule: Rule,
            keyboard: bool) -> Path:
    context = browser.new_context(accept_downloads=True)
    page = _open(context, study)
    _start(page, reader, keyboard)
    _answer(page, study, reader, rule, keyboard)
    path = _export(page, folder)
    assert page.problems == []
    inside = (study / "page").as_uri() + "/"
    assert all(url.startswith((inside, "data:", "blob:")) for url in page.requests)
    context.close()
    return path


def _compare(study: Path, from_browser: list[Path], rules: list[tuple[str, Rule]],
             folder: Path) -> dict[str, Any]:
    """Scores of the browser's files; asserts they equal those of the rule's own answers."""
    key = read_study(study)
    scores = score_study(key, read_answers(from_browser, key))
    implied = score_study(key, read_answers(
        [write_answers(folder, answer_like_page(study, r, rule)) for r, rule in rules], key))
    for got, want in zip(scores["entries"], implied["entries"], strict=True):
        assert {k: got.get(k) for k in COMPARED} == {k: want.get(k) for k in COMPARED}
    return scores


def test_unlimited_study_end_to_end_with_a_closed_tab(browser: Any, tiny_run: Path,
                                                      tmp_path: Path) -> None:
    study = build(tiny_run, tmp_path / "study", images=4)
    exported = tmp_path / "exported"
    exported.mkdir()
    first = _reader(browser, study, exported, "A", truthful, keyboard=True)
    context = browser.new_context(accept_downloads=True)
    page = _open(context, study)
    assert page.is_visible("#attention-note")
    _start(page, "B", keyboard=False)
    _answer(page, study, "B", fooled_by_copies, keyboard=False, stop_after=5)
    page.close()  # the tab closes after 5 answers; the answers are kept in the browser
    page = _open(context, study)
    _start(page, "B", keyboard=False)
    page.wait_for_selector("#answer-real:not([disabled])")
    assert page.inner_text("#progress-text").startswith("Image 6 of ")
    _answer(page, study, "B", fooled_by_copies, keyboard=False)
    second = _export(page, exported)
    assert page.problems == []
    context.close()
    assert second.name == f"answers-{read_study(study).study_id}-B.json"
    scores = _compare(study, [first, second], [("A", truthful), ("B", fooled_by_copies)],
                      tmp_path)
    rows = {row["entry"]: row for row in scores["entries"]}  # what the rules imply, by hand
    assert rows["noise"]["fir"] == 1.0 and rows["copy-real"]["fir"] == 0.5
    assert rows["heldout-real"]["error_rate"] == 0.25
    assert all(r["answers"] == read_study(study).manifest["options"]["images"] * 6 + 4
               for r in scores["readers"])


def test_timed_study_staircase_in_the_browser(browser: Any, tiny_run: Path,
                                              tmp_path: Path) -> None:
    study = build(tiny_run, tmp_path / "study", images=6, protocol="timed",
                  entries=("noise", "copy-real"), attention_pairs=1, fixation_ms=20)
    path = _reader(browser, study, tmp_path, "T1", _staircase_rule(), keyboard=True)
    scores = _compare(study, [path], [("T1", _staircase_rule())], tmp_path / "..")
    for row in scores["entries"]:
        assert row["threshold_ms"] == pytest.approx(850 / 3)


def test_the_start_page_refuses_a_bad_reader_id_and_missing_consent(browser: Any,
                                                                     tiny_run: Path,
                                                                     tmp_path: Path) -> None:
    study = build(tiny_run, tmp_path / "study", images=2, attention_pairs=0)
    context = browser.new_context()
    page = _open(context, study)
    page.fill("#reader", "no spaces allowed")
    page.click("#start")
    assert "reader id" in page.inner_text("#start-error")
    page.fill("#reader", "R1")
    page.click("#start")
    assert "consent" in page.inner_text("#start-error")
    assert page.is_visible("#welcome") and not page.is_visible("#trial")
    assert not page.is_visible("#attention-note")  # this study has no attention checks
    labels = page.evaluate("Array.from(document.querySelectorAll('input')).map("
                           "i => document.querySelector(`label[for=${i.id}]`) !== null)")
    assert labels == [True, True]
    assert page.problems == []
    context.close()
