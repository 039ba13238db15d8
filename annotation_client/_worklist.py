"""The worklist: the images of one folder, to open and annotate one after another.

``SONOTRACE_WORKLIST_DIR`` names a folder (an export from the PACS, a study's
share). The Annotate page lists the PNG, JPEG and DICOM files under it, at any
depth, each with whether it has a saved annotation, and opens one by its path
relative to the folder. Nothing outside the folder can be opened this way: a
relative path with ``..``, an absolute path, or a symbolic link that leads out of
the folder is refused.

The saved versions of an image live under the SHA-256 of its bytes (see
:mod:`annotation_client._storage`), so an entry's status needs that hash. Hashes
are cached by the file's path, size, modification time and inode: listing the
folder again reads only the files that are new or changed.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from ._imageio import check_size
from ._storage import AnnotationStore

logger = logging.getLogger(__name__)

#: File name endings listed, compared case-insensitively.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".dcm", ".dicom"})
#: Most entries listed: a dropdown of more is of no use to anyone, and each needs a hash.
MAX_ENTRIES = 5000
#: Most files past that limit offered for one search of the worklist's dropdown
#: (:func:`search_unlisted`): typing more of a name narrows them.
SEARCH_LIMIT = 50
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WorklistEntry:
    """One image file of the worklist.

    Attributes
    ----------
    path : str
        Path relative to the worklist folder, with ``/`` between folders.
    size_bytes : int
        File size.
    sha256 : str or None
        SHA-256 (hex) of the file's bytes; None for a file over the size limit,
        which is not read.
    version : int
        Latest saved annotation version of the image, 0 when there is none (under
        blinded reading, the latest the reader saved).
    too_large : bool
        The file is over the client's upload limit, so it cannot be opened.
    """

    path: str
    size_bytes: int
    sha256: str | None
    version: int
    too_large: bool

    @property
    def annotated(self) -> bool:
        """Whether the image has at least one saved version."""
        return self.version > 0

    @property
    def status(self) -> str:
        """``"not annotated"``, ``"saved vN"`` (the latest version) or ``"too large"``."""
        if self.too_large:
            return "too large"
        return f"saved v{self.version}" if self.version else "not annotated"


@dataclass(frozen=True)
class Worklist:
    """A listing of the worklist folder.

    Attributes
    ----------
    root : pathlib.Path
        The folder, symbolic links resolved.
    entries : tuple of WorklistEntry
        The listed images, sorted by relative path, at most the listing's limit.
    found : int
        How many image files the folder holds, listed or not.
    unlisted : tuple of str
        The relative paths of the image files past the listing's limit, in the same
        order (neither read nor hashed): :func:`unannotated_walk` goes on through them.
    """

    root: Path
    entries: tuple[WorklistEntry, ...]
    found: int
    unlisted: tuple[str, ...] = ()

    @property
    def truncated(self) -> bool:
        """Whether the folder holds more images than are listed."""
        return self.found > len(self.entries)

    @property
    def note(self) -> str | None:
        """A sentence for the user when the listing is truncated, else None."""
        if not self.truncated:
            return None
        more = self.found - len(self.entries)
        return (
            f"Only the first {len(self.entries)} of {self.found} images are listed: "
            f"{more} more file(s) are not in the list, and are not counted in it. "
            "Open next not annotated goes on to them once the listed ones are done; "
            "split the folder to list them all."
        )


class HashCache:
    """SHA-256 of files, remembered by path, size, modification time and inode.

    A file that changes gets a new size or modification time, so it is read
    again; one that does not is never read twice. Safe to share between threads.

    Parameters
    ----------
    max_items : int, optional
        Most hashes kept; the least recently used go first.

    Attributes
    ----------
    reads : int
        How many files were read and hashed (not answered from the cache).
    """

    def __init__(self, max_items: int = 50_000) -> None:
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise ValueError("max_items must be a positive int")
        self.max_items = max_items
        self.reads = 0
        self._items: OrderedDict[tuple, str] = OrderedDict()
        self._lock = threading.Lock()

    def sha256(self, path: str | os.PathLike, stat: os.stat_result | None = None) -> str:
        """The SHA-256 (hex) of the file at ``path``.

        Parameters
        ----------
        path : str or os.PathLike
            The file.
        stat : os.stat_result, optional
            ``os.stat(path)``, when the caller has it already.

        Raises
        ------
        OSError
            If the file cannot be read.
        """
        if not isinstance(path, str | os.PathLike):
            raise TypeError("path must be a path")
        stat = os.stat(path) if stat is None else stat
        key = (os.fspath(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        value = digest.hexdigest()
        with self._lock:
            self.reads += 1
            self._items[key] = value
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return value


_CACHE = HashCache()


def _folder(root) -> Path:
    if not isinstance(root, str | os.PathLike):
        raise TypeError("root must be a path")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise ValueError(f"root {str(path)!r} is not an existing folder")
    return path.resolve()


def _is_image_name(name: str) -> bool:
    # splitext, not PurePosixPath(name).suffix: the same for a name, at a tenth the cost.
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def list_images(
    root: str | os.PathLike,
    store: AnnotationStore,
    *,
    max_bytes: int | None = None,
    limit: int = MAX_ENTRIES,
    cache: HashCache | None = None,
    annotator: str | None = None,
) -> Worklist:
    """List the image files under ``root`` with their annotation status.

    Files ending in ``.png``, ``.jpg``, ``.jpeg``, ``.dcm`` or ``.dicom`` (in any
    case) are listed, in every subfolder, sorted by their relative path compared
    folder by folder. Hidden files and folders (name starting with ``.``) are
    skipped, and so is the store's data directory when it lies inside ``root``
    (nothing is listed when ``root`` is the data directory or lies inside it), as are
    symbolic links to files in it.
    Symbolic links to folders are not followed; a symbolic link to a file is
    listed only when the file is inside ``root``.

    Parameters
    ----------
    root : str or os.PathLike
        The worklist folder.
    store : AnnotationStore
        Where the annotations are saved: an entry's ``version`` is its image's
        latest version there.
    max_bytes : int, optional
        The upload limit: a larger file is listed as ``too_large`` and not read.
    limit : int, optional
        Most entries listed (the first ones in path order).
    cache : HashCache, optional
        Where file hashes are remembered; a cache shared by the process by default.
    annotator : str, optional
        Count only this annotator's saves (blinded reading): an entry's
        ``version`` is then the latest version they saved, 0 when they saved none.

    Returns
    -------
    Worklist

    Raises
    ------
    ValueError
        If ``root`` is not an existing folder, or ``max_bytes`` or ``limit`` is
        not a positive int.
    """
    folder = _folder(root)
    if not isinstance(store, AnnotationStore):
        raise TypeError("store must be an AnnotationStore")
    if max_bytes is not None and (
        isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1
    ):
        raise ValueError("max_bytes must be a positive int or None")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError("limit must be a positive int")
    if cache is not None and not isinstance(cache, HashCache):
        raise TypeError("cache must be a HashCache or None")
    cache = _CACHE if cache is None else cache
    found, _stamps = _image_paths(folder, Path(os.path.realpath(store.root)))

    entries = []
    for relative in found[:limit]:
        entry = _entry(folder, relative, store, max_bytes, cache, annotator)
        if entry is not None:
            entries.append(entry)
    return Worklist(root=folder, entries=tuple(entries), found=len(found),
                    unlisted=tuple(found[limit:]))


def count_images(root: str | os.PathLike, data_dir: str | os.PathLike) -> int:
    """How many image files :func:`list_images` finds under ``root`` (listed, and past
    its limit), the store's data folder ``data_dir`` left out; from the listing kept
    (:func:`_image_paths`), so without a ``stat`` of each file.

    Raises
    ------
    ValueError
        If ``root`` is not an existing folder.
    """
    paths, _stamps = _image_paths(_folder(root), Path(os.path.realpath(data_dir)))
    return len(paths)


def _entry(folder: Path, relative: str, store: AnnotationStore, max_bytes: int | None,
           cache: HashCache, annotator: str | None) -> WorklistEntry | None:
    """The entry of the file ``relative`` under ``folder``, as :func:`list_images` lists
    it; None (and a log line) when it cannot be read."""
    path = folder / relative
    try:
        stat = path.stat()
        too_large = max_bytes is not None and stat.st_size > max_bytes
        sha = None if too_large else cache.sha256(path, stat)
    except OSError as exc:  # removed since the walk, or unreadable
        # Neither the path nor the error's text, which repeats it: scanners put the
        # patient's name in file names. The path's hash finds it (see _path_ref).
        logger.warning("worklist: skipping entry %s: %s", _path_ref(relative),
                       exc.strerror or type(exc).__name__)
        return None
    versions = store.versions(sha, annotator) if sha else []
    return WorklistEntry(
        path=relative,
        size_bytes=stat.st_size,
        sha256=sha,
        version=max(versions, default=0),
        too_large=too_large,
    )


#: How long, at most, a listing of the folder is used again while none of its folders
#: has changed (s): the callbacks one open sets off ask within a few seconds of each
#: other; a poll 20 s later lists it again whatever the folders' times say.
LISTING_KEPT_S = 10.0
#: A folder modified this recently (ns, by this machine's clock) when it is listed gets
#: its listing kept for no one: a file added in the same tick of the file system's clock
#: (coarse on most, 1 or 2 s on some shares) would leave its modification time unchanged.
_RACY_NS = 2_000_000_000
_LISTINGS_KEPT = 4  # folders: one worklist per client, and the tests' few at a time
_LISTINGS: OrderedDict[tuple[str, str], tuple[float, tuple[str, ...], dict]] = OrderedDict()
_LISTINGS_LOCK = threading.Lock()


def _stamp(path: str) -> tuple[int, int, int]:
    """What changes when a folder's entries do: its modification and change times (ns)
    and its inode (a folder replaced by another)."""
    stat = os.stat(path)
    return stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino


def _unchanged(stamps: dict[str, tuple[int, int, int]]) -> bool:
    """Whether every folder still has the stamp it had when it was listed."""
    try:
        return all(_stamp(path) == stamp for path, stamp in stamps.items())
    except OSError:
        return False  # a folder gone or unreadable: listed again, as it is now


def _image_paths(folder: Path, data_dir: Path) -> tuple[tuple[str, ...], dict | None]:
    """The relative paths of the image files under ``folder`` as :func:`list_images`
    lists them (hidden files, the data folder and links out of either left out), in
    its order; and the stamps of its folders (as :func:`_walk` gives them, None when
    they tell nothing), by which what was found in it may be kept (:func:`locate`).

    One listing serves every caller for up to :data:`LISTING_KEPT_S` while no folder
    under ``folder`` that it read has changed (a file added, removed or renamed changes
    its folder's modification time), checked by one ``stat`` a folder: one open of an
    image sets off several callbacks that each list the worklist (Previous and Next, the
    list and its note after the open, the load of saved work), which then read a folder
    of tens of thousands of files once, not three times.
    """
    key = (os.fspath(folder), os.fspath(data_dir))
    with _LISTINGS_LOCK:
        kept = _LISTINGS.get(key)
    if kept is not None:
        at, paths, stamps = kept
        if time.monotonic() - at < LISTING_KEPT_S and _unchanged(stamps):
            return paths, stamps
    at = time.monotonic()
    paths, stamps = _walk(folder, data_dir)
    with _LISTINGS_LOCK:
        if stamps is None:
            _LISTINGS.pop(key, None)
        else:
            _LISTINGS[key] = (at, paths, stamps)
            _LISTINGS.move_to_end(key)
            while len(_LISTINGS) > _LISTINGS_KEPT:
                _LISTINGS.popitem(last=False)
    return paths, stamps


def _walk(folder: Path, data_dir: Path) -> tuple[tuple[str, ...], dict | None]:
    """The folder listed as :func:`_image_paths` gives it, and ``{folder path: its
    stamp}`` of every folder listed, each stamped (:func:`_stamp`) before it was read;
    None in place of the stamps when one changed too lately to tell a later change by
    (:data:`_RACY_NS`), or could not be read."""
    # A worklist that is the data folder or inside it would list every reader's saved
    # masks and kept uploads (the client refuses such settings at start: _config).
    if folder.is_relative_to(data_dir):
        return (), None
    stamps: dict[str, tuple[int, int, int]] | None = {}
    recent = time.time_ns() - _RACY_NS
    found: list[tuple[tuple[str, ...], str]] = []
    # By os.scandir, whose entries know from the directory listing whether each is a
    # link, a folder or a file: only a link's target is looked up (realpath), and only a
    # folder's. Every open, save and poll lists the folder again, and a realpath and a
    # few pathlib objects per file took most of a 5000-file listing's time.
    pending: list[tuple[str, tuple[str, ...]]] = [(os.fspath(folder), ())]
    while pending:
        dirpath, parts = pending.pop()
        try:
            # Stamped before it is read: a change while it is read changes the stamp.
            stamp = _stamp(dirpath)
            with os.scandir(dirpath) as listing:
                items = list(listing)
        except OSError:
            stamps = None  # a folder that cannot be read now may be readable next time
            continue  # unreadable or gone since: as os.walk, passed over
        if stamps is not None and stamp[0] > recent:
            stamps = None  # changed just now: a change to come may keep the same time
        elif stamps is not None:
            stamps[dirpath] = stamp
        for item in items:
            name = item.name
            if name.startswith("."):
                continue  # hidden files and folders
            try:
                if item.is_dir(follow_symlinks=False):
                    # Not entered when a link (never followed), nor the data folder.
                    if Path(os.path.realpath(item.path)) != data_dir:
                        pending.append((item.path, (*parts, name)))
                    continue
                if not _is_image_name(name):
                    continue
                if item.is_symlink():
                    real = Path(os.path.realpath(item.path))
                    if (not real.is_relative_to(folder) or not real.is_file()
                            or real.is_relative_to(data_dir)):
                        # a link out of the folder, a broken one, one to a saved mask
                        continue
                elif not item.is_file(follow_symlinks=False):
                    continue  # a pipe named x.png
            except OSError:
                continue
            # Under a folder whose path has no link (none is entered), so it is its own
            # real path: inside the folder, and not in the data folder (never entered).
            relative = (*parts, name)
            found.append((relative, "/".join(relative)))
    found.sort()
    return tuple(relative for _, relative in found), stamps


def locate(
    root: str | os.PathLike,
    wanted: dict[str, str | None],
    *,
    data_dir: str | os.PathLike,
    cache: HashCache | None = None,
) -> dict[str, str]:
    """Where in the worklist each image is now, found by its SHA-256.

    A saved version records the path its image had when it was opened; the file
    may have been renamed or moved since, and its bytes still name the saved
    versions. Each recorded path that still holds its image's bytes is kept
    (a stat and a look-up in the hash cache, for a file that did not change);
    only when some do not is the folder walked, in :func:`list_images`'s order, the
    cache sparing every file hashed before. What a walk found and did not find is
    kept while no folder of the worklist changes (:data:`SEARCH_KEPT_S` at most), so
    an image no file holds is not looked for in every file at each ask.

    The one search of the client for an image's file: the Saved page's *Open* and
    *DICOM* links, the Annotate page's ``?open=…&expect=`` link, the export and the
    SEG and SR routes (:func:`holders`) all find the same file. So every file is looked
    at, past the Annotate page's list (:data:`MAX_ENTRIES`) and over the upload limit
    (a file saved when the limit was higher: the routes read it; the Annotate page,
    asked to open it, says it is too large) alike.

    Parameters
    ----------
    root : str or os.PathLike
        The worklist folder.
    wanted : dict
        ``{sha256: recorded relative path or None}`` of the images looked for.
    data_dir : str or os.PathLike
        The data folder, whose files are no worklist entries.
    cache : HashCache, optional
        Where file hashes are remembered; the process's by default.

    Returns
    -------
    dict
        ``{sha256: relative path}`` of the images found; an image no file holds is
        left out (its recorded path may still exist, holding other bytes). The walk
        stops once every image is found, so each is the first file in the listing's
        order that holds it.

    Raises
    ------
    ValueError
        If ``root`` is not an existing folder.
    """
    folder = _folder(root)
    cache = _CACHE if cache is None else cache
    found: dict[str, str] = {}
    for sha, relative in wanted.items():
        if not relative:
            continue
        try:
            resolve_entry(folder, relative, data_dir=data_dir)
            # The path the listing hashes it by, so the cache answers.
            if cache.sha256(folder / relative) == sha:
                found[sha] = relative
        except (OSError, ValueError):
            continue  # gone, renamed, unreadable or never a worklist path
    missing = set(wanted) - set(found)
    if not missing:
        return found
    data = Path(os.path.realpath(data_dir))
    known = _searched(folder, data, missing, cache)
    if known is not None:
        return found | known
    paths, stamps = _image_paths(folder, data)
    walked: dict[str, str] = {}
    for relative in paths:
        try:
            sha = cache.sha256(folder / relative)
        except OSError:
            continue  # removed since the walk, or unreadable: the listing logs it
        if sha in missing:
            walked[sha] = relative  # the first in the listing's order
            missing.discard(sha)
            if not missing:
                break
    if stamps is not None:
        _remember(folder, data, stamps, walked, missing)
    return found | walked


#: How long, at most, what a walk of :func:`locate` found (and did not find) is believed
#: while no folder of the worklist has changed (s). A file added, removed or renamed
#: changes its folder's time, so it is looked at by the next walk; a file rewritten in
#: place (the same name, the folder's time unchanged) to hold an image looked for is
#: found once this has passed.
SEARCH_KEPT_S = 300.0


@dataclass
class _Search:
    """What walks of one worklist folder found, while its folders keep ``stamps``."""

    at: float  # time.monotonic() of the first walk
    stamps: dict
    found: dict[str, str]  # {sha256: relative path}, the first file that holds it
    absent: set[str]  # SHA-256 that no file held


_SEARCHES: OrderedDict[tuple[str, str], _Search] = OrderedDict()


def _searched(folder: Path, data_dir: Path, shas: set[str],
              cache: HashCache) -> dict[str, str] | None:
    """``{sha256: relative path}`` of ``shas`` as the last walks of ``folder`` found them,
    when they tell of every one and no folder of it changed since; else None (walk).

    An image no file held is not looked for again (every Saved page render asks for the
    uploads whose copy was not kept, which no file holds: a walk of the whole folder
    each, one stat a file, and reads again past the hash cache's size); an image found
    is, where it was found, by a stat and the hash cache.
    """
    key = (os.fspath(folder), os.fspath(data_dir))
    with _LISTINGS_LOCK:  # read whole, as another thread's walk may add to it
        search = _SEARCHES.get(key)
        if search is None or time.monotonic() - search.at >= SEARCH_KEPT_S:
            return None
        if not shas <= search.absent | search.found.keys():
            return None
        known = {sha: search.found[sha] for sha in shas if sha in search.found}
        stamps = search.stamps
    if not _unchanged(stamps):
        return None
    for sha, relative in known.items():
        try:
            if cache.sha256(folder / relative) != sha:
                return None  # rewritten in place since
        except OSError:
            return None
    return known


def _remember(folder: Path, data_dir: Path, stamps: dict, found: dict[str, str],
              absent: set[str]) -> None:
    """Keep what a walk of the folder, listed with ``stamps``, found and did not find,
    with what earlier walks of it as it is found."""
    key = (os.fspath(folder), os.fspath(data_dir))
    now = time.monotonic()
    with _LISTINGS_LOCK:
        search = _SEARCHES.get(key)
        if (search is None or search.stamps != stamps
                or now - search.at >= SEARCH_KEPT_S):
            search = _SEARCHES[key] = _Search(now, stamps, {}, set())
        search.found.update(found)
        search.absent |= absent
        search.absent -= set(found)
        _SEARCHES.move_to_end(key)
        while len(_SEARCHES) > _LISTINGS_KEPT:
            _SEARCHES.popitem(last=False)


def holders(
    root: str | os.PathLike,
    shas: Iterable[str],
    *,
    data_dir: str | os.PathLike,
    cache: HashCache | None = None,
) -> dict[str, str]:
    """The worklist files that hold the bytes of ``shas``, found by hash in the whole folder:
    :func:`locate` without recorded paths.

    Where an upload whose copy was not kept (saved before copies were kept, or pruned)
    is read back from: the export and the SEG and SR routes read it there
    (``_export._Finder``), and the Saved page links those routes for what they can read,
    so both ask this one function.

    Parameters
    ----------
    root : str or os.PathLike
        The worklist folder.
    shas : iterable of str
        The SHA-256 (hex) of the images looked for.
    data_dir : str or os.PathLike
        The data folder, whose files are no worklist entries.
    cache : HashCache, optional
        Where file hashes are remembered; the process's by default.

    Returns
    -------
    dict
        ``{sha256: relative path}`` of the images found, each the first file in the
        listing's order that holds it.

    Raises
    ------
    ValueError
        If ``root`` is not an existing folder.
    """
    return locate(root, dict.fromkeys(shas), data_dir=data_dir, cache=cache)


def locate_now(config, wanted: dict[str, str | None], *, context: str) -> dict[str, str]:
    """:func:`locate` in the client's worklist, ``{}`` when the folder cannot be walked.

    Parameters
    ----------
    config : annotation_client._config.Config
        Gives the worklist folder and the data folder.
    wanted : dict
        ``{sha256: recorded relative path or None}``, as :func:`locate` takes it.
    context : str
        Who asks, for the log line of a failed walk.

    Returns
    -------
    dict
        ``{sha256: relative path}`` of the images found; ``{}`` with no worklist, or
        when it cannot be read (an unmounted share), so that the callers fall back on
        the recorded paths rather than fail.
    """
    if config.worklist_dir is None or not any(wanted.values()):
        return {}
    try:
        return locate(config.worklist_dir, wanted, data_dir=config.data_dir)
    except (OSError, ValueError) as exc:
        logger.warning("%s: worklist images not located: %s", context, exc)
        return {}


def _path_ref(relative: str) -> str:
    """How the log names a worklist entry: ``path#`` and the first 12 hex digits of the
    SHA-256 of its path relative to the worklist folder (UTF-8), never the path itself.
    ``printf '%s' 'sub/scan.png' | sha256sum`` finds which one it is."""
    try:
        raw = relative.encode("utf-8", "surrogateescape")  # the name's own bytes
    except UnicodeEncodeError:  # not a name os.walk gave
        raw = relative.encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(raw).hexdigest()
    return f"path#{digest[:12]}"


def resolve_entry(
    root: str | os.PathLike, relative: str, *, data_dir: str | os.PathLike | None = None
) -> Path:
    """The file of the worklist entry ``relative``, refusing any path out of ``root``.

    Parameters
    ----------
    root : str or os.PathLike
        The worklist folder.
    relative : str
        An entry's path relative to ``root``, ``/``-separated, as
        :func:`list_images` gives it.
    data_dir : str or os.PathLike, optional
        The data folder: a file in it (a saved mask, a kept upload) is no worklist
        entry, wherever the two folders lie.

    Returns
    -------
    pathlib.Path
        The file, symbolic links resolved; always inside ``root``, never in ``data_dir``.

    Raises
    ------
    ValueError
        If ``relative`` is empty, absolute, has a ``..`` part, names a hidden
        file or folder or a file that is not an image by its ending, or leads out
        of ``root`` through a symbolic link; if ``root`` is not a folder.
    FileNotFoundError
        If there is no such file (any longer).
    """
    folder = _folder(root)
    if not isinstance(relative, str):
        raise TypeError("relative must be a str")
    if not relative.strip() or "\x00" in relative:
        raise ValueError("relative must be a non-empty path")
    windows = PureWindowsPath(relative)
    if PurePosixPath(relative).is_absolute() or windows.drive or windows.root:
        raise ValueError(f"relative must be inside the worklist folder, not absolute: {relative!r}")
    parts = PurePosixPath(relative).parts
    if ".." in parts or "\\" in relative:
        raise ValueError(f"relative must stay inside the worklist folder: {relative!r}")
    if any(part.startswith(".") for part in parts) or not _is_image_name(parts[-1]):
        raise ValueError(f"relative is not an image of the worklist: {relative!r}")
    try:
        # Not strict: where a path leads is checked before whether the file exists,
        # so a link out of the folder tells nothing of what is (not) out there.
        target = folder.joinpath(*parts).resolve(strict=False)
    except (RuntimeError, OSError) as exc:  # a symbolic link loop
        raise ValueError(f"relative {relative!r} cannot be resolved ({exc})") from None
    if not target.is_relative_to(folder):
        raise ValueError(f"relative {relative!r} leads out of the worklist folder")
    if data_dir is not None and target.is_relative_to(os.path.realpath(data_dir)):
        raise ValueError(f"relative {relative!r} is in the data folder, not the worklist")
    if not target.exists():
        raise FileNotFoundError(f"no worklist file {relative!r}")
    if not target.is_file():
        raise ValueError(f"relative {relative!r} is not a file")
    return target


def entry_sha256(
    root: str | os.PathLike,
    relative: str,
    *,
    data_dir: str | os.PathLike | None = None,
    cache: HashCache | None = None,
) -> str:
    """The SHA-256 (hex) of the worklist entry ``relative``, as :func:`list_images`
    hashes it: the cache answers for a file listed and not changed since.

    Raises
    ------
    ValueError, FileNotFoundError
        As :func:`resolve_entry`.
    OSError
        If the file cannot be read.
    """
    folder = _folder(root)
    resolve_entry(folder, relative, data_dir=data_dir)
    # The path the listing hashes it by, so the cache answers.
    return (_CACHE if cache is None else cache).sha256(folder / relative)


def read_entry(
    root: str | os.PathLike,
    relative: str,
    *,
    max_bytes: int | None = None,
    data_dir: str | os.PathLike | None = None,
) -> bytes:
    """The bytes of the worklist entry ``relative`` (see :func:`resolve_entry`).

    Parameters
    ----------
    root : str or os.PathLike
        The worklist folder.
    relative : str
        The entry's relative path.
    max_bytes : int, optional
        The upload limit: a larger file is refused from its size, before it is read.
    data_dir : str or os.PathLike, optional
        The data folder, whose files are refused (see :func:`resolve_entry`).

    Raises
    ------
    ImageDecodeError
        If the file is over ``max_bytes``, with the message an upload that large
        gets (it is a ``ValueError``).
    ValueError, FileNotFoundError
        As :func:`resolve_entry`.
    """
    path = resolve_entry(root, relative, data_dir=data_dir)
    check_size(path.stat().st_size, PurePosixPath(relative).name, max_bytes)
    return path.read_bytes()


def next_unannotated(
    entries: Sequence[WorklistEntry],
    current: str | None = None,
    skip: Collection[str] = (),
) -> WorklistEntry | None:
    """The first entry after ``current`` that has no saved version and can be opened.

    Parameters
    ----------
    entries : sequence of WorklistEntry
        The listing, in order.
    current : str, optional
        The relative path of the open image; when it is None or not listed, the
        search starts at the top.
    skip : collection of str, optional
        Paths passed over as well (entries another page has claimed: see
        :mod:`annotation_client._claims`).

    Returns
    -------
    WorklistEntry or None
        Searching on from ``current`` to the end, then from the top back to it;
        None when every other entry is annotated, too large or skipped.
    """
    return next((e for e in unannotated_order(entries, current) if e.path not in skip), None)


def unannotated_order(
    entries: Sequence[WorklistEntry], current: str | None = None
) -> list[WorklistEntry]:
    """Every entry :func:`next_unannotated` may give, in the order it looks at them:
    those without a saved version that can be opened, from after ``current`` to the
    end, then from the top, ``current`` left out."""
    if current is not None and not isinstance(current, str):
        raise TypeError("current must be a str or None")
    paths = [e.path for e in entries]
    start = paths.index(current) + 1 if current in paths else 0
    return [
        entry
        for entry in list(entries[start:]) + list(entries[:start])
        if entry.path != current and not entry.annotated and not entry.too_large
    ]


def unannotated_walk(
    listing: Worklist,
    store: AnnotationStore,
    current: str | None = None,
    *,
    max_bytes: int | None = None,
    cache: HashCache | None = None,
    annotator: str | None = None,
) -> Iterator[WorklistEntry]:
    """:func:`unannotated_order` over the whole folder, the files past the listing's
    limit (``listing.unlisted``) included.

    The listed entries are taken as listed. A file past the limit is looked at (a
    stat, its hash from the cache once read, its saved versions) only when the walk
    reaches it, so a caller that stops at the first it wants reads little; and the
    listing being sorted, the files past the limit come after the listed ones.

    Parameters
    ----------
    listing : Worklist
        A listing of :func:`list_images`.
    store, max_bytes, cache, annotator
        As :func:`list_images` was given them for ``listing``.
    current : str, optional
        The relative path of the open image, listed or past the limit; the walk
        starts after it and comes round to it (left out), else starts at the top.

    Yields
    ------
    WorklistEntry
        Each file with no saved version that can be opened, in that order.
    """
    if current is not None and not isinstance(current, str):
        raise TypeError("current must be a str or None")
    cache = _CACHE if cache is None else cache
    listed = {entry.path: entry for entry in listing.entries}
    paths = list(listed) + list(listing.unlisted)
    start = paths.index(current) + 1 if current in listed or current in set(
        listing.unlisted) else 0
    for relative in paths[start:] + paths[:start]:
        if relative == current:
            continue
        entry = listed.get(relative) or _entry(listing.root, relative, store, max_bytes,
                                               cache, annotator)
        if entry is not None and not entry.annotated and not entry.too_large:
            yield entry


def search_unlisted(listing: Worklist, text: str | None,
                    limit: int = SEARCH_LIMIT) -> list[str]:
    """The files past the listing's limit (``listing.unlisted``) that a search of the
    worklist's dropdown for ``text`` finds, in list order, at most ``limit``.

    The dropdown holds the listed entries only, and searches them in the browser; the
    files past its limit are found here, by path, so that one can be picked by typing
    part of its name. A path is found when it holds every word of ``text``, in any case,
    as the dropdown's own search finds an option. Nothing is read or hashed.

    Parameters
    ----------
    listing : Worklist
        A listing of :func:`list_images`.
    text : str or None
        What the reader typed; None or blank finds nothing.
    limit : int, optional
        Most paths given.

    Returns
    -------
    list of str
        Relative paths, ``/``-separated.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError("limit must be a positive int")
    words = text.lower().split() if isinstance(text, str) else []
    if not words:
        return []
    found = (p for p in listing.unlisted if all(w in p.lower() for w in words))
    return list(itertools.islice(found, limit))


def position(entries: Sequence[WorklistEntry], current: str | None) -> int | None:
    """The 1-based place of the entry ``current`` in the listing, None when not listed."""
    for number, entry in enumerate(entries, start=1):
        if entry.path == current:
            return number
    return None


def neighbour(
    entries: Sequence[WorklistEntry],
    current: str | None,
    step: int,
    unlisted: Sequence[str] = (),
    opens: Callable[[str], bool] | None = None,
) -> str | None:
    """The path before or after ``current`` in the folder's order (any status), None past
    either end; from no entry (None), Next gives the first and Previous the last.

    The folder's order is the listing's, then the files past its limit (``unlisted``), so
    that from a file opened past the limit (by Open next not annotated, or found by a
    search) Previous and Next go on through the folder as they do through the list, and
    Next from the last listed entry goes on past it. Entries too large to open are passed
    over, and so are the files of ``unlisted`` that ``opens`` refuses (asked of those
    stepped over only, as they are not read for the listing). A ``current`` that is no
    longer there (its file moved or deleted) is stepped from the place it would have:
    the listing is sorted folder by folder (:func:`list_images`), so its place is exact.

    Parameters
    ----------
    entries : sequence of WorklistEntry
        The listing, in order.
    current : str or None
        The relative path of the open image, listed, past the limit, or gone.
    step : int
        1 for Next, -1 for Previous.
    unlisted : sequence of str, optional
        The relative paths past the listing's limit (:attr:`Worklist.unlisted`), in order.
    opens : callable, optional
        ``opens(relative) -> bool``: whether a file of ``unlisted`` can be opened (within
        the upload limit); every one by default.

    Returns
    -------
    str or None
    """
    if step not in (1, -1):
        raise ValueError("step must be 1 or -1")
    listed = len(entries)
    total = listed + len(unlisted)

    def path(index: int) -> str:
        return entries[index].path if index < listed else unlisted[index - listed]

    def openable(index: int) -> bool:
        if index < listed:
            return not entries[index].too_large
        return opens is None or opens(unlisted[index - listed])

    if current is None:
        after, before = 0, total - 1
    else:
        # Not the top of the list for a file no longer there: a reader going through it
        # in order, whose open file a share's sync renamed, was sent back to case 1.
        key = PurePosixPath(current).parts
        place = bisect.bisect_left(entries, key, key=lambda e: _parts(e.path))
        if place == listed:  # after every listed entry: among those past the limit
            place += bisect.bisect_left(unlisted, key, key=_parts)
        there = place < total and path(place) == current
        after, before = place + 1 if there else place, place - 1
    indices = range(after, total) if step > 0 else range(before, -1, -1)
    return next((path(i) for i in indices if openable(i)), None)


def _parts(relative: str) -> tuple[str, ...]:
    """A listed path's key in the listing's order (the names of its folders and file)."""
    return tuple(relative.split("/"))
