"""A throwaway PostgreSQL server, for the tests of the annotation index.

:func:`start_cluster` runs ``initdb`` into a new folder under the system's temporary
folder and starts a server there that listens on no TCP port
(``listen_addresses=''``), only on a unix socket in that same folder: parallel test
runs cannot clash, and nothing outside the machine can reach it. Authentication is
``trust``, as user ``postgres``. The ``postgres`` fixture of this folder's conftest.py
starts one per test session and stops it at the end.

PostgreSQL refuses to run as root, and the tests run as root in CI: the server then
runs as the ``postgres`` system user that Debian's package creates (``nobody`` if
there is none). The folder is made directly under ``/tmp`` rather than in pytest's
``tmp_path``, whose parents only root may enter.

A session killed before its teardown (``kill -9``, a CI timeout) leaves its server
running. Each folder records the pid of the test process that started it
(``owner.pid``), and :func:`stop_abandoned`, run before each session starts its own,
stops and removes the servers whose test process is gone.

Import it by name (``import _postgres``): pytest puts this folder on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

#: Where Debian installs each major version's server programs, in ``<version>/bin``.
DEBIAN_ROOT = Path("/usr/lib/postgresql")
#: The name of the database each test gets, emptied before it (see :meth:`Cluster.reset`).
DATABASE = "sonotrace"
#: Where the servers' folders go, and their names.
PARENT = Path("/tmp")
PREFIX = "sonotrace-pg-"
#: A server time zone far from UTC (and not a whole hour off): a ``saved_at`` that went
#: through a zone conversion anywhere would come back moved.
SERVER_TIMEZONE = "America/St_Johns"


class ClusterError(RuntimeError):
    """``initdb`` or ``pg_ctl`` failed; the message holds their output."""


def find_bindir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: the newest Debian version, else ``PATH``."""
    found = []
    for folder in DEBIAN_ROOT.glob("*/bin"):
        version = folder.parent.name
        if re.fullmatch(r"\d+(\.\d+)?", version) and _has_programs(folder):
            found.append((tuple(int(part) for part in version.split(".")), folder))
    if found:
        return max(found)[1]
    initdb = shutil.which("initdb")
    if initdb and _has_programs(Path(initdb).parent):
        return Path(initdb).parent
    return None


def _has_programs(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) for name in ("initdb", "pg_ctl"))


def _server_user() -> str | None:
    """The user to run the server as: None for this one, unless this one is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise ClusterError("running as root, and there is no postgres or nobody user to run as")


class Cluster:
    """A server started by :func:`start_cluster`.

    Attributes
    ----------
    root : pathlib.Path
        Its folder: the data in ``data/``, the log in ``server.log``, the socket.
    url : str
        SQLAlchemy URL of the test database, with psycopg 3 named as the driver.
    """

    def __init__(self, bindir: Path, root: Path, user: str | None) -> None:
        self.bindir = bindir
        self.root = root
        self.user = user
        self.url = f"postgresql+psycopg://postgres@/{DATABASE}?host={root}"

    @property
    def log(self) -> Path:
        """The server's log file, quoted in a :class:`ClusterError`."""
        return self.root / "server.log"

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if self.user is not None:
            if shutil.which("runuser"):
                command = ["runuser", "-u", self.user, "--", *command]
            else:
                # Numeric ids: Debian's nobody has no group of that name (it is nogroup).
                entry = pwd.getpwnam(self.user)
                command = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}",
                           "--init-groups", *command]  # fmt: skip
        # cwd: the server's user may not be allowed into the tests' working directory.
        result = subprocess.run(command, cwd=self.root, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=120)  # fmt: skip
        if result.returncode != 0:
            raise ClusterError(
                f"{shlex.join(command)} exited with {result.returncode}:\n"
                f"{result.stdout}{result.stderr}\n{_tail(self.log)}"
            )

    def start(self) -> None:
        """Start the server and wait until it takes connections."""
        options = [
            "-c", "listen_addresses=''",
            "-c", f"unix_socket_directories={shlex.quote(str(self.root))}",
            "-c", f"timezone={SERVER_TIMEZONE}",
            # A throwaway server: durability buys nothing, and a training run may share
            # the machine.
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "shared_buffers=16MB",
        ]  # fmt: skip
        self._run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.log), "-w",
                  "-t", "60", "-o", " ".join(options), "start")  # fmt: skip

    def stop(self) -> None:
        """Stop the server (fast shutdown: open connections are closed)."""
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "-t", "60", "stop")

    def connect(self, dbname: str = DATABASE):
        """A psycopg connection in autocommit mode, for the fixtures' own statements."""
        import psycopg

        return psycopg.connect(host=str(self.root), user="postgres", dbname=dbname,
                               autocommit=True, connect_timeout=10)  # fmt: skip

    def reset(self) -> None:
        """Empty the test database: close its other connections, drop and recreate its schema.

        Connections that earlier tests' engines left in their pools are closed first,
        so none holds a lock the ``DROP`` would wait on, and none piles up.
        """
        with self.connect() as conn:
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")

    def destroy(self) -> None:
        """Stop the server if it runs, and remove its folder."""
        if (self.root / "data" / "postmaster.pid").exists():
            with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(bindir: Path) -> Cluster:
    """``initdb`` a new cluster, start it and create the test database.

    Raises
    ------
    ClusterError
        If a step fails; the folder is removed again.
    """
    user = _server_user()
    # Short, and enterable by the server's user: a socket's path holds at most 107 bytes.
    parent = str(PARENT) if PARENT.is_dir() else None
    root = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
    # First, so that no other session takes a folder being set up for abandoned.
    (root / "owner.pid").write_text(str(os.getpid()))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    cluster = Cluster(bindir, root, user)
    try:
        cluster._run("initdb", "-D", str(root / "data"), "-U", "postgres", "--auth=trust",
                     "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
        cluster.start()
        with cluster.connect("postgres") as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
    except BaseException:
        cluster.destroy()
        raise
    return cluster


def stop_abandoned(bindir: Path) -> list[Path]:
    """Stop and remove the servers whose test process is gone; returns their folders.

    A folder without ``owner.pid`` (made by hand, or by an older helper) is left
    alone, and so is one whose owner runs, or whose pid another process has taken
    since: only a folder surely abandoned is removed.
    """
    removed = []
    for root in sorted(PARENT.glob(PREFIX + "*")) if PARENT.is_dir() else []:
        try:
            owner = int((root / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if _running(owner):
            continue
        try:
            user = pwd.getpwuid(root.stat().st_uid).pw_name if os.geteuid() == 0 else None
        except (KeyError, OSError):
            continue
        Cluster(bindir, root, None if user == "root" else user).destroy()
        removed.append(root)
    return removed


def _running(pid: int) -> bool:
    proc = Path("/proc")
    if proc.is_dir():
        # A zombie has died, though kill(pid, 0) still finds it: in a container whose
        # first process reaps no orphans, a killed session's process may stay one.
        try:
            stat = (proc / str(pid) / "stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process holds that pid now
    return True


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path.name})"
