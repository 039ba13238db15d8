"""Load BUSI-layout folders and split them by duplicate group.

Layout (the published ``Dataset_BUSI_with_GT``)::

    <root>/<class>/<class> (N).png          image
    <root>/<class>/<class> (N)_mask.png     lesion mask
    <root>/<class>/<class> (N)_mask_1.png   further lesion masks, merged with OR

An optional ``<root>/index.csv`` (columns ``class,name,duplicate_group``)
gives near-duplicate groups; without it every image is its own group.

``<root>`` may also be the folder *around* the published one (as unpacked from
its archive, ``<root>/Dataset_BUSI_with_GT/<class>/...``), and the class folders
may differ in case (``Benign``): a folder of held-out images is scored as it
comes, not rearranged by hand first.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ._cli import progress_bar
from ._preprocess import mask_from_array, to_grey

log = logging.getLogger(__name__)

CLASS_NAMES = ("normal", "benign", "malignant")
_EXIF_ORIENTATION = 0x0112
# BUSI's ``x_mask`` and ``x_mask_1``, and what a copy may have made of them by hand or
# by an operating system: ``x mask``, ``x-mask``, ``x_mask1``, ``x_mask (2)``. Any of
# them taken as an image would be scored as one, and ``x`` would lose its mask.
_MASK_RE = re.compile(r"(?P<stem>.+?)[ _-]mask(?:[ _-]?(?:\d+|\(\d+\)))?", re.IGNORECASE)


@dataclass
class Sample:
    """One BUSI image with its mask files.

    ``label`` indexes :data:`CLASS_NAMES`.
    """

    name: str
    label: int
    image_path: Path
    mask_paths: list[Path] = field(default_factory=list)
    group: str = ""
    listed_masks: int | None = None  # mask files index.csv's ``masks`` column counts

    @property
    def class_name(self) -> str:
        return CLASS_NAMES[self.label]


class UnreadableFileError(ValueError):
    """An image or mask file that cannot be decoded (corrupt, truncated, not an image)."""


def _open_decoded(path):
    """``PIL.Image.open`` and ``load``, upright, with failures as UnreadableFileError.

    Pillow reports a corrupt or truncated file as OSError, some broken headers
    as SyntaxError, and an image past its pixel limit as DecompressionBombError;
    callers that score a folder need one exception that names the file.
    """
    try:
        data = Path(path).read_bytes()
        im = Image.open(io.BytesIO(data))
        im.load()
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise UnreadableFileError(f"{path}: cannot read as an image ({exc})") from exc
    if getattr(im, "default_image", False):
        # As the server refuses it: browsers draw only the frames, never this image.
        raise UnreadableFileError(f"{path}: an animated PNG whose default image is not part "
                                  "of its animation")
    return _upright(im, data)


def _upright(im, data):
    """Turned upright by its EXIF orientation, as the model server and a browser show it.

    A mask drawn on the upright view of a JPEG (or a PNG with an eXIf chunk) then
    matches its image. PNG and JPEG follow the browser's rule
    (:func:`vectorizer.browser_orientation`: no XMP, nothing after the image data);
    other formats, which browsers do not show, follow Pillow's reading of their tags.
    EXIF that cannot be read leaves the pixels as stored.
    """
    from vectorizer import browser_orientation, turn_upright

    if im.format in ("PNG", "JPEG", "MPO"):
        return turn_upright(im, browser_orientation(data))
    try:
        orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # Pillow raises many types on malformed EXIF
        return im
    if orientation == 1:
        return im
    with im:
        return ImageOps.exif_transpose(im)


def _wide_colour_samples(path, im, *, alpha=False):
    """A 16-bit colour PNG's upright samples, ``(H, W, C)`` uint16; None for other files.

    Pillow keeps only their high byte (a mask of 0/1 reads as empty); they are read as
    the server reads them (:func:`vectorizer.read_wide_colour`), with alpha when
    ``alpha``, else its colour samples only.
    """
    from vectorizer import browser_orientation, read_wide_colour, wide_colour_type

    if im.format != "PNG":
        return None
    data = Path(path).read_bytes()
    if wide_colour_type(data) is None:
        return None
    try:
        values = read_wide_colour(data, browser_orientation(data))
    except ValueError as exc:
        raise UnreadableFileError(f"{path}: cannot read as an image ({exc})") from None
    if alpha:
        return values
    return values[..., :1] if values.shape[2] == 2 else values[..., :3]


def read_image(path) -> np.ndarray:
    """Read an image file as ``(H, W)`` uint8 grey (grey, RGB, RGBA, palette, 16-bit).

    A 16-bit image becomes 8-bit by ``vectorizer.sixteen_bit_to_uint8``, the model
    server's rule, so an image is scored as it is served.

    Raises
    ------
    UnreadableFileError
        The file is missing, corrupt or not an image.
    """
    from vectorizer import sixteen_bit_to_uint8, wide_grey_to_uint8

    with _open_decoded(path) as im:
        samples = _wide_colour_samples(path, im)
        if samples is not None:  # the 16-bit rule over all colour samples, as served
            return to_grey(sixteen_bit_to_uint8(samples))
        wide = wide_grey_to_uint8(im)
        # to_grey: the shared preprocessing's checks (at least 8x8) on every path in.
        return to_grey(wide if wide is not None else np.asarray(im.convert("L")))


def read_image_as_served(path) -> np.ndarray:
    """Read an image file as the model server reads an upload: ``(H, W)`` uint8 grey.

    PNG and JPEG go through :func:`vectorizer.read_image_file`, so a file gets
    the answer the product gives it: a PNG's damaged ancillary chunk is dropped
    (the picture is read, as a browser shows it), while damaged image data and a
    blank or nearly blank frame are refused, where the server answers 400. Other
    formats the server does not take (BMP, TIFF) are read by :func:`read_image`
    under the same blank rules. No pixel limit is set but the decoder's largest
    side: the server's limit is a setting of the deployment.

    Raises
    ------
    UnreadableFileError
        The file cannot be read, or the server would refuse it; the message says why.
    """
    from vectorizer import ImageFileError, UnsupportedImage, read_image_file
    from vectorizer._imagerules import refuse_unusable

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UnreadableFileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    try:
        return to_grey(read_image_file(data, max_pixels=None, formats=("png", "jpeg")).pixels)
    except UnsupportedImage:
        grey = read_image(path)
    except ImageFileError as exc:
        raise UnreadableFileError(f"{path}: {exc}") from None
    try:
        refuse_unusable(grey)
    except ImageFileError as exc:
        raise UnreadableFileError(f"{path}: {exc}") from None
    return grey


def read_mask(paths, shape, notes=None) -> np.ndarray:
    """Merge mask files with OR into an ``(H, W)`` bool array of ``shape``.

    Masks come as 1-bit, 8-bit grey, RGB or RGBA; anything above 0 in the colour
    channels is lesion. In an RGBA mask with transparent pixels, only visible ones
    count, and when every visible pixel is black, any non-zero alpha is lesion (a
    mask drawn in transparency alone). A JPEG mask, whose compression rings
    around the edge, and a lossless mask of more than a few grey levels (one
    that went through JPEG once) are lesion above half their own maximum, which
    is reported for the latter (see :func:`_binarize`). A mask of another size
    than the image is brought to its size (:func:`_fitted`), which is reported:
    BUSI's masks match their images exactly, so a mismatch usually means the
    files are paired wrongly.

    Parameters
    ----------
    paths : list of path
    shape : (int, int)
        ``(H, W)`` of the image.
    notes : list of str, optional
        Gets one line per mask that was fitted to its image's size or thresholded at
        half its maximum.

    Raises
    ------
    UnreadableFileError
        A mask file is missing, corrupt or not an image.
    """
    out = np.zeros(shape, dtype=bool)
    for p in paths:
        lossy = Path(p).suffix.lower() in (".jpg", ".jpeg")
        with _open_decoded(p) as im:
            wide = _wide_colour_samples(p, im, alpha=True)
            if wide is not None and wide.shape[2] in (2, 4):
                m = mask_from_array(wide, 0)
            elif wide is not None:
                m = _binarize(wide.max(axis=2), lossy, Path(p).name, notes)
            elif im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                m = mask_from_array(np.asarray(im.convert("RGBA")), 127 if lossy else 0)
            else:
                # F and I: converting to 8 bits first would round 0.4 to 0.
                values = np.asarray(im if im.mode in ("F", "I") else im.convert("L"))
                m = _binarize(values, lossy, Path(p).name, notes)
        if m.shape != tuple(shape):
            note = (f"mask {Path(p).name} is {m.shape[1]}x{m.shape[0]} but its image "
                    f"{shape[1]}x{shape[0]}: ")
            m, how = _fitted(m, shape)
            log.warning("%s%s", note, how)
            if notes is not None:
                notes.append(note + how)
        out |= m
    return out


#: A mask at most this many pixels wider or taller than its image (an export's edge
#: row or column) is cropped or padded, not resized.
_EDGE_SLACK = 2


def _fitted(mask: np.ndarray, shape) -> tuple[np.ndarray, str]:
    """``mask`` ``(h, w)`` bool brought to ``shape`` ``(H, W)``, and how.

    A pixel or two more or fewer is taken to be an edge row or column that one tool
    kept and another did not, so the mask is cropped or padded with background at
    the bottom and right, its pixels staying where they are: resizing would move half
    the outline by a pixel. A larger difference is resized (nearest neighbour).
    """
    h, w = shape
    if abs(mask.shape[0] - h) <= _EDGE_SLACK and abs(mask.shape[1] - w) <= _EDGE_SLACK:
        out = np.zeros(shape, dtype=bool)
        hh, ww = min(h, mask.shape[0]), min(w, mask.shape[1])
        out[:hh, :ww] = mask[:hh, :ww]
        return out, "cropped or padded at the bottom and right to it"
    resized = Image.fromarray(mask.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)
    return np.asarray(resized) > 0, "resized to it"


#: More grey levels than this in a lossless mask are not labels but a picture of a
#: mask (saved once as JPEG, or anti-aliased): it is thresholded at half its maximum.
_MAX_MASK_LEVELS = 16


def _binarize(values, lossy, name, notes=None) -> np.ndarray:
    """A mask's grey values ``(H, W)`` as lesion (True) and background.

    A two-valued mask (0 and 1, 0 and 255, 0 and 65535) or a label map with a few
    values is lesion wherever it is above 0, whatever value marks it. A JPEG
    mask, or a lossless one with many grey levels (a JPEG's ringing saved back
    as PNG), is lesion above half its own maximum: above 0, every ringing pixel
    around the edge would count, and a fixed 127 would empty a mask stored as
    0 and 1. The latter is noted, as it is not what BUSI ships.
    """
    top = values.max(initial=0)
    if top <= 0:
        return np.zeros(values.shape, dtype=bool)
    if lossy:
        return values > top / 2
    levels = np.unique(values).size
    if levels <= _MAX_MASK_LEVELS:
        return values > 0
    note = (f"mask {name} has {levels} grey levels, not a few: lesion where it is above "
            f"half its maximum ({top / 2:g})")
    log.warning("%s", note)
    if notes is not None:
        notes.append(note)
    return values > top / 2


def load_samples(root, problems=None) -> list[Sample]:
    """List the samples of a BUSI-layout folder.

    Hidden files (macOS's ``._name`` companions among them) are not images.

    Parameters
    ----------
    root : str or Path
        Folder holding ``normal/``, ``benign/`` and ``malignant/`` (any may be
        missing).
    problems : list of str, optional
        Gets one line per file that is left out: a mask without its image, or
        an image whose name another image of the class already has (``x.png``
        and ``x.jpg``: which one the mask belongs to is not guessed); and one
        line for the images ``index.csv`` lists that the folder lacks (a copy
        that lost files would otherwise be scored on fewer images, silently).

    Returns
    -------
    list of Sample
        Sorted by class then name.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"root: {root} is not a directory")
    top = root
    root, folders = _dataset_folder(root)
    # A folder beside the class folders (normal_cases/, a typo) would otherwise take a
    # whole class out of the score without a word.
    stray = _not_class_folders(root, folders)
    for note in stray:
        log.warning("%s", note)
    if problems is not None:
        problems.extend(stray)
    index_csv = root / "index.csv"
    index = _read_index(index_csv if index_csv.is_file() else top / "index.csv")
    folded_index: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for key in index:
        folded_index.setdefault((key[0], key[1].casefold()), []).append(key)
    listed: set[tuple[str, str]] = set()
    samples = []
    for label, cls in enumerate(CLASS_NAMES):
        folder = folders.get(cls)
        if folder is None:
            continue
        images: dict[str, list[Path]] = {}
        masks: dict[str, list[Path]] = {}
        notes = []
        for p in sorted(folder.iterdir()):
            if _system_file(p.name):
                continue
            unread = _why_not_read(p)
            if unread:
                notes.append(f"{cls}/{p.name}: {unread}: left out")
                continue
            # One name typed on two systems may differ in Unicode form (é as one
            # character or as e and an accent): the image and its mask still pair.
            stem = unicodedata.normalize("NFC", p.stem)
            m = _MASK_RE.fullmatch(stem)
            if m:
                masks.setdefault(m.group("stem"), []).append(p)
            else:
                images.setdefault(stem, []).append(p)
        for paths in images.values():
            if len(paths) > 1:
                notes.append(f"{cls}/: {', '.join(q.name for q in paths)} share one name: "
                             "left out, as their masks cannot be told apart")
        _pair_ignoring_case(masks, images)
        for stem, paths in masks.items():
            if stem not in images:
                notes.append(f"{cls}/: {', '.join(q.name for q in paths)} without an image "
                             f"{stem}.*: left out")
        for note in notes:
            log.warning("%s", note)
        if problems is not None:
            problems.extend(notes)
        for stem, paths in images.items():
            if len(paths) > 1:
                continue
            name = paths[0].stem
            key = _index_key(index, folded_index, cls, stem)
            if key is not None:
                listed.add(key)
            group, listed_masks = index[key] if key is not None else (f"{cls}/{name}", None)
            samples.append(Sample(name, label, paths[0], sorted(masks.get(stem, [])),
                                  str(group), listed_masks))
    if not samples:
        hint = (" (" + "; ".join(stray) + ")") if stray else ""
        here = root.resolve()  # "." names no folder
        if not folders and _class_of_folder(here.name):
            # --data DIR/benign: the images are there, one level too deep to be read.
            hint = (f": {here.name}/ is itself a class folder; give the folder that holds it, "
                    f"{here.parent}")
        raise ValueError(f"root: no images found under {root}/{{normal,benign,malignant}}"
                         f"{hint}")
    missing = [f"{cls}/{name}" for cls, name in index if (cls, name) not in listed]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more"
                                           if len(missing) > 10 else "")
        note = (f"index.csv lists {len(missing)} image(s) the folder does not hold "
                f"(or holds unpaired): {shown}")
        log.warning("%s", note)
        if problems is not None:
            problems.append(note)
    return samples


def _index_key(index: dict, folded: dict, cls: str, stem: str) -> tuple[str, str] | None:
    """The key of ``index`` that names the image ``cls/stem`` (``stem`` NFC), or None.

    The index's names are NFC too; one that differs from the file's name only in
    case names it when no other row does, as masks pair with images
    (:func:`_pair_ignoring_case`): a copy that changed a file's case keeps its
    duplicate group and mask count, and is not reported as missing the image.
    """
    if (cls, stem) in index:
        return (cls, stem)
    matches = folded.get((cls, stem.casefold()), [])
    return matches[0] if len(matches) == 1 else None


def _pair_ignoring_case(masks: dict, images: dict) -> None:
    """Give masks whose stem names no image the image their stem names in another case.

    A folder copied through a system that changed one file's case
    (``Benign (1).png`` beside ``benign (1)_mask.png``) keeps its pairs. Only a
    unique match is taken; ``masks`` is re-keyed in place.
    """
    by_fold: dict[str, list[str]] = {}
    for stem in images:
        by_fold.setdefault(stem.casefold(), []).append(stem)
    for stem in [k for k in masks if k not in images]:
        found = by_fold.get(stem.casefold(), [])
        if len(found) == 1:
            log.info("mask %s paired with image %s (names differ in case)", stem, found[0])
            masks.setdefault(found[0], []).extend(masks.pop(stem))


#: Image files read (by Pillow): BUSI's PNG, and what a copy of it may have become.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: Files an operating system leaves in a folder: not worth a line each.
_SYSTEM_FILES = ("thumbs.db", "desktop.ini")


def _system_file(name: str) -> bool:
    """Whether a class folder's file ``name`` is a system's, not the data set's.

    Hidden files (macOS's ``._x.png`` among them), :data:`_SYSTEM_FILES`, and the
    ``x.png:Zone.Identifier`` a Windows copy into WSL leaves beside every file
    downloaded from the internet: one line each would bury the table's other lines.
    """
    lower = name.lower()
    return name.startswith(".") or lower in _SYSTEM_FILES or lower.endswith(":zone.identifier")


def _why_not_read(path: Path) -> str | None:
    """Why a file in a class folder is not scored, or None when it is read."""
    if path.is_symlink() and not path.exists():
        return "a link to nothing"
    if path.is_dir():
        return "a folder (only the class folder's own files are read)"
    if not path.is_file():
        return "not a regular file"
    if _archive(path.name):
        return "an archive: unpack it to score its images"
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return (f"not a file type scored here (only {', '.join(IMAGE_SUFFIXES)}; "
                "convert it to PNG to score it)")
    return None


def _class_of_folder(name: str) -> str | None:
    """The class a folder's name gives, matched in any case and without the white space
    around it (``Benign `` as a copy left it), or None."""
    cls = name.strip().lower()
    return cls if cls in CLASS_NAMES else None


def _class_folders(folder: Path) -> dict[str, Path]:
    """The class folders directly under ``folder``, by class name, matched in any case.

    A name with white space around it (``Benign ``) names its class too.

    Raises
    ------
    ValueError
        If two folders name one class (``benign`` and ``Benign``): which one
        holds the images to score is not for the loader to guess.
    """
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        cls = _class_of_folder(p.name)
        if cls is None or not p.is_dir():
            continue
        if p.name != cls:
            log.info("folder %r read as class %s", p.name, cls)
        if cls in found:
            raise ValueError(
                f"root: both {found[cls].name}/ and {p.name}/ under {folder} hold class {cls!r}"
            )
        found[cls] = p
    return found


#: The folders the annotation client's export writes beside the class folders (its DICOM
#: SEG and SR files, ``annotation_client._export.DICOM_FILES``): no images of the set.
EXPORT_DICOM_FOLDERS = ("dicom_seg", "dicom_sr")


def _not_class_folders(root: Path, folders: dict[str, Path]) -> list[str]:
    """One line per entry of ``root`` that may hold images but is not read.

    A folder that is not a class folder (``normal_cases/``, ``benign-old/``), an image
    lying beside the class folders, an archive (``malignant.zip``, never unpacked), a
    file named as a class, and a link to nothing. Hidden entries, a Mac
    archive's ``__MACOSX``, the annotation export's DICOM folders
    (:data:`EXPORT_DICOM_FOLDERS`) and other files (``index.csv``, a README) are not
    images.
    """
    read = set(folders.values())
    lines = []
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return lines
    for p in entries:
        if p.name.startswith(".") or p.name == "__MACOSX" or p in read:
            continue
        if p.is_dir() and p.name in EXPORT_DICOM_FOLDERS:
            continue  # an export's own: listed as left out, they read as images lost
        if p.is_symlink() and not p.exists():
            lines.append(f"{p.name}: a link to nothing: left out")
        elif p.is_dir():
            lines.append(f"{p.name}/: not a class folder (only normal/, benign/ and "
                         "malignant/ are read, in any case): its images are left out")
        elif p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            lines.append(f"{p.name}: an image outside the class folders: left out")
        elif _archive(p.name):
            lines.append(f"{p.name}: an archive: unpack it to score its images: left out")
        elif _class_of_folder(p.name):
            lines.append(f"{p.name}: named as a class but not a folder: left out")
    return lines


#: Endings of archives, whose images a copy may have left packed (``malignant.zip``).
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar")


def _archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _dataset_folder(root: Path) -> tuple[Path, dict[str, Path]]:
    """The folder holding the class folders: ``root`` or one folder up to two levels down.

    An archive unpacks to a wrapping folder (``Dataset_BUSI_with_GT``), sometimes
    inside another (``test/Dataset_BUSI_with_GT``) or beside other folders
    (``__MACOSX``, ``results``). When ``root`` holds no class folder, the one
    folder within two levels that does is read, and named in the log.

    Raises
    ------
    ValueError
        If several folders below ``root`` hold class folders: which one is the
        data set to score is not for the loader to guess, so they are named.
    """
    folders = _class_folders(root)
    if folders:
        return root, folders
    found = []
    for sub in _plain_subfolders(root):
        inner = _class_folders(sub)
        if inner:
            found.append((sub, inner))
            continue
        found.extend((deeper, _class_folders(deeper)) for deeper in _plain_subfolders(sub)
                     if _class_folders(deeper))
    if len(found) > 1:
        names = ", ".join(str(f.relative_to(root)) for f, _ in found)
        raise ValueError(f"root: {root} holds no class folders itself, and several folders "
                         f"below it do ({names}): give the one to read")
    if found:
        log.info("reading the class folders of %s", found[0][0])
        return found[0]
    return root, {}


def _plain_subfolders(folder: Path) -> list[Path]:
    """Sub-folders that may hold images: not hidden, not a Mac archive's resource forks."""
    try:
        return sorted(p for p in folder.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and p.name != "__MACOSX")
    except OSError:  # a folder that cannot be listed holds nothing to read
        return []


def _read_index(index_csv: Path) -> dict[tuple[str, str], tuple[str, int | None]]:
    """``(duplicate group, mask count or None)`` by ``(class, name)`` from ``index.csv``.

    The groups only matter for splitting; scoring a folder needs none. So an
    ``index.csv`` of another shape (no ``class`` and ``name`` columns, in any case, not UTF-8
    text), as another data set may ship, is logged and left aside: every image is
    then its own group, rather than the folder being refused. A ``masks`` value
    that is not a whole number is read as unknown.
    """
    if not index_csv.is_file():
        return {}
    try:
        with open(index_csv, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            # Headers as a spreadsheet or a hand may write them: "Class", " name".
            reader.fieldnames = [f.strip().lower() for f in reader.fieldnames or ()]
            if not {"class", "name"} <= set(reader.fieldnames):
                log.warning("%s has no class and name columns: duplicate groups not read",
                            index_csv)
                return {}
            # A short row leaves its missing cells None, and a spreadsheet saves its
            # empty rows as ",,,": neither names an image, nor one the folder lacks.
            return {
                (row["class"].strip().lower(), _index_name(row["name"])): (
                    row.get("duplicate_group")
                    or f"{row['class'].strip().lower()}/{_index_name(row['name'])}",
                    _whole_number(row.get("masks")),
                )
                for row in reader
                if _filled(row.get("class")) and _filled(_index_name(row.get("name") or ""))
            }
    except (UnicodeDecodeError, csv.Error, OSError) as exc:
        # OSError: an index the user may not read. The index is optional, the images not.
        log.warning("%s cannot be read (%s): duplicate groups not read", index_csv, exc)
        return {}


def _filled(text: str | None) -> bool:
    """Whether an index cell holds anything but white space (None: a short row's)."""
    return isinstance(text, str) and bool(text.strip())


def _index_name(text: str) -> str:
    """An index's image name as the folder's file stem: spaces around and a suffix off.

    BUSI's index names ``benign (1)``; an index written by another tool may say
    ``benign (1).png``, or give its path (``benign/benign (1).png``, ``benign\\...``),
    which name the same file: no file name holds a slash (nor, on Windows, a backslash).
    """
    name = unicodedata.normalize("NFC", text.strip())
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    suffix = Path(name).suffix
    return name[: -len(suffix)] if suffix.lower() in IMAGE_SUFFIXES else name


def _whole_number(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdecimal() else None  # isdigit: "²", which int() refuses


def split_by_group(samples, val_fraction=0.2, seed=0):
    """Split samples into train and validation with whole duplicate groups on one side.

    Groups are shuffled with ``seed`` and assigned per class, so each class
    keeps about ``val_fraction`` of its images in validation.

    Returns
    -------
    (list of Sample, list of Sample)
        Train and validation.
    """
    if not 0 < val_fraction < 1:
        raise ValueError("val_fraction: must be in (0, 1)")
    rng = np.random.default_rng(seed)
    by_group: dict[str, list[Sample]] = {}
    for s in samples:
        by_group.setdefault(s.group, []).append(s)
    # A group's class is its majority class; BUSI groups are single-class.
    keys = sorted(by_group)
    rng.shuffle(keys)
    val_groups = set()
    for label in range(len(CLASS_NAMES)):
        total = sum(1 for s in samples if s.label == label)
        taken = 0
        for k in keys:
            members = by_group[k]
            if np.bincount([m.label for m in members], minlength=3).argmax() != label:
                continue
            if taken >= val_fraction * total:
                break
            val_groups.add(k)
            taken += len(members)
    train = [s for s in samples if s.group not in val_groups]
    val = [s for s in samples if s.group in val_groups]
    return train, val


def run_split(samples, val_fraction, split_seed, keep=None, limit=None, seed=0):
    """The train and validation samples of a training run, as every training script draws them.

    Parameters
    ----------
    val_fraction : float
        0 refits on every sample (no validation); otherwise :func:`split_by_group`.
    split_seed : int
        Seed of the split; runs that share it (and ``val_fraction``) hold out
        the same duplicate groups.
    keep : callable, optional
        Filter applied after splitting (the lesion classifier keeps lesions),
        so the groups held out do not depend on it.
    limit : int, optional
        Keep only ``limit`` training samples (and a quarter as many for
        validation, at least 2), drawn with ``seed``: smoke tests.

    Returns
    -------
    (list of Sample, list of Sample)
    """
    if val_fraction == 0:
        # Refit: the recipe was validated on a split; the shipped model sees every image.
        train, val = list(samples), []
    else:
        train, val = split_by_group(samples, val_fraction, split_seed)
    if keep is not None:
        train, val = [s for s in train if keep(s)], [s for s in val if keep(s)]
    if limit:
        rng = np.random.default_rng(seed)
        train = list(rng.permutation(np.array(train, dtype=object))[:limit])
        val = list(rng.permutation(np.array(val, dtype=object))[: max(2, limit // 4)])
    return train, val


def split_record(train, val) -> dict:
    """``{"train": [...], "val": [...]}`` of ``"class/name"`` keys, as runs store in split.json."""
    return {"train": [f"{s.class_name}/{s.name}" for s in train],
            "val": [f"{s.class_name}/{s.name}" for s in val]}


def load_arrays(samples, size, progress=False):
    """Load samples resized for the network.

    Returns
    -------
    images : numpy.ndarray
        ``(N, size, size, 1)`` float32 in [0, 1].
    masks : numpy.ndarray
        ``(N, size, size, 1)`` float32 in {0, 1}.
    labels : numpy.ndarray
        ``(N,)`` int32 indices into :data:`CLASS_NAMES`.
    """
    from ._preprocess import resize_grey, resize_mask

    it = progress_bar(samples, "loading") if progress else samples
    images, masks = [], []
    for s in it:
        grey = read_image(s.image_path)
        images.append(resize_grey(grey, size))
        masks.append(resize_mask(read_mask(s.mask_paths, grey.shape), size))
    labels = np.array([s.label for s in samples], dtype=np.int32)
    return (
        np.stack(images)[..., None].astype(np.float32),
        np.stack(masks)[..., None].astype(np.float32),
        labels,
    )


def training_samples(root):
    """:func:`load_samples` for a training script's ``--data``: its errors are user errors.

    Raises
    ------
    models._cli.UsageError
        ``--data`` is not a folder, or holds no images in BUSI layout.
    """
    from ._cli import UsageError

    try:
        return load_samples(root)
    except ValueError as exc:
        raise UsageError(f"--data {root}: {str(exc).removeprefix('root: ')}") from None


def has_usable_mask(sample) -> bool:
    """Whether ``sample`` can train a lesion target: a normal image, or a lesion with a mask."""
    return sample.class_name == "normal" or bool(sample.mask_paths)


def check_lesion_masks(samples, root):
    """Refuse a ``--data`` folder with no outlined lesion; warn about lesions without a mask.

    A benign or malignant image whose mask files are gone would train as "no
    lesion anywhere": such images are left out (see :func:`has_usable_mask`),
    and said so.

    Raises
    ------
    models._cli.UsageError
        No benign or malignant image, or none with a mask.
    """
    from ._cli import UsageError

    lesions = [s for s in samples if s.class_name != "normal"]
    unmasked = [s for s in lesions if not s.mask_paths]
    if not lesions:
        raise UsageError(f"--data {root}: no benign or malignant image; the models learn "
                         "lesions, so they need some")
    if len(unmasked) == len(lesions):
        raise UsageError(f"--data {root}: none of its {len(lesions)} benign/malignant images "
                         "has a mask (NAME_mask.png beside it)")
    if unmasked:
        log.warning("%d of %d benign/malignant images in %s have no mask; they are left out "
                    "(e.g. %s)", len(unmasked), len(lesions), root, unmasked[0].image_path.name)
    missing = [c for c in CLASS_NAMES if not any(s.class_name == c for s in samples)]
    if missing:
        log.warning("%s has no %s images: the classifier never sees that class",
                    root, " or ".join(missing))
