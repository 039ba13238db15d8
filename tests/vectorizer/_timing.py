"""Timing helpers for the vectorizer's tests: is the work linear in the input's size?

Import them by name (``from _timing import growth``): pytest puts this folder on
``sys.path`` for the test files in it.
"""

from __future__ import annotations

import timeit


def growth(run, make, small: int, times: int = 8) -> float:
    """How many times longer ``run(make(n))`` takes for ``n = small * times`` than for
    ``small``: about ``times`` for work linear in ``n``, ``times ** 2`` for quadratic,
    whatever the machine's speed (each timing runs for at least 0.2 s).

    Each size is timed three times and the fastest kept: other work on the machine
    (a benchmark, a browser test) only ever slows a run down, and one slowed run of
    the large input alone once made a linear check read 26x.
    """

    def per_call(arg) -> float:
        timer = timeit.Timer(lambda: run(arg))
        number, _ = timer.autorange()
        return min(timer.repeat(repeat=3, number=number)) / number

    return per_call(make(small * times)) / per_call(make(small))
