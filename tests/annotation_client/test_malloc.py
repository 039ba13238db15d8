"""The client keeps glibc's malloc to two arenas (annotation_client._malloc)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from annotation_client._malloc import limit_arenas

#: Eight threads holding small allocations at once, then glibc's own count of arenas.
_PROBE = """
import ctypes, ctypes.util, sys, threading
from annotation_client._malloc import limit_arenas
if sys.argv[1] == "limit":
    assert limit_arenas()
barrier = threading.Barrier(8)
def work():
    held = [bytearray(10_000) for _ in range(200)]
    barrier.wait()
    del held
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL(ctypes.util.find_library("c")).malloc_stats()
"""


def _arenas(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True,
                          text=True, timeout=60, check=True,
                          env={"PATH": "/usr/bin:/bin"})  # no MALLOC_ARENA_MAX
    # malloc_stats writes one "Arena N:" block per arena to standard error.
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


def test_threads_share_two_arenas_once_limited():
    # Unlimited, each thread that allocated under contention got an arena of its own.
    assert _arenas("free") > 2
    assert _arenas("limit") == 2


def test_a_limit_in_the_environment_is_left_to_glibc():
    assert limit_arenas(environ={"MALLOC_ARENA_MAX": "4"}) is False
    with pytest.raises(ValueError, match="at least 1"):
        limit_arenas(0)
