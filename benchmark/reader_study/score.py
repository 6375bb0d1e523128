"""``reader-study score``: per-entry human fidelity from readers' answers.

Per entry, over the readers kept (those passing the attention checks, unless asked to keep
all): the **FIR** (fake-identification rate: share of its synthetic images called fake, Nan et
al.), the **real-image error rate** (share of its real images called fake), the **error rate**
(synthetic called real + real called fake, over all its images; in an unlimited-time study this
is HYPE∞, Zhou et al. 2019 — 50% means readers cannot tell), **d′**, inter-reader **κ** and,
in a timed study, the **staircase threshold** (HYPE-time). Methods: :mod:`.stats`.

A reader fails the attention checks when they call any noise image real, or call every
attention-check real image fake. Failing readers are flagged and left out of the scores unless
``keep_flagged``; the scores name them either way.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..cache import write_atomic_many
from ..errors import OutputError, ResultsError
from .answers import ReaderAnswers, Study
from .layout import SCORES_KIND
from .stats import LADDER_MS, Staircase, cohen_kappa, d_prime, fleiss_kappa, wilson

__all__ = ["METHODS", "score_study", "write_scores"]

METHODS = {
    "interval": "Wilson score 95% interval on answers pooled over readers and images",
    "d_prime": "Φ⁻¹(FIR) − Φ⁻¹(real error rate), log-linear correction (Hautus 1995) on "
               "every cell: (k + 0.5) / (n + 1)",
    "agreement": "Cohen's κ for two readers, Fleiss' κ for three or more, over the entry's images",
    "staircase": f"3-down/1-up on exposures {list(LADDER_MS)} ms per entry; threshold = mean "
                 "exposure at the last 6 reversals (at least 2)",
    "attention": "a reader fails when they call any noise image real or every attention-check "
                 "real image fake",
}


def _attention(study: Study, reader: ReaderAnswers) -> dict[str, Any]:
    trials = study.trials
    noise = [a for a in reader.answers if trials[a["trial"]]["kind"] == "attention-noise"]
    real = [a for a in reader.answers if trials[a["trial"]]["kind"] == "attention-real"]
    noise_wrong = sum(a["answer"] == "real" for a in noise)
    real_wrong = sum(a["answer"] == "fake" for a in real)
    failed = noise_wrong > 0 or (bool(real) and real_wrong == len(real))
    return {"noise_shown": len(noise), "noise_called_real": noise_wrong,
            "real_shown": len(real), "real_called_fake": real_wrong, "passed": not failed}


def _staircases(study: Study, reader: ReaderAnswers) -> dict[int, Staircase]:
    """Replay the page's staircases; raise when a recorded exposure is not what they imply."""
    trials = study.trials
    stairs: dict[int, Staircase] = {}
    attention_ms = LADDER_MS[0]
    for position, answer in enumerate(reader.answers):
        trial = trials[answer["trial"]]
        group = trial.get("group")
        stair = stairs.setdefault(group, Staircase()) if group is not None else None
        expected = stair.exposure_ms if stair is not None else attention_ms
        if answer.get("exposure_ms") != expected:
            raise ResultsError(
                f"{reader.path}: answer {position + 1} was shown for "
                f"{answer.get('exposure_ms')!r} ms where the staircase gives {expected} ms — "
                "the file was edited or made by another version of the page"
            )
        if stair is not None:
            stair.answer(answer["answer"] == trial["truth"])
    return stairs


def _rates(labels: dict[str, dict[str, str]], fakes: list[str], reals: list[str],
           readers: Sequence[str]) -> dict[str, Any]:
    hits = sum(labels[r][t] == "fake" for r in readers for t in fakes)
    false_alarms = sum(labels[r][t] == "fake" for r in readers for t in reals)
    n_fake, n_real = len(fakes) * len(readers), len(reals) * len(readers)
    errors = (n_fake - hits) + false_alarms
    return {
        "fir": hits / n_fake if n_fake else None, "fir_ci95": wilson(hits, n_fake),
        "real_error": false_alarms / n_real if n_real else None,
        "real_error_ci95": wilson(false_alarms, n_real),
        "error_rate": errors / (n_fake + n_real) if n_fake + n_real else None,
        "error_rate_ci95": wilson(errors, n_fake + n_real),
        "d_prime": d_prime(hits, n_fake, false_alarms, n_real),
        "synthetic_answers": n_fake, "real_answers": n_real,
    }


def _agreement(labels: dict[str, dict[str, str]], items: list[str],
               readers: Sequence[str]) -> dict[str, Any]:
    if len(readers) < 2:
        return {"method": None, "kappa": None, "reason": "one reader: no agreement to measure"}
    if len(readers) == 2:
        first, second = ([labels[r][t] for t in items] for r in readers)
        kappa, reason = cohen_kappa(first, second)
        return {"method": "cohen", "kappa": kappa, "reason": reason}
    table = [[sum(labels[r][t] == c for r in readers) for c in ("fake", "real")] for t in items]
    kappa, reason = fleiss_kappa(table)
    return {"method": "fleiss", "kappa": kappa, "reason": reason}


def score_study(study: Study, readers: Sequence[ReaderAnswers],
                keep_flagged: bool = False) -> dict[str, Any]:
    """The scores document of ``readers``' validated answers to ``study`` (module docstring)."""
    timed = study.protocol == "timed"
    stairs = {r.reader: _staircases(study, r) for r in readers} if timed else {}
    attention = {r.reader: _attention(study, r) for r in readers}
    kept = [r.reader for r in readers if keep_flagged or attention[r.reader]["passed"]]
    if not kept:
        raise ResultsError(
            f"every reader ({', '.join(r.reader for r in readers)}) failed the attention checks, "
            "so no answers are left to score; look at their answers, or pass --keep-flagged to "
            "score them anyway"
        )
    labels = {r.reader: {a["trial"]: a["answer"] for a in r.answers} for r in readers}
    trials = study.trials
    entries = []
    for name in study.manifest["entries"]:
        fakes = sorted(t for t, v in trials.items() if v["entry"] == name
                       and v["kind"] == "synthetic")
        reals = sorted(t for t, v in trials.items() if v["entry"] == name and v["kind"] == "real")
        row: dict[str, Any] = {"entry": name, "synthetic_images": len(fakes),
                               "real_images": len(reals), "readers": len(kept)}
        row.update(_rates(labels, fakes, reals, kept))
        row["agreement"] = _agreement(labels, fakes + reals, kept)
        rts = [a["rt_ms"] for r in readers if r.reader in kept for a in r.answers
               if a["trial"] in set(fakes + reals)]
        row["median_rt_ms"] = statistics.median(rts) if rts else None
        per_reader = []
        for reader in kept:
            one = _rates(labels, fakes, reals, [reader])
            record = {"reader": reader, **{k: one[k] for k in ("fir", "real_error",
                                                              "error_rate", "d_prime")}}
            if timed:
                group = next(v["group"] for t, v in trials.items() if v["entry"] == name)
                stair = stairs[reader].get(group, Staircase())
                record["threshold_ms"], record["threshold_note"] = stair.threshold()
                record["reversals"] = list(stair.reversals)
            per_reader.append(record)
        row["per_reader"] = per_reader
        if timed:
            found = [r["threshold_ms"] for r in per_reader if r["threshold_ms"] is not None]
            row["threshold_ms"] = sum(found) / len(found) if found else None
            row["threshold_readers"] = len(found)
        row["hype_inf"] = None if timed else row["error_rate"]
        entries.append(row)
    manifest = study.manifest
    return {
        "kind": SCORES_KIND, "schema_version": 1, "study_id": study.study_id,
        "protocol": study.protocol,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "suite": manifest["run"]["suite"], "dataset": manifest["run"].get("dataset"),
        "readers": [{"reader": r.reader, "file": r.path.name, "answers": len(r.answers),
                     "attention": attention[r.reader], "flagged": not attention[r.reader]["passed"],
                     "included": r.reader in kept,
                     "median_rt_ms": statistics.median(a["rt_ms"] for a in r.answers)}
                    for r in readers],
        "entries": entries,
        "methods": METHODS,
    }


_CSV_FIELDS = ("entry", "readers", "synthetic_images", "real_images", "fir", "fir_ci95",
               "real_error", "real_error_ci95", "error_rate", "error_rate_ci95", "hype_inf",
               "d_prime", "threshold_ms", "agreement", "median_rt_ms")


def _csv(scores: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header: list[str] = []
    for field in _CSV_FIELDS:
        if field.endswith("_ci95"):
            header += [f"{field}_low", f"{field}_high"]
        elif field == "agreement":
            header += ["kappa_method", "kappa"]
        else:
            header.append(field)
    writer.writerow(header)
    for row in scores["entries"]:
        cells: list[Any] = []
        for field in _CSV_FIELDS:
            value = row.get(field)
            if field.endswith("_ci95"):
                cells += list(value) if value else [None, None]
            elif field == "agreement":
                cells += [value["method"], value["kappa"]]
            else:
                cells.append(value)
        writer.writerow(["" if v is None else v for v in cells])
    return buffer.getvalue()


def write_scores(scores: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Write ``out/scores.json`` and ``out/scores.csv`` together (both or neither)."""
    folder = Path(out)
    files = (folder / "scores.json", folder / "scores.csv")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic_many({files[0]: json.dumps(scores, indent=2) + "\n", files[1]: _csv(scores)})
    except OSError as exc:
        raise OutputError(f"cannot write the scores in {folder}: {exc.strerror or exc}; nothing "
                          "was written — choose another --out") from None
    return files
