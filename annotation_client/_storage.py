"""Versioned, atomic storage of saved annotations.

Layout under the data directory (``SONOTRACE_DATA_DIR``)::

    <sha256 of the image bytes>/
        v001.svg            edited geometry (image-sized viewBox, evenodd paths)
        v001_mask.png       8-bit 0/255 mask at the image's size, rasterised from v001.svg
        v001_ai_mask.png    the AI's original mask (when the image was auto-segmented)
        v001.json           the record; written last, so its presence marks a complete version
        v002.svg ...
        source.png          the image itself, when it was uploaded (kept once, so the
                            Saved page can open it again; its SHA-256 is the folder's name)

A save never overwrites: each one takes the next free version number, under an
exclusive lock on the folder so two browser tabs saving at once get different
numbers. A number is never reused: the next one is above every versioned file in
the folder, above the folder's high-water mark (``.last_version``, the highest
number a save took, written before that version's files and kept when they are
removed by hand, through restarts and index rebuilds) and, with an index, above
every version the index holds of the image.
A save is all or nothing: the record is serialised before any file is
written, every file is first written to a temporary file in the same folder and
flushed to disk, and only then are they renamed into place with ``os.replace``,
the record last; the folder is flushed after the renames (and the data directory
after a new image's folder is made), so a save once done outlives a power cut. If
any step fails, the files already placed are removed again
(and the folder too, when this save created it), so a failed save leaves the
store as it was and the image can be saved again.

With an :class:`annotation_client._database.AnnotationIndex`, each save is also
indexed once its files are in place. The index is a copy: if it cannot be
written the save still stands, and the index's ``sync`` picks it up later. A record
found damaged when it is loaded is reported to the index then (:class:`DamagedRecord`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import stat
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import vectorizer

from ._database import AnnotationIndex, IndexUnavailable, row_values

logger = logging.getLogger(__name__)

# Each pattern is used with fullmatch: "$" also matches before a final newline, so
# match("^...$") took "<sha>\n" (a ?saved= link) for a SHA-256 and opened a folder named
# so. [0-9], not \d, which also takes other scripts' digits ("v١٢٣.json").
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RECORD = re.compile(r"v([0-9]{3,})\.json")
_VERSIONED = re.compile(r"v([0-9]{3,})(?:_[a-z_]+)?\.(?:svg|png|json)")
_LOCK_NAME = ".lock"
#: The highest version number a save of the image took (one line, the number).
_MARK_NAME = ".last_version"
#: A temporary copy of a file being saved (see _write_temp): ``.v001.svg.k3j2.tmp``,
#: ``..last_version.k3j2.tmp``.
_TEMP = re.compile(r"\.(?:source|v[0-9]{3,}|\.last_version)[^/]*\.tmp")
#: A temporary copy older than this (s) belongs to a save that was killed mid-write
#: (a save writes its copies in well under a second and renames them at once).
STALE_TEMP_S = 3600.0
_SOURCE_STEM = "source"
# The suffix only tells a reader the format; anything odd is kept as .bin.
_SOURCE_SUFFIX = re.compile(r"\.[a-z0-9]{1,5}")


#: The data folder's mark: a random id, made when a client first starts on the folder.
#: A client remembers it, and saves only while the folder it writes to still holds it.
DATA_MARK = ".sonotrace-data-folder"


class DataFolderChanged(OSError):
    """The data folder is gone, is no longer the folder the client started on, or cannot
    be read.

    A volume unmounted (its mount point left empty) or the folder moved away while
    the client runs: a save would make a new, empty folder there, out of sight of
    the Saved page and hidden again once the volume is back. ``str()`` is for the
    radiologist and names no path (it would give the data directory away); it gives
    the likely cause, which for a folder that cannot be read is its permissions (the
    system says "Permission denied") or a disk or network error, not an unmount.
    """

    def __init__(self, why: str, error: OSError | None = None) -> None:
        if error is not None and error.errno in (errno.EACCES, errno.EPERM):
            cause = ("its permissions or owner changed, or the client runs as another user "
                     "than before")
            ask = ("Ask whoever runs SonoTrace to let the client read and write the folder "
                   "again, then save again.")
        elif error is not None:
            cause = "a disk or network error, or a volume unmounted, while the client runs"
            ask = ("Ask whoever runs SonoTrace to check the disk or volume of the folder, "
                   "then save again.")
        else:
            cause = "a volume unmounted, or the folder moved, while the client runs"
            ask = ("Ask whoever runs SonoTrace to put the folder back (or restart the "
                   "client on the right one), then save again.")
        super().__init__(
            f"the data folder (SONOTRACE_DATA_DIR) {why}: {cause}. Nothing was saved; the "
            f"work is still on screen. {ask}"
        )
        self.why = why


def mark_data_folder(root: str | os.PathLike) -> str:
    """The id in ``root``'s :data:`DATA_MARK`, made (at random) if the folder has none.

    Called when the client starts; clients sharing a folder read the same id.

    Raises
    ------
    OSError
        When the mark can be neither read nor made.
    """
    path = Path(root) / DATA_MARK
    if not path.exists():
        made = os.urandom(16).hex()
        # Written whole, then linked into place: clients starting together on a new
        # folder never read a mark half written, and the first link wins.
        temp = _write_temp(path, (made + "\n").encode("ascii"))
        try:
            with contextlib.suppress(FileExistsError):
                os.link(temp, path)
        finally:
            os.unlink(temp)
        # Its name on disk: after a power cut a folder without it would be refused as
        # "not the folder this client started on" by every client that read the id.
        fsync_dir(Path(root))
    return path.read_text(encoding="ascii", errors="replace").strip()


#: Seconds a write probe's answer is reused (see :class:`WriteProbe`): health checks
#: come every few seconds, from the orchestrator and from every open page.
WRITE_PROBE_S = 10.0
#: How much a write probe writes: one page, what any save needs at least.
_PROBE_BYTES = 4096


class _Probe:
    """Whether something a save or a listing needs can be used now, for ``/health``.

    Found at most once every ``every_s`` seconds, the answer reused in between and
    while another thread looks; a change of answer is logged once (:meth:`_log`).
    """

    def __init__(self, every_s: float | None = None) -> None:
        self.every_s = WRITE_PROBE_S if every_s is None else float(every_s)
        self._last: tuple[float, str | None] | None = None
        self._lock = threading.Lock()

    def problem(self) -> str | None:
        """Why it cannot be used now, or None when it can."""
        last = self._last
        if last is not None and time.monotonic() - last[0] < self.every_s:
            return last[1]
        if not self._lock.acquire(blocking=False):
            return None if last is None else last[1]  # another request is probing
        try:
            problem = self._find()
            if problem != (None if last is None else last[1]):
                self._log(problem)
            self._last = (time.monotonic(), problem)
            return problem
        finally:
            self._lock.release()

    def _find(self) -> str | None:
        raise NotImplementedError

    def _log(self, problem: str | None) -> None:
        raise NotImplementedError


class WriteProbe(_Probe):
    """Whether files can be written in a folder now, for ``/health``.

    The folder's mark says it is the right folder, not that a save can write there:
    a disk full, a file system remounted read-only after a disk error (ext4's
    ``errors=remount-ro``) or permissions changed fail every save while the folder
    looks as it did. So a small file is made, written, flushed and removed, as
    :meth:`~annotation_client._config.ClientConfig.check_data_dir` does at start; at
    most once every ``every_s`` seconds, the answer reused in between and while another
    thread probes. A change of answer is logged once.

    Parameters
    ----------
    root : str or pathlib.Path
        The data directory.
    every_s : float
        Seconds an answer is reused (:data:`WRITE_PROBE_S`).
    """

    def __init__(self, root: str | os.PathLike, every_s: float | None = None) -> None:
        super().__init__(every_s)
        self.root = Path(root)

    def problem(self) -> str | None:
        """Why files cannot be written in the folder (``"cannot be written (No space left
        on device)"``), or None when they can."""
        return super().problem()

    def _find(self) -> str | None:
        return _probe_write(self.root)

    def _log(self, problem: str | None) -> None:
        if problem is None:
            logger.info("the data folder %s can be written again", self.root)
        else:
            logger.error("the data folder %s %s: saves fail", self.root, problem)


class IndexProbe(_Probe):
    """Whether the index database can be opened and read now, at start and for ``/health``.

    An index that cannot be opened (a mistyped SQLite path, a PostgreSQL server that is
    down) fails the Saved page, its API, reader agreement and reading progress, and
    leaves saves out of the index; with no saved version yet nothing else opens it at
    start, so without this it showed only at the first listing. The first answer that
    names a problem is logged (as an ERROR naming the URL, its password masked, and why),
    and so is the index coming back.

    Parameters
    ----------
    index : AnnotationIndex
        The client's index.
    every_s : float
        Seconds an answer is reused (:data:`WRITE_PROBE_S`).
    """

    #: ``(problem, detail)`` the gunicorn master found and logged before it forked the
    #: workers (:meth:`before_fork`), None when it found none or did not look. The
    #: workers inherit it: one whose first answer is the same says so in a short line,
    #: rather than the whole error again once per worker.
    said_before_fork: tuple[str, str] | None = None

    def __init__(self, index: AnnotationIndex, every_s: float | None = None) -> None:
        super().__init__(every_s)
        self.index = index
        self._detail = ""

    @classmethod
    def before_fork(cls, index: AnnotationIndex) -> None:
        """Probe ``index`` once in the process that forks the workers, logging a problem
        as ever, and leave the workers forked after the answer (:attr:`said_before_fork`);
        its connections are closed, not to be shared with them."""
        probe = cls(index)
        try:
            problem = probe.problem()
        finally:
            index.dispose()
        cls.said_before_fork = None if problem is None else (problem, probe._detail)

    def problem(self) -> str | None:
        """Why the index cannot be used (``"the annotation index could not be opened"``,
        safe to show: where the database is and who connects stay in the log), or None."""
        return super().problem()

    def _find(self) -> str | None:
        try:
            self.index.check()
        except IndexUnavailable as exc:
            self._detail = exc.logged()
            return str(exc)
        return None

    def _log(self, problem: str | None) -> None:
        if problem is None:
            logger.info("annotation index %s can be used again", self.index.safe_url)
        elif self._last is None and (problem, self._detail) == self.said_before_fork:
            logger.info("annotation index %s unavailable, as logged before this worker "
                        "started (pid %d)", self.index.safe_url, os.getpid())
        else:
            logger.error("annotation index %s unavailable: %s (the Saved page and its API "
                         "fail, and saves are not indexed, until it can be opened)",
                         self.index.safe_url, self._detail)


def _probe_write(root: Path) -> str | None:
    """Make, write, flush and remove a small file in ``root``; why it failed, or None."""
    probe = None
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=root)
        try:
            left = memoryview(bytes(_PROBE_BYTES))
            while left:
                left = left[os.write(fd, left):]
            os.fsync(fd)  # a network file system may say ENOSPC only now
        finally:
            os.close(fd)
        os.unlink(probe)
        probe = None
    except OSError as exc:
        return f"cannot be written ({exc.strerror or type(exc).__name__})"
    finally:
        if probe is not None:
            with contextlib.suppress(OSError):
                os.unlink(probe)
    return None


class DamagedRecord(ValueError):
    """A saved version's record file is there, but cannot be read as a record.

    ``str()`` is for the radiologist: it says the file is damaged, naming it (not its
    folder, which would give the data directory away), why, and what to do, rather
    than a JSON parser's words alone. ``why`` is the reading's own error, ``path`` the
    file, ``version`` its version.
    """

    def __init__(self, path: Path, version: int, why: object, *, indexed: bool) -> None:
        self.path, self.version, self.why = Path(path), version, str(why)
        self.indexed = indexed
        listed = "; the Saved page lists it as damaged" if indexed else ""
        super().__init__(f"the record file {self.path.name} is damaged: {self.why}. Restore "
                         f"it from a backup{listed}")


@dataclass(frozen=True)
class SavedVersion:
    """Where one save went.

    Attributes
    ----------
    version : int
        The version number (1 for the first save of an image).
    folder : pathlib.Path
        The image's folder.
    files : dict
        ``{"svg", "mask", "ai_mask", "record"}`` -> file name (``ai_mask`` None when
        there was no AI mask).
    indexed : bool or None
        Whether the save reached the index: None without one, False when the
        index could not be written (the files are saved all the same).
    """

    version: int
    folder: Path
    files: dict
    indexed: bool | None = None


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    Raises
    ------
    FileExistsError
        If ``path`` already exists: saved files are never overwritten.
    """
    _write_all(Path(path).parent, [(Path(path).name, data)])


def _write_temp(path: Path, data: bytes) -> str:
    """``data`` in a flushed temporary file beside ``path``; returns the temporary's path."""
    if not isinstance(data, bytes | bytearray):
        raise TypeError("data must be bytes")
    # The leading dot keeps it out of _VERSIONED, so a crash here takes no version number.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (names made, renamed or removed in it) to disk.

    A file's own fsync does not make its name durable: after a power cut a rename
    that sat only in the folder's unwritten metadata is undone, and a save the
    radiologist was told of is gone (or leaves an outline without its record).
    File systems that cannot open or fsync a folder (some network and FUSE ones
    refuse with EACCES, EINVAL or EBADF) are left as they are, as PostgreSQL does.

    Raises
    ------
    OSError
        Any other failure (EIO: the folder's entries may not be on disk).
    """
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EISDIR):
            return
        raise
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _write_all(folder: Path, files: list[tuple[str, bytes]]) -> None:
    """Write ``(name, data)`` pairs into ``folder``, all of them or none.

    Every file is written to a temporary first, so a full disk or a failed write
    stops the save before anything has its final name; the renames follow in
    order, then the folder is flushed, so the names are on disk before a save
    is said to be done; on any failure the files already renamed are removed again.

    Raises
    ------
    FileExistsError
        If one of the names exists: saved files are never overwritten.
    """
    temps: list[tuple[str, Path]] = []
    placed: list[Path] = []
    try:
        for name, data in files:
            temps.append((_write_temp(folder / name, data), folder / name))
        while temps:
            tmp, target = temps[0]
            if target.exists():
                raise FileExistsError(f"{target} exists; saved annotations are never overwritten")
            os.replace(tmp, target)
            temps.pop(0)
            placed.append(target)
        fsync_dir(folder)
    except BaseException:
        for path in [Path(tmp) for tmp, _ in temps] + placed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        raise


@contextlib.contextmanager
def _folder_lock(folder: Path, *, create: bool, parents: bool = True):
    """Hold the exclusive lock of an image's folder.

    A failed first save removes the folder with its lock file, so a waiting
    process may wake holding the lock of a file that is gone: it then takes the
    lock again, on the folder as it now is (with ``create``) or gives up with
    FileNotFoundError.
    """
    while True:
        if create:
            folder.mkdir(parents=parents, exist_ok=True)
        with open(folder / _LOCK_NAME, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                held, current = os.fstat(lock.fileno()), os.stat(folder / _LOCK_NAME)
                same = (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino)
            except FileNotFoundError:
                same = False
            if not same:
                continue  # closing the file released the stale lock
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
            return


class AnnotationStore:
    """Saved annotations in one data directory.

    Parameters
    ----------
    root : str or pathlib.Path
        The data directory; created on first save.
    index : AnnotationIndex, optional
        Database index that each save is added to.
    mark : str, optional
        The id of the folder's :data:`DATA_MARK` when the client started
        (:func:`mark_data_folder`): a save checks that the folder still holds it
        (:meth:`check_folder`), and neither makes the data directory nor writes into
        another one. Without it the data directory is made on first save.
    """

    def __init__(self, root: str | os.PathLike, index: AnnotationIndex | None = None,
                 mark: str | None = None) -> None:
        if not isinstance(root, str | os.PathLike):
            raise TypeError("root must be a path")
        if index is not None and not isinstance(index, AnnotationIndex):
            raise TypeError("index must be an AnnotationIndex or None")
        if mark is not None and not isinstance(mark, str):
            raise TypeError("mark must be a str or None")
        self.root = Path(root)
        self.index = index
        self.mark = mark

    def check_folder(self) -> None:
        """Check that the data directory is still the one the client started on.

        Nothing to check without a :attr:`mark`.

        Raises
        ------
        DataFolderChanged
            The folder is missing, or does not hold the mark (another folder, or an
            empty mount point, in its place).
        """
        if self.mark is None:
            return
        try:
            if not stat.S_ISDIR(os.stat(self.root).st_mode):
                raise FileNotFoundError(self.root)  # a file in its place
        except (FileNotFoundError, NotADirectoryError):
            raise DataFolderChanged("is missing") from None
        except OSError as exc:  # a folder above it that may not be searched, say
            raise DataFolderChanged(
                f"cannot be reached ({exc.strerror or type(exc).__name__})", exc) from None
        try:
            found = (self.root / DATA_MARK).read_text(encoding="ascii",
                                                      errors="replace").strip()
        except FileNotFoundError:
            found = None
        except OSError as exc:
            raise DataFolderChanged(
                f"cannot be read ({exc.strerror or type(exc).__name__})", exc) from None
        if found != self.mark:
            raise DataFolderChanged("is not the folder this client started on")

    def folder(self, image_sha256: str) -> Path:
        """The folder of one image (not created)."""
        if not isinstance(image_sha256, str) or not _SHA256.fullmatch(image_sha256):
            raise ValueError("image_sha256 must be 64 lowercase hex digits")
        return self.root / image_sha256

    def images(self) -> list[str]:
        """SHA-256 of every image with a folder here, sorted; [] before the first save."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if _SHA256.fullmatch(p.name) and p.is_dir()
        )

    def versions(self, image_sha256: str, annotator: str | None = None) -> list[int]:
        """Complete versions saved for an image (those with a record), ascending.

        Parameters
        ----------
        image_sha256 : str
            SHA-256 (hex) of the image file's bytes.
        annotator : str, optional
            Only the versions whose record names this annotator (exact name, as
            saved). A record that cannot be read (damaged since) is the annotator's
            if the index recorded it as theirs when it was saved, so that its
            damage is reported to them rather than hidden; without the index it
            names nobody. None: every version.
        """
        folder = self.folder(image_sha256)
        if not folder.is_dir():
            return []
        found = []
        for entry in folder.iterdir():
            match = _RECORD.fullmatch(entry.name)
            if not match:
                continue
            version = int(match.group(1))
            if annotator is not None:
                named = _record_annotator(entry)
                if named is _UNREADABLE:
                    named = self._indexed_annotator(image_sha256, version)
                if named != annotator:
                    continue
            found.append(version)
        return sorted(found)

    def _indexed_annotator(self, image_sha256: str, version: int) -> str | None:
        """The annotator the index holds for one version, or None (no index, not there)."""
        if self.index is None:
            return None
        try:
            return self.index.annotator_of(image_sha256, version)
        except IndexUnavailable as exc:
            logger.warning("annotator of %s v%d not looked up: %s", image_sha256[:12], version,
                           exc.logged())
            return None

    def _version_file(self, image_sha256: str, version: int, ending: str) -> Path:
        """The file ``vNNN<ending>`` of one version (``.json``, ``.svg``, ``_mask.png``)."""
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError("version must be a positive int")
        return self.folder(image_sha256) / f"v{version:03d}{ending}"

    def record_path(self, image_sha256: str, version: int) -> Path:
        """Where a version's record is (or would be)."""
        return self._version_file(image_sha256, version, ".json")

    def svg_path(self, image_sha256: str, version: int) -> Path:
        """Where a version's outline (``vNNN.svg``) is (or would be)."""
        return self._version_file(image_sha256, version, ".svg")

    def mask_path(self, image_sha256: str, version: int) -> Path:
        """Where a version's mask (``vNNN_mask.png``) is (or would be)."""
        return self._version_file(image_sha256, version, "_mask.png")

    def next_version(self, image_sha256: str) -> int:
        """The number the image's next save will take (another save may take it first)."""
        folder = self.folder(image_sha256)
        return self._next_version(folder, image_sha256)

    def _next_version(self, folder: Path, image_sha256: str, indexed: int | None = None) -> int:
        # Count any versioned file, not only records: a save interrupted after its
        # SVG but before its record must not have its number reused. Nor must a
        # version whose files were removed by hand while the index still lists it.
        used = [
            int(m.group(1))
            for e in (folder.iterdir() if folder.is_dir() else ())
            if (m := _VERSIONED.fullmatch(e.name)) is not None
        ]
        if indexed is None:
            indexed = self._indexed_max(image_sha256)
        return max(max(used, default=0), _read_mark(folder), indexed) + 1

    def _indexed_max(self, image_sha256: str) -> int:
        """The index's highest version of an image; 0 without an index or when it is down."""
        if self.index is None:
            return 0
        try:
            return self.index.max_version(image_sha256)
        except IndexUnavailable as exc:
            # The save goes on; were the number one of a removed version's, indexing
            # it replaces that version's row (AnnotationIndex.add).
            logger.warning("highest indexed version of %s not looked up: %s",
                           image_sha256[:12], exc.logged())
            return 0

    def save(
        self,
        image_sha256: str,
        *,
        svg: str,
        mask_png: bytes,
        record: dict,
        ai_mask_png: bytes | None = None,
        source: bytes | None = None,
        source_name: str | None = None,
    ) -> SavedVersion:
        """Save one annotation as the image's next version.

        Parameters
        ----------
        image_sha256 : str
            SHA-256 (hex) of the image file's bytes; names the folder.
        svg : str
            The edited geometry.
        mask_png : bytes
            8-bit 0/255 PNG mask of the image's size.
        record : dict
            JSON-able record; ``version`` and ``files`` are added to the saved copy.
        ai_mask_png : bytes, optional
            The AI's mask as PNG.
        source : bytes, optional
            The image file itself, kept as ``source<suffix>`` beside the versions
            if the folder has none yet (uploads: a worklist image stays in its folder).
        source_name : str, optional
            The file's name, whose suffix the kept copy takes (``.png``, ``.dcm``...).

        Returns
        -------
        SavedVersion

        Raises
        ------
        ValueError
            If ``source`` is not the image ``image_sha256`` names.
        DataFolderChanged
            The data directory is not the one the store's :attr:`mark` names.
        """
        folder = self.folder(image_sha256)
        if not isinstance(svg, str):
            raise TypeError("svg must be a str")
        if not isinstance(mask_png, bytes):
            raise TypeError("mask_png must be bytes")
        if ai_mask_png is not None and not isinstance(ai_mask_png, bytes):
            raise TypeError("ai_mask_png must be bytes or None")
        if not isinstance(record, dict):
            raise TypeError("record must be a dict")
        if source is not None:
            if not isinstance(source, bytes):
                raise TypeError("source must be bytes or None")
            if hashlib.sha256(source).hexdigest() != image_sha256:
                # Kept under the wrong folder, it would open as another image's file.
                raise ValueError("the image file does not match the image being saved")
        # Serialised once before the folder is touched, so a record that is not JSON
        # (NaN, infinity, an object) fails with nothing written.
        _record_text(record, version=1, files={})
        self.check_folder()
        if self.index is None:
            return self._save(folder, image_sha256, svg, mask_png, record, ai_mask_png, source,
                              source_name)
        with self.index.one_wait():  # a locked index is waited for once, not twice
            return self._save(folder, image_sha256, svg, mask_png, record, ai_mask_png, source,
                              source_name)

    def _save(self, folder: Path, image_sha256: str, svg: str, mask_png: bytes, record: dict,
              ai_mask_png: bytes | None, source: bytes | None,
              source_name: str | None) -> SavedVersion:
        """:meth:`save`'s writes, its arguments checked."""
        # Before the lock: a database that makes it wait (locked, or a server that does not
        # answer) holds up no other save of the image. A version indexed since was saved
        # under the lock with its files and mark, which the number is also above.
        indexed = self._indexed_max(image_sha256)
        created = not folder.is_dir()
        # With a mark the data directory is there (checked): only the image's folder is
        # made, so a folder that went away since is never made again in its place.
        with _folder_lock(folder, create=True, parents=self.mark is None):
            _remove_stale_temps(folder)
            mark = None
            try:
                if created:
                    # The new folder's name, before anything is placed in it: its files
                    # flushed under a name a power cut undoes would be lost with it.
                    fsync_dir(folder.parent)
                version = self._next_version(folder, image_sha256, indexed)
                # Before any of the version's files: once they are on disk, the mark
                # says their number was taken, whatever happens to them and the index.
                mark = _write_mark(folder, version)
                stem = f"v{version:03d}"
                files = {
                    "svg": f"{stem}.svg",
                    "mask": f"{stem}_mask.png",
                    "ai_mask": f"{stem}_ai_mask.png" if ai_mask_png is not None else None,
                    "record": f"{stem}.json",
                }
                saved = dict(record, version=version, files=files)
                writes = []
                if source is not None and self.source_path(image_sha256) is None:
                    writes.append((_SOURCE_STEM + _source_suffix(source_name), source))
                writes.append((files["svg"], svg.encode("utf-8")))
                writes.append((files["mask"], mask_png))
                if ai_mask_png is not None:
                    writes.append((files["ai_mask"], ai_mask_png))
                # Last: its presence marks the version complete.
                writes.append((files["record"], _record_text(record, version, files)))
                _write_all(folder, writes)
            except BaseException:
                if mark is not None:
                    # Nothing of this version is kept, so neither is its number's mark.
                    _restore_mark(folder, mark)
                if created:
                    _remove_if_only_lock(folder)
                raise
        logger.info("saved annotation %s/%s", image_sha256[:12], stem)
        indexed = None
        if self.index is not None:
            try:
                # add() replaces a row of this version that says something else, so
                # once it returns the index holds this save, whatever it returned.
                self.index.add(saved, folder / files["record"])
                indexed = True
            except (IndexUnavailable, ValueError) as exc:
                why = exc.logged() if isinstance(exc, IndexUnavailable) else exc
                logger.error("saved %s/%s but could not index it: %s", image_sha256[:12], stem, why)
                indexed = False
                if isinstance(exc, IndexUnavailable):
                    self.index.fell_behind()  # the next listing catches up
        return SavedVersion(version=version, folder=folder, files=files, indexed=indexed)

    def load_record(self, image_sha256: str, version: int) -> dict:
        """Read a saved record back.

        A file that is not a JSON object of its own version (its ``version`` and
        ``image.sha256``, where it names them, those of its name and folder) is
        damaged: :class:`DamagedRecord`. With an index, a record found damaged, a file
        that cannot be read, and a record the index cannot hold (which its ``sync``
        lists as damaged too) are reported to it
        (:meth:`~annotation_client._database.AnnotationIndex.report_damaged`): opening a
        version is when damage that kept the file's size and modification time shows.

        Raises
        ------
        FileNotFoundError
            If the version has no record (never saved, or removed).
        OSError
            If the file cannot be read.
        DamagedRecord
            A ValueError: the file is not UTF-8 JSON, not an object, or another version's.
        """
        path = self.record_path(image_sha256, version)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            _check_identity(record, image_sha256, version)
        except FileNotFoundError:
            raise  # removed, not damaged: the next start drops its row
        except OSError as exc:
            self._report_damaged(image_sha256, version, path, exc)
            raise  # the system's own message says what went wrong
        except ValueError as exc:
            self._report_damaged(image_sha256, version, path, exc)
            raise DamagedRecord(path, version, exc, indexed=self.index is not None) from None
        if self.index is not None:
            try:
                row_values(record, str(path))
            except (ValueError, TypeError) as exc:
                # Readable, so the page may still use it (and say what is wrong in it);
                # the index lists it as damaged, as its next sync would.
                self._report_damaged(image_sha256, version, path, exc)
        return record

    def _report_damaged(self, image_sha256: str, version: int, path: Path, exc: Exception):
        """Tell the index, if any, that a version's record was found damaged."""
        if self.index is not None:
            self.index.report_damaged(image_sha256, version, path, str(exc))

    def load_svg(self, image_sha256: str, version: int) -> str | bytes:
        """Read a saved version's SVG (the edited geometry) back: text, as the client
        writes it (UTF-8), or the file's bytes when it is not UTF-8 (a file converted
        or restored elsewhere, whose XML says its encoding; the export reads it so)."""
        data = self.svg_path(image_sha256, version).read_bytes()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data

    def missing_files(self, image_sha256: str, version: int) -> list[str]:
        """The names of a saved version's outline and mask files that are not there
        (``["v001.svg"]``), when its record is: a stat of each, no read.

        The record alone says a version is complete; files removed or lost since
        leave it unloadable (no outline), or out of the agreement (no mask; the export
        makes it again from the outline), while every listing called it ok.
        """
        names = []
        for suffix in (".svg", "_mask.png"):
            path = self._version_file(image_sha256, version, suffix)
            if not path.is_file():
                names.append(path.name)
        return names

    def load_mask(self, image_sha256: str, version: int) -> np.ndarray:
        """A saved version's mask (``vNNN_mask.png``) as a (H, W) bool array.

        Raises
        ------
        OSError
            If the file is missing or cannot be read.
        ValueError
            If it is not a readable PNG.
        """
        return vectorizer.png_to_mask(self.mask_path(image_sha256, version).read_bytes())

    def source_path(self, image_sha256: str) -> Path | None:
        """The kept copy of the image file, or None when none was kept."""
        folder = self.folder(image_sha256)
        if not folder.is_dir():
            return None
        kept = sorted(p for p in folder.glob(_SOURCE_STEM + ".*") if p.is_file())
        return kept[0] if kept else None

    def load_source(self, image_sha256: str) -> bytes:
        """The kept image file's bytes, checked against the folder's SHA-256.

        Raises
        ------
        FileNotFoundError
            If no copy of the image was kept (a worklist image, or saved before
            copies were kept).
        ValueError
            If the copy no longer has the image's SHA-256 (damaged on disk).
        """
        path = self.source_path(image_sha256)
        if path is None:
            raise FileNotFoundError(f"no copy of image {image_sha256[:12]} was kept")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != image_sha256:
            raise ValueError(f"the kept copy {path} is damaged: its SHA-256 does not match")
        return data


    def prune_sources(
        self, older_than_s: float, *, now: float | None = None, dry_run: bool = False
    ) -> list[Path]:
        """Remove the kept copies of images that no save has touched for ``older_than_s`` s.

        A retention rule for uploaded images: the annotations (SVG, masks and
        records) stay, and only the copy of the image file goes, so the Saved page
        no longer offers to open it. An image's age is that of its newest saved
        version (of the copy itself when it has none), so work still going on
        keeps its image. A save after the prune keeps a new copy.

        Parameters
        ----------
        older_than_s : float
            Minimum age in seconds, >= 0.
        now : float, optional
            The current time as a Unix timestamp (default: ``time.time()``).
        dry_run : bool
            List what would be removed, and remove nothing.

        Returns
        -------
        list of pathlib.Path
            The copies removed (or, with ``dry_run``, that would be), by image.
        """
        if isinstance(older_than_s, bool) or not isinstance(older_than_s, int | float):
            raise TypeError("older_than_s must be a number of seconds")
        if not older_than_s >= 0:  # also refuses NaN
            raise ValueError("older_than_s must be >= 0")
        now = time.time() if now is None else now
        removed = []
        for sha in self.images():
            folder = self.folder(sha)
            if self.source_path(sha) is None:
                continue
            try:
                # Under the save lock, so a save in progress is either seen or waits.
                with _folder_lock(folder, create=False):
                    path = self.source_path(sha)
                    if path is None or now - self._last_saved(folder, path) <= older_than_s:
                        continue
                    if not dry_run:
                        path.unlink()
                    removed.append(path)
            except FileNotFoundError:
                continue  # a failed first save removed the folder meanwhile
        if removed and not dry_run:
            logger.info("removed %d kept image copies idle over %.0f s", len(removed), older_than_s)
        return removed

    def prune_temps(
        self, older_than_s: float = STALE_TEMP_S, *, now: float | None = None,
        dry_run: bool = False,
    ) -> list[Path]:
        """Remove the temporary copies that saves killed mid-write left behind.

        A save writes each file to a hidden ``.<name>.XXXX.tmp`` first; a process
        killed before renaming it leaves the copy (perhaps of the image) forever.
        Those older than ``older_than_s`` go, each image's under its save lock; the
        next save of an image removes its own too.

        Returns
        -------
        list of pathlib.Path
            The copies removed (or, with ``dry_run``, that would be).
        """
        removed = []
        for sha in self.images():
            try:
                with _folder_lock(self.folder(sha), create=False):
                    removed += _remove_stale_temps(
                        self.folder(sha), older_than_s, now=now, dry_run=dry_run
                    )
            except FileNotFoundError:
                continue  # a failed first save removed the folder meanwhile
        return removed

    @staticmethod
    def _last_saved(folder: Path, source: Path) -> float:
        times = [e.stat().st_mtime for e in folder.iterdir() if _RECORD.fullmatch(e.name)]
        return max(times, default=source.stat().st_mtime)


def _check_identity(record, image_sha256: str, version: int) -> None:
    """Raise ValueError unless ``record`` is a JSON object of this image and version, where
    it names them (as :meth:`AnnotationIndex.sync` says it of a record that does not)."""
    if not isinstance(record, dict):
        raise ValueError("the record is not a JSON object")
    image = record.get("image")
    named_sha = image.get("sha256", image_sha256) if isinstance(image, dict) else image_sha256
    named = record.get("version", version)
    if (named_sha, named) != (image_sha256, version) or isinstance(named, bool):
        raise ValueError(f"it holds version {named} of {str(named_sha)[:12]}, not its file's")


#: What :func:`_record_annotator` gives for a record that exists but cannot be read.
_UNREADABLE = object()


def _record_annotator(path: Path) -> str | None | object:
    """The annotator a record names; None when it names none or is gone, and
    :data:`_UNREADABLE` when it is there but cannot be read as JSON.

    Remembered by path, size and modification time: a record is written once and
    never changed, and the worklist asks about every image each time it is listed.
    """
    try:
        stat = path.stat()
    except OSError as exc:  # removed since the folder was listed
        logger.warning("cannot read the annotator of %s: %s", path, exc)
        return None
    return _annotator_of(str(path), stat.st_size, stat.st_mtime_ns)


#: Records whose annotator is remembered (about 250 bytes each); a worklist whose
#: images hold more records reads some of them again at each listing.
ANNOTATOR_CACHE_SIZE = 262_144


@functools.lru_cache(maxsize=ANNOTATOR_CACHE_SIZE)
def _annotator_of(path: str, _size: int, _mtime_ns: int) -> str | None | object:
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        # Remembered too, until the file changes: otherwise a damaged record would be
        # read and logged again at every listing of the worklist.
        logger.warning("cannot read the annotator of %s: %s", path, exc)
        return _UNREADABLE
    name = record.get("annotator") if isinstance(record, dict) else None
    return name if isinstance(name, str) else None


def _record_text(record: dict, version: int, files: dict) -> bytes:
    """The record file's bytes; ValueError (or TypeError) for a record that is not JSON."""
    saved = dict(record, version=version, files=files)
    try:
        text = json.dumps(saved, indent=2, sort_keys=True, allow_nan=False)
    except ValueError as exc:
        raise ValueError(f"the record cannot be saved as JSON: {exc}") from None
    return (text + "\n").encode("utf-8")


def _remove_stale_temps(
    folder: Path, older_than_s: float = STALE_TEMP_S, *, now: float | None = None,
    dry_run: bool = False,
) -> list[Path]:
    """Remove a folder's temporary copies older than ``older_than_s``; call with its lock
    held, so that no save of this process or another is writing them."""
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not _TEMP.fullmatch(entry.name):
            continue
        try:
            if now - entry.lstat().st_mtime <= older_than_s:
                continue
            if not dry_run:
                entry.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            logger.warning("could not remove the stale temporary file %s: %s", entry, exc)
            continue
        removed.append(entry)
    if removed and not dry_run:
        logger.info("removed %d temporary file(s) of interrupted saves in %s", len(removed),
                    folder)
    return removed


def _read_mark(folder: Path) -> int:
    """The folder's high-water mark: the highest version a save took; 0 when none."""
    try:
        text = (folder / _MARK_NAME).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return 0  # no save since marks were kept, or a new image
    except (OSError, ValueError) as exc:
        logger.warning("cannot read the version mark of %s: %s", folder, exc)
        return 0  # the files (and the index) still count
    if not text.isascii() or not text.isdigit():
        logger.warning("the version mark of %s is not a number: %r", folder, text[:20])
        return 0
    return int(text)


def _write_mark(folder: Path, version: int) -> tuple[int, bool]:
    """Set the folder's high-water mark to ``version``, atomically; call with its lock
    held. Returns what it was (its number, and whether the file existed), to restore."""
    path = folder / _MARK_NAME
    before = (_read_mark(folder), path.exists())
    tmp = _write_temp(path, f"{version}\n".encode("ascii"))
    try:
        os.replace(tmp, path)  # the one file a save overwrites
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    try:
        # On disk before any of the version's files can be: after a power cut the mark
        # never says less than the files do, so their number is never taken again.
        fsync_dir(folder)
    except BaseException:
        _restore_mark(folder, before)
        raise
    return before


def _restore_mark(folder: Path, before: tuple[int, bool]) -> None:
    """Put back the mark :func:`_write_mark` replaced, after a save that failed."""
    number, existed = before
    try:
        if existed:
            os.replace(_write_temp(folder / _MARK_NAME, f"{number}\n".encode("ascii")),
                       folder / _MARK_NAME)
        else:
            (folder / _MARK_NAME).unlink(missing_ok=True)
    except OSError as exc:  # the number stays taken: a gap, never a reuse
        logger.warning("could not restore the version mark of %s: %s", folder, exc)


def _remove_if_only_lock(folder: Path) -> None:
    """Remove a folder that a failed save created, if nothing but its lock is left.

    Called with the lock held: the lock file goes first, so a process waiting on
    it sees that it is stale (see :func:`_folder_lock`).
    """
    try:
        if {entry.name for entry in folder.iterdir()} != {_LOCK_NAME}:
            return
        (folder / _LOCK_NAME).unlink()
        folder.rmdir()
    except OSError:
        logger.warning("could not remove the empty folder %s of a failed save", folder)


def _source_suffix(name: str | None) -> str:
    suffix = Path(name or "").suffix.lower()
    return suffix if _SOURCE_SUFFIX.fullmatch(suffix) else ".bin"
