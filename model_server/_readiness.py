"""Readiness shared by all workers of one server, so /health speaks for the whole server.

With several gunicorn workers each loads its own models. A /health answer
comes from one worker; it should be 200 only if every worker is ready, or
the next request could land on a worker still loading. The master creates a
:class:`ReadinessBoard` in shared memory before forking; each worker writes
its pid there once its models are ready, and the master erases the pid when
that worker exits (gunicorn's ``child_exit`` hook), so a respawned worker
makes /health 503 again until it is ready.
"""

from __future__ import annotations

import multiprocessing

from flask import Flask, current_app

EXTENSION_KEY = "sonotrace_readiness"
#: Pids a board holds.
SLOTS = 256
#: Most workers a server runs (``python -m model_server`` refuses more): half the
#: board, so that pids of workers being replaced never fill it. Each worker holds its
#: own models (about 200 MB); a slip such as 200 for 20 is refused rather than started.
MAX_WORKERS = SLOTS // 2


class ReadinessBoard:
    """Pids of the ready workers, in memory shared across ``fork``.

    Parameters
    ----------
    expected : int
        Number of workers the server runs.
    slots : int
        Capacity, at least ``expected``: a worker past it could never mark itself
        ready, so /health would never be 200.
    """

    def __init__(self, expected: int, slots: int = SLOTS):
        if expected < 1:
            raise ValueError(f"expected must be >= 1, got {expected}")
        if expected > slots:
            raise ValueError(f"expected must be at most the {slots} slots, got {expected}")
        self.expected = expected
        self._pids = multiprocessing.Array("q", slots)

    def mark_ready(self, pid: int) -> None:
        with self._pids.get_lock():
            if pid in self._pids[:]:
                return
            for i, value in enumerate(self._pids):
                if value == 0:
                    self._pids[i] = pid
                    return

    def remove(self, pid: int) -> None:
        with self._pids.get_lock():
            for i, value in enumerate(self._pids):
                if value == pid:
                    self._pids[i] = 0

    def count(self) -> int:
        with self._pids.get_lock():
            return sum(1 for value in self._pids if value)


def attach(app: Flask, board: ReadinessBoard) -> None:
    app.extensions[EXTENSION_KEY] = board


def get_readiness() -> ReadinessBoard | None:
    """The board of the current app, or None outside a multi-worker server."""
    return current_app.extensions.get(EXTENSION_KEY)
