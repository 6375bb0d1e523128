"""Statistics of a reader study: proportions with Wilson intervals, d′, κ and the staircase.

Honesty rules:

* **Intervals are Wilson score intervals** (95%) on counts pooled over readers and images
  (scipy's ``binomtest(...).proportion_ci(method="wilson")``): exact enough at the small n of a
  reader study and never outside [0, 1], unlike the Wald interval. Pooling treats every
  (reader, image) answer as independent; answers of one reader are correlated, so with few
  readers the interval is too narrow — the per-reader values are reported beside it.
* **d′ = Φ⁻¹(H) − Φ⁻¹(F)** with "fake" as the signal: H = share of synthetic images called
  fake (the FIR), F = share of real images called fake. Rates of 0 or 1 make d′ infinite, so the
  log-linear correction (Hautus 1995) is applied to every cell, always: H = (hits + 0.5) /
  (n_synthetic + 1), F = (false alarms + 0.5) / (n_real + 1). It biases d′ slightly toward 0.
* **Cohen's κ** for two readers, **Fleiss' κ** for three or more, over the images both/all
  read; κ is undefined (None, with the reason) when chance agreement is 1.
* **The staircase** of a timed study (HYPE-time) is 3-down/1-up on a fixed exposure ladder
  (:data:`LADDER_MS`): three right answers in a row on an entry's images shorten that entry's
  exposure by one rung, one wrong answer lengthens it by one (clamped at the ends). It converges
  near 79.4% correct (Levitt 1971). A reversal is a change of the rule's direction; the
  threshold is the mean exposure at the last :data:`THRESHOLD_REVERSALS` reversals (all, when
  fewer), and needs at least :data:`MIN_REVERSALS` — otherwise it is None with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from scipy.stats import binomtest, norm

__all__ = [
    "DOWN",
    "LADDER_MS",
    "MIN_REVERSALS",
    "START_RUNG",
    "THRESHOLD_REVERSALS",
    "Staircase",
    "cohen_kappa",
    "d_prime",
    "fleiss_kappa",
    "wilson",
]

#: Exposure ladder of timed studies, longest first (ms); HYPE-time showed 100–1000 ms.
LADDER_MS: tuple[int, ...] = (1000, 700, 500, 350, 250, 175, 125, 100)
#: Rung the staircase starts on (500 ms).
START_RUNG = 2
#: Right answers in a row that shorten the exposure (one wrong answer lengthens it).
DOWN = 3
#: Reversals averaged for the threshold, and the fewest that give one.
THRESHOLD_REVERSALS = 6
MIN_REVERSALS = 2


def wilson(successes: int, n: int) -> list[float] | None:
    """95% Wilson score interval of ``successes`` out of ``n`` (None when n = 0)."""
    if n == 0:
        return None
    interval = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    return [float(interval.low), float(interval.high)]


def d_prime(hits: int, n_signal: int, false_alarms: int, n_noise: int) -> float | None:
    """Sensitivity d′ with the log-linear correction (module docstring); None without images."""
    if n_signal == 0 or n_noise == 0:
        return None
    hit_rate = (hits + 0.5) / (n_signal + 1)
    false_alarm_rate = (false_alarms + 0.5) / (n_noise + 1)
    return float(norm.ppf(hit_rate) - norm.ppf(false_alarm_rate))


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> tuple[float | None, str | None]:
    """(κ, None) of two readers' labels of the same images, or (None, why not)."""
    if len(first) != len(second) or not first:
        return None, "the two readers share no images"
    n = len(first)
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    categories = set(first) | set(second)
    chance = sum((first.count(c) / n) * (second.count(c) / n) for c in categories)
    if math.isclose(chance, 1.0):
        return None, "both readers gave one and the same answer to every image (κ undefined)"
    return (observed - chance) / (1 - chance), None


def fleiss_kappa(table: Sequence[Sequence[int]]) -> tuple[float | None, str | None]:
    """(κ, None) of an items × categories table of rating counts (every row sums to the
    number of readers), or (None, why not) — Fleiss (1971)."""
    rows = [list(map(int, row)) for row in table]
    if not rows:
        return None, "no images to agree on"
    raters = sum(rows[0])
    if raters < 2 or any(sum(row) != raters for row in rows):
        return None, "every image needs the same number (≥ 2) of readers"
    n_items = len(rows)
    shares = [sum(row[j] for row in rows) / (n_items * raters) for j in range(len(rows[0]))]
    agreement = [
        (sum(c * c for c in row) - raters) / (raters * (raters - 1)) for row in rows
    ]
    mean_agreement = sum(agreement) / n_items
    chance = sum(p * p for p in shares)
    if math.isclose(chance, 1.0):
        return None, "every reader gave one and the same answer to every image (κ undefined)"
    return (mean_agreement - chance) / (1 - chance), None


@dataclass
class Staircase:
    """One entry's 3-down/1-up staircase (module docstring); feed answers with :meth:`answer`."""

    ladder: tuple[int, ...] = LADDER_MS
    rung: int = START_RUNG
    streak: int = 0
    direction: int = 0  # +1 shorter (harder), -1 longer, 0 before the first move
    reversals: list[int] = field(default_factory=list)

    @property
    def exposure_ms(self) -> int:
        """The exposure of the next image of this staircase."""
        return self.ladder[self.rung]

    def answer(self, correct: bool) -> None:
        """Move after one answer on the current rung."""
        if correct:
            self.streak += 1
            if self.streak < DOWN:
                return
            move = +1
        else:
            move = -1
        self.streak = 0
        if self.direction and move != self.direction:
            self.reversals.append(self.exposure_ms)
        self.direction = move
        self.rung = min(max(self.rung + move, 0), len(self.ladder) - 1)

    def threshold(self) -> tuple[float | None, str | None]:
        """(mean exposure at the last reversals, None), or (None, why not)."""
        if len(self.reversals) < MIN_REVERSALS:
            return None, (
                f"{len(self.reversals)} reversal(s); a threshold needs at least "
                f"{MIN_REVERSALS} (show more images per entry)"
            )
        last = self.reversals[-THRESHOLD_REVERSALS:]
        return sum(last) / len(last), None
