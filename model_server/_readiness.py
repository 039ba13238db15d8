"""Readiness shared by all workers of one server, so /health speaks for the whole server.

With several gunicorn workers each loads its own models. A /health answer
comes from one worker; it should be 200 only if every worker is ready, or
the next request could land on a worker still loading. The master creates a
:class:`ReadinessBoard` in shared memory before forking; each worker writes
its pid there once its models are ready, and the master erases the pid when
that worker exits (gunicorn's ``child_exit`` hook), so a respawned worker
makes /health 503 again until it is ready.

Beside its pid each worker writes the weights it loaded (:class:`LoadedWeights`: the
manifest's version and the start of its SHA-256). A worker reads its models from the
folder when it starts, so one respawned after the folder changed (a release link
switched, ``models.export --replace-shipped``) holds other models than its siblings:
:func:`version_conflict` says so, for /health and the model endpoints to refuse. A
worker puts its weights there as soon as it judges with them (:meth:`ReadinessBoard.
mark_loaded`), before it is ready: a worker that has said "conflict" once has told every
sibling too. A graceful reload retires the old workers (:meth:`ReadinessBoard.retire`):
what they write while they finish their last requests is ignored.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass

from flask import Flask, current_app

EXTENSION_KEY = "sonotrace_readiness"
#: Pids a board holds.
SLOTS = 256
#: Most workers a server runs (``python -m model_server`` refuses more): half the
#: board, so that pids of workers being replaced never fill it. Each worker holds its
#: own models (about 200 MB); a slip such as 200 for 20 is refused rather than started.
MAX_WORKERS = SLOTS // 2
#: Hex digits of the manifest's SHA-256 a board keeps (64 bits: two exports that differ
#: do not share them by chance).
DIGEST_CHARS = 16
#: Bytes of each slot for the weights: the digest, then the version (cut to fit; an
#: export's version is a date or a time stamp).
WEIGHTS_BYTES = 128


@dataclass(frozen=True)
class LoadedWeights:
    """The models a worker loaded, as its siblings compare them.

    Parameters
    ----------
    version : str
        The manifest's ``version``.
    digest : str
        The manifest's SHA-256 in hex (only its first :data:`DIGEST_CHARS` are kept), so
        that two exports given the same version still differ.
    """

    version: str
    digest: str

    def __post_init__(self):
        room = WEIGHTS_BYTES - DIGEST_CHARS
        version = self.version.encode("utf-8")[:room].decode("utf-8", "ignore")
        object.__setattr__(self, "version", version)
        digest = self.digest[:DIGEST_CHARS].lower().ljust(DIGEST_CHARS, "0")
        object.__setattr__(self, "digest", digest)

    def _pack(self) -> bytes:
        return (self.digest + self.version).encode("utf-8").ljust(WEIGHTS_BYTES, b"\0")

    @classmethod
    def _unpack(cls, raw: bytes) -> LoadedWeights | None:
        raw = raw.rstrip(b"\0")
        if not raw:
            return None
        text = raw.decode("utf-8", "replace")
        return cls(version=text[DIGEST_CHARS:], digest=text[:DIGEST_CHARS])


class ReadinessBoard:
    """Pids of the ready workers and the weights each loaded, in memory shared across
    ``fork``.

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
        # A worker's pid, or minus its pid once retired (until it exits); 0 is free.
        self._pids = multiprocessing.Array("q", slots)
        # Whether slot i's worker is ready (its models warmed up), under the pids' lock.
        self._ready = multiprocessing.Array("b", slots, lock=False)
        # Slot i's weights at [i * WEIGHTS_BYTES, (i + 1) * WEIGHTS_BYTES), under the
        # pids' lock.
        self._weights = multiprocessing.Array("c", slots * WEIGHTS_BYTES, lock=False)

    def _mark(self, pid: int, weights: LoadedWeights | None, ready: bool) -> bool:
        packed = weights._pack() if weights is not None else bytes(WEIGHTS_BYTES)
        with self._pids.get_lock():
            pids = self._pids[:]
            if -pid in pids:  # retired by a reload: its weights no longer count
                return False
            slot = pids.index(pid) if pid in pids else pids.index(0) if 0 in pids else None
            if slot is None:
                return False
            self._pids[slot] = pid
            self._ready[slot] = self._ready[slot] or ready
            self._weights[slot * WEIGHTS_BYTES:(slot + 1) * WEIGHTS_BYTES] = packed
            return True

    def mark_ready(self, pid: int, weights: LoadedWeights | None = None) -> bool:
        """Count worker ``pid`` ready, serving ``weights`` (None: not known).

        Returns
        -------
        bool
            False when the board ignored it: the worker was retired, or no slot is free.
        """
        return self._mark(pid, weights, ready=True)

    def mark_loaded(self, pid: int, weights: LoadedWeights) -> bool:
        """Put the ``weights`` worker ``pid`` loaded on the board, ready or not yet.

        Its siblings count them in :func:`version_conflict` from now on, so that they
        refuse as soon as it does, not once its warm-up ends. Returns as
        :meth:`mark_ready`.
        """
        return self._mark(pid, weights, ready=False)

    def retire(self, pid: int) -> None:
        """Take worker ``pid`` off the board until it exits (:meth:`remove`): a graceful
        reload's old worker, whose models must not count beside the new workers' even
        if it marks itself again while it finishes."""
        with self._pids.get_lock():
            pids = self._pids[:]
            # Also one not on the board yet (still loading): it must not get there.
            slot = pids.index(pid) if pid in pids else pids.index(0) if 0 in pids else None
            if slot is not None:
                self._clear(slot)
                self._pids[slot] = -pid

    def _clear(self, slot: int) -> None:
        self._pids[slot] = 0
        self._ready[slot] = 0
        self._weights[slot * WEIGHTS_BYTES:(slot + 1) * WEIGHTS_BYTES] = bytes(WEIGHTS_BYTES)

    def remove(self, pid: int) -> None:
        """Forget worker ``pid`` (it exited), retired or not."""
        with self._pids.get_lock():
            for i, value in enumerate(self._pids):
                if value in (pid, -pid):
                    self._clear(i)

    def count(self) -> int:
        """The ready workers."""
        with self._pids.get_lock():
            return sum(1 for i, value in enumerate(self._pids)
                       if value > 0 and self._ready[i])

    def weights(self) -> list[LoadedWeights]:
        """The different weights the workers loaded (ready or not, not retired), in the
        order of their slots."""
        seen: list[LoadedWeights] = []
        with self._pids.get_lock():
            for i, pid in enumerate(self._pids):
                raw = self._weights[i * WEIGHTS_BYTES:(i + 1) * WEIGHTS_BYTES]
                weights = LoadedWeights._unpack(raw) if pid > 0 else None
                if weights is not None and weights not in seen:
                    seen.append(weights)
        return seen


def version_conflict(board: ReadinessBoard, own: LoadedWeights | None = None) -> str | None:
    """Why the server must not serve: its workers hold different weights; else None.

    Parameters
    ----------
    board : ReadinessBoard
        The server's board.
    own : LoadedWeights, optional
        The asking worker's, once loaded: it counts before it is ready, since a model
        request loads the models and would be answered before the warm-up ends.

    Returns
    -------
    str or None
        A message naming the versions (and their manifests' digests where two share
        a version) and the fix.
    """
    held = board.weights()
    if own is not None and own not in held:
        held.append(own)
    if len(held) < 2:
        return None
    same_version = len({weights.version for weights in held}) < len(held)
    # Sorted: the same message from every worker (an export's version is its date).
    names = sorted(f"{w.version} (manifest sha256 {w.digest}...)" if same_version
                   else w.version for w in held)
    listed = ", ".join(names[:-1]) + " and " + names[-1]
    return (f"the weights changed under a running server: its workers loaded model "
            f"versions {listed}; restart it")


def attach(app: Flask, board: ReadinessBoard) -> None:
    app.extensions[EXTENSION_KEY] = board


def get_readiness() -> ReadinessBoard | None:
    """The board of the current app, or None outside a multi-worker server."""
    return current_app.extensions.get(EXTENSION_KEY)
