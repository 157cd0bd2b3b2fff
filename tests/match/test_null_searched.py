"""The chance level of the other candidates, moved back to the catalog size it was calibrated on."""

from __future__ import annotations

import itertools
import math

import numpy as np

from soundmark.match.recognizer import CALIBRATED_GROUPS, _at_calibration
from soundmark.match.verify import poisson_tail_log10


def test_a_catalog_no_larger_than_the_calibration_keeps_its_level() -> None:
    assert _at_calibration(8.2, CALIBRATED_GROUPS, 5) == 8.2
    assert _at_calibration(8.2, 100, 5) == 8.2


def test_more_groups_searched_lower_the_level_and_never_raise_it() -> None:
    levels = [_at_calibration(8.2, g, 5) for g in (CALIBRATED_GROUPS * 2, 5_000, 50_000, 500_000)]
    assert all(a > b for a, b in itertools.pairwise(levels))
    assert all(0 < x < 8.2 for x in levels)


def test_the_moved_level_is_what_the_best_of_the_calibration_groups_reach() -> None:
    # Draw the best 5 of 50,000 Poisson(3) groups: their level moved to 700 groups must be
    # near the best 5 of 700 such groups (both are order statistics of the same distribution).
    rng = np.random.default_rng(3)
    big = [float(np.sort(rng.poisson(3.0, size=50_000))[-5:].mean()) for _ in range(20)]
    small = [float(np.sort(rng.poisson(3.0, size=CALIBRATED_GROUPS))[-5:].mean()) for _ in range(200)]
    moved = float(np.median([_at_calibration(x, 50_000, 5) for x in big]))
    assert abs(moved - float(np.median(small))) <= 1.5
    assert moved < float(np.median(big)) - 2


def test_the_search_correction_pays_for_the_lower_level() -> None:
    # A chance candidate at the level itself: moved down, its tail shrinks, but by no more than
    # the Bonferroni term for the extra groups adds back (else chance would gain from growth).
    for groups in (5_000, 50_000):
        level = 12.0
        moved = _at_calibration(level, groups, 5)
        gain = -poisson_tail_log10(13, moved) + poisson_tail_log10(13, level)
        assert gain <= math.log10(groups / CALIBRATED_GROUPS) + 2.0
