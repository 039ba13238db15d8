"""The throwaway PostgreSQL server of the index tests cleans up after killed sessions."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import _postgres


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _server_pid(root: Path) -> int:
    return int((root / "data" / "postmaster.pid").read_text().splitlines()[0])


def _state(pid: int) -> str:
    """The process's state letter (``Z`` for a zombie), or ``gone``."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return "gone"


def test_a_server_whose_session_died_is_stopped_and_removed(postgres):
    orphan = _postgres.start_cluster(postgres.bindir)
    try:
        server = _server_pid(orphan.root)
        assert _state(server) not in ("Z", "gone")
        (orphan.root / "owner.pid").write_text(str(_dead_pid()))
        assert _postgres.stop_abandoned(postgres.bindir) == [orphan.root]
        assert not orphan.root.exists()
        # Stopped: gone, or a zombie where nothing reaps orphans (this sandbox's init).
        assert _state(server) in ("Z", "gone")
        # This session's own server, whose owner runs, is left alone.
        assert (postgres.root / "owner.pid").read_text() == str(os.getpid())
        with postgres.connect() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        orphan.destroy()


def test_folders_not_surely_abandoned_are_left_alone(postgres):
    made = [Path(tempfile.mkdtemp(prefix=_postgres.PREFIX, dir=_postgres.PARENT))
            for _ in range(2)]  # fmt: skip
    try:
        (made[1] / "owner.pid").write_text("not a pid")  # nor one being set up
        assert _postgres.stop_abandoned(postgres.bindir) == []
        assert all(folder.is_dir() for folder in made)
    finally:
        for folder in made:
            (folder / "owner.pid").unlink(missing_ok=True)
            folder.rmdir()
