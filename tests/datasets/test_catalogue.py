"""Every registered dataset states its provenance, is documented, and explains missing data."""

from __future__ import annotations

from pathlib import Path

import pytest
from medsynbench.errors import DataError
from medsynbench.plugins.datasets import PLUGINS
from medsynbench.plugins.datasets.files import FileDataset
from medsynbench.registry import get_registry

DOCS = Path(__file__).resolve().parents[2] / "docs" / "datasets.md"
EXPECTED = {"phantom-xray", "phantom-pathology", "phantom-ct", "medmnist", "pneumoniamnist",
            "pathmnist", "kather2016", "lc25000", "kaggle-cxr", "bcss-lizard", "chexpert-pe",
            "ct-montage", "imagefolder"}


def test_all_issue_datasets_are_registered() -> None:
    assert set(get_registry().names("dataset")) >= EXPECTED


@pytest.mark.parametrize("cls", PLUGINS, ids=lambda c: c.name)
def test_dataset_states_provenance_and_is_documented(cls: type) -> None:
    assert cls.modality and cls.citation and cls.license and cls.__doc__
    assert f"`{cls.name}`" in DOCS.read_text()


@pytest.mark.parametrize("cls", [c for c in PLUGINS if issubclass(c, FileDataset)],
                         ids=lambda c: c.name)
def test_missing_root_says_what_to_download_and_where(cls: type, tmp_path: Path) -> None:
    params = {"root": str(tmp_path / "absent")}
    if cls.name == "medmnist":
        params["flag"] = "dermamnist"
    with pytest.raises(DataError) as err:
        cls(**params)
    message = str(err.value)
    assert str(tmp_path / "absent") in message
    if cls.name != "imagefolder":
        assert "Download:" in message and cls.layout.strip().splitlines()[0].strip() in message
