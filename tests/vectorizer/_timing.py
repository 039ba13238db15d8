"""Timing helpers for the vectorizer's tests: is the work linear in the input's size?

Import them by name (``from _timing import growth``): pytest puts this folder on
``sys.path`` for the test files in it.
"""

from __future__ import annotations

import timeit


def growth(run, make, small: int, times: int = 8) -> float:
    """How many times longer ``run(make(n))`` takes for ``n = small * times`` than for
    ``small``: about ``times`` for work linear in ``n``, ``times ** 2`` for quadratic,
    whatever the machine's speed (each timing runs for at least 0.2 s)."""

    def per_call(arg) -> float:
        number, seconds = timeit.Timer(lambda: run(arg)).autorange()
        return seconds / number

    return per_call(make(small * times)) / per_call(make(small))
