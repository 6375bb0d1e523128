"""index.html in a real headless Chromium (Debian's `chromium` package, driven by playwright).

Setup (CI): `apt-get install -y chromium` and `pip install playwright` — never `playwright
install`: the system browser is used through `executable_path`. Skips when either is missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from leaderboard_fixtures import make_entry, make_results, standard_entries, write_results
from medsynbench.leaderboard import read_leaderboard, read_results
from medsynbench.leaderboard.build import build_site
from medsynbench.leaderboard.markdown import rank_cell

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
EVIL = "<script>alert(1)</script>"


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


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    entries = [*standard_entries(), make_entry(EVIL, 0.75, samples="samples/evil.png")]
    path = write_results(root / "run", make_results(entries))
    build_site([read_results(path)], root / "site")
    return root / "site"


@pytest.fixture
def page(browser: Any, site: Path) -> Iterator[Any]:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.problems, page.dialogs, page.requests = [], [], []
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: page.requests.append(r.url))
    page.goto((site / "index.html").as_uri(), wait_until="load")
    yield page
    page.close()


def column(page: Any, index: int) -> list[str]:
    cells = page.locator(f"#leaderboard tbody tr td:nth-child({index})").all_inner_texts()
    return [c.strip() for c in cells]


def test_rows_ordered_by_utility(page: Any, site: Path) -> None:
    ranked = [e for e in read_leaderboard(site / "leaderboard.json")["entries"]
              if e["rank"] is not None]  # reference rows have their own table
    expected = [e["name"] for e in ranked]
    assert expected == ["stylegan2[truncation=0.6]", "vqvae2", "ldm", EVIL, "noise"]
    assert column(page, 1) == [rank_cell(e) for e in ranked]  # e.g. "=1 (1–1)"
    assert column(page, 2) == expected
    assert page.problems == [] and page.dialogs == []


def test_column_click_resorts(page: Any) -> None:
    header = page.locator("#leaderboard thead tr.cols th")  # the row under the axis row
    header.nth(1).click()  # Entry, ascending
    names = column(page, 2)
    assert names == sorted(names, key=str.lower) and names[0] == EVIL
    header.nth(1).click()  # descending
    again = column(page, 2)
    assert again == list(reversed(names))
    fid = [h.strip() for h in header.all_inner_texts()].index("FID ↓")
    header.nth(fid).click()
    values = [float(v) for v in column(page, fid + 1)]
    assert values == sorted(values) and values[0] == 10.0  # EVIL; copy-real is a reference row
    assert header.nth(fid).get_attribute("aria-sort") == "ascending"
    header.nth(0).click()  # back to rank order
    assert column(page, 2)[:3] == ["stylegan2[truncation=0.6]", "vqvae2", "ldm"]
    assert page.problems == []


def test_every_image_loads(page: Any, site: Path) -> None:
    plots = read_leaderboard(site / "leaderboard.json")["plots"]
    images = page.evaluate(
        "Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])"
    )
    sources = [src for src, _, _ in images]
    assert [p["png"] for p in plots] == [s for s in sources if s.startswith("plots/")]
    assert len([s for s in sources if s.startswith("samples/")]) == 4  # copy-real withheld
    broken = [src for src, complete, width in images if not complete or width == 0]
    assert broken == []
    assert all(url.startswith(("file://", "data:")) for url in page.requests)
    assert page.problems == []


def test_script_name_renders_as_text(page: Any) -> None:
    assert EVIL in page.locator("#leaderboard tbody").inner_text()
    assert page.locator("#leaderboard tbody script").count() == 0
    assert page.dialogs == []


AXES = ("fidelity", "variety", "privacy", "efficiency")


@pytest.mark.parametrize("viewport", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_ranking_and_four_axes_fit_without_horizontal_scrolling(
    browser: Any, site: Path, viewport: tuple[int, int]
) -> None:
    width, height = viewport
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        page.goto((site / "index.html").as_uri(), wait_until="load")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        table = page.locator("#leaderboard")
        # the table is not scrolled inside its own box either
        assert page.evaluate(
            "(() => { const t = document.querySelector('#leaderboard');"
            " return t.parentElement.scrollWidth <= t.parentElement.clientWidth; })()")
        assert table.bounding_box()["x"] >= 0
        assert table.bounding_box()["x"] + table.bounding_box()["width"] <= width
        first = page.locator("#leaderboard tbody tr").first
        cells = first.locator("td")
        labels = [cells.nth(i).get_attribute("data-label") for i in range(cells.count())]
        for axis in AXES:  # every axis has a cell in the row, inside the viewport
            index = next(i for i, label in enumerate(labels) if label.startswith(f"{axis}:"))
            box = cells.nth(index).bounding_box()
            assert box is not None and box["width"] > 0
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, (axis, box)
            assert cells.nth(index).inner_text().strip() not in ("", "—")
        rank = cells.nth(0).bounding_box()
        assert rank is not None and rank["x"] + rank["width"] <= width
        if width < 760:  # a card per entry: the header row is hidden, labels are shown
            assert page.locator("#leaderboard thead").is_hidden()
        else:
            groups = page.locator("#leaderboard thead tr.groups th").all_inner_texts()
            assert [g.strip() for g in groups if g.strip()] == ["utility", *AXES]
    finally:
        page.close()


def test_mosaics_labelled_with_class_names_and_enlarged(page: Any) -> None:
    figure = page.locator("figure.samples").first
    assert figure.locator("ol.classes li").all_inner_texts() == ["normal", "pneumonia"]
    natural, shown = page.evaluate(
        "(() => { const i = document.querySelector('figure.samples img');"
        " return [i.naturalWidth, i.clientWidth]; })()")
    assert natural == 48 and shown == 3 * natural  # the 48 px test mosaic drawn at 3×
    assert page.evaluate(
        "getComputedStyle(document.querySelector('figure.samples img')).imageRendering"
    ) == "pixelated"
