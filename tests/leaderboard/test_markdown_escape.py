"""Markdown escaping keeps names and errors readable and inert."""

from __future__ import annotations

from medsynbench.leaderboard.markdown import md_escape


def test_quotes_stay_readable_and_tags_stay_inert() -> None:
    error = "task 'augmentation': eval_split = \"val\" <script>alert(1)</script> | a*b `c`"
    escaped = md_escape(error)
    assert "&#x27;" not in escaped and "&quot;" not in escaped
    assert "'augmentation'" in escaped and '"val"' in escaped
    assert "<script>" not in escaped and "&lt;script&gt;" in escaped
    assert "\\|" in escaped and "\\*" in escaped and "\\`" in escaped
