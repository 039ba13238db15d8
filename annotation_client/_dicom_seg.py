"""The outline as a DICOM Segmentation object, for an image that was opened from a DICOM.

A PACS or a DICOM viewer does not read SVG or a PNG mask; it reads a Segmentation
(SEG, PS3.3 A.51) that names the image it outlines by its SOP Instance UID and
carries the patient and study it belongs to, so that it files itself beside the image.
:func:`dicom_seg` writes one with highdicom: one binary segment, "Lesion"
(SNOMED CT: category *Morphologically abnormal structure*, type *Lesion*, anatomic
region *Breast*), the mask as the outline on screen gives it, and the annotator as the
content creator.

The segment's algorithm type says how the outline was made: ``SEMIAUTOMATIC`` when it
started from the model's outline (the caller says so: the model outlined the image and
the final outline overlaps that outline), with the model's name and version, ``MANUAL``
otherwise. Its UIDs are derived from what it holds (the image, the mask, the label, the
annotator, the model), so the same outline sent twice to a PACS is one instance, not
two; every SEG of one image is in one series. Text is written in UTF-8 (``ISO_IR
192``), whatever the image's own character set.

Only single-frame images are written: the outline is drawn on a multi-frame file's
first frame, and a cine loop without a frame of reference gives a SEG no plain way to
say which frame that is.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import uuid

import numpy as np

from vectorizer._dicomfile import with_preamble

#: Patient and study attributes a SEG must carry (type 2: present, may be empty) that an
#: ultrasound file written by a research tool or anonymised may lack.
_TYPE2_FROM_SOURCE = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
    "StudyTime", "StudyID", "ReferringPhysicianName", "AccessionNumber",
)
#: The series the SEG starts (PS3.3 C.7.3.1: any number; high, to sort after the scanner's).
SERIES_NUMBER = 9901
#: The ``Manufacturer`` and ``ManufacturerModelName`` the SEG names.
MANUFACTURER = "SonoTrace"
MODEL_NAME = "SonoTrace annotation client"
#: ``ContentLabel`` (CS, at most 16 upper-case characters).
CONTENT_LABEL = "LESION"

# highdicom logs each SEG it builds at INFO, with the patient's study and image UIDs: not
# for the client's log.
logging.getLogger("highdicom").setLevel(logging.WARNING)


class SegUnavailable(ValueError):
    """The file cannot be given a Segmentation: the message says why, for the reader."""


def dicom_seg(
    source: bytes,
    mask: np.ndarray,
    *,
    label: str | None = None,
    annotator: str | None = None,
    model: tuple[str, str] | None = None,
    notes: list | None = None,
) -> bytes:
    """A DICOM Segmentation of ``mask`` over the DICOM file ``source``.

    Parameters
    ----------
    source : bytes
        The DICOM file the outline was drawn on, as opened (Part 10, with or without the
        preamble).
    mask : numpy.ndarray
        ``(rows, cols)`` bool, the outline's pixels: row 0 at the top, column 0 at the
        left, the file's own pixel grid (``Rows`` x ``Columns``). An empty mask is
        written as an empty segment (the reader found no lesion).
    label : str or None
        The reader's final label (``normal``, ``benign``, ``malignant``), put into the
        content description.
    annotator : str or None
        Who outlined it: the content creator's name.
    model : (str, str) or None
        ``(name, version)`` of the model whose outline the reader started from; None when
        the reader drew it (``MANUAL``).
    notes : list, optional
        Given one sentence (no final full stop) for each patient or study value of
        ``source`` the SEG leaves empty, as highdicom refuses it
        (:func:`fit_type2_values`).

    Returns
    -------
    bytes
        The SEG as a DICOM Part 10 file (explicit VR little endian).

    Raises
    ------
    SegUnavailable
        ``source`` is no readable DICOM, has several frames, or lacks the UIDs a SEG
        must refer to; or ``mask`` is not the file's size.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    # Here, not at the top: _app imports _api, which imports the export, which imports this.
    from ._app import package_version

    ds = read_source(source, "DICOM SEG", notes)
    rows, cols = int(ds.Rows), int(ds.Columns)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (rows, cols):
        raise SegUnavailable(
            f"the outline is {mask.shape[1]}x{mask.shape[0]} pixels but the DICOM image "
            f"is {cols}x{rows}")
    if "SliceThickness" not in ds:
        # highdicom copies the image's pixel spacing (and position) into the SEG's pixel
        # measures, which must then give a slice thickness, which a 2-D ultrasound frame
        # has not: such a SEG is one highdicom itself cannot read back. Without them the
        # SEG refers to its image, on the same pixel grid, which is all a viewer needs.
        for keyword in ("PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient"):
            if keyword in ds:
                delattr(ds, keyword)
    if model is None:
        algorithm = {"algorithm_type": hd.seg.SegmentAlgorithmTypeValues.MANUAL}
    else:
        algorithm = {
            "algorithm_type": hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
            "algorithm_identification": hd.AlgorithmIdentificationSequence(
                name=str(model[0])[:64], version=str(model[1])[:64],
                family=codes.cid7162.ArtificialIntelligence),
        }
    segment = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="Lesion",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Lesion,
        anatomic_regions=[codes.SCT.Breast],
        **algorithm,
    )
    description = "Lesion outline" + (f", final label {label}" if label else "")
    creator = _person_name(annotator)
    image_uid = str(ds.SOPInstanceUID)
    content = [image_uid, hashlib.sha256(np.packbits(mask).tobytes()).hexdigest(),
               str(mask.shape), label or "", creator or "", repr(model)]
    try:
        seg = hd.seg.Segmentation(
            source_images=[ds],
            pixel_array=mask[np.newaxis],
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=[segment],
            series_instance_uid=_uid(image_uid, "SonoTrace SEG series"),
            series_number=SERIES_NUMBER,
            sop_instance_uid=_uid(*content),
            instance_number=1,
            manufacturer=MANUFACTURER,
            manufacturer_model_name=MODEL_NAME,
            software_versions=package_version(),
            device_serial_number="none",
            series_description="SonoTrace outline",
            content_label=CONTENT_LABEL,
            content_description=description[:64],
            content_creator_name=creator,
            # An empty outline is a finding too (no lesion): its frame is kept.
            omit_empty_frames=False,
        )
    except Exception as exc:  # highdicom's checks of the header raise many types
        raise SegUnavailable(
            f"a DICOM SEG cannot be made for this file, whose header it must copy: "
            f"{header_reason(exc)}") from None
    # highdicom draws the dimension organization's UID at random: derived instead, so
    # that the same outline made twice is the same instance in every element, not two
    # different files under one SOP Instance UID.
    organization = _uid(str(seg.SOPInstanceUID), "dimension organization")
    for item in seg.iterall():
        if item.keyword == "DimensionOrganizationUID":
            item.value = organization
    _say_orientation(seg, ds)
    _pad_with_null(seg)
    # A reader's name in any script, and the image's own text, in one character set.
    seg.SpecificCharacterSet = "ISO_IR 192"
    out = io.BytesIO()
    seg.save_as(out, enforce_file_format=True)
    return out.getvalue()


#: A biped's Patient Orientation value (PS3.3 C.7.6.1.1.1): one letter per direction
#: the axis runs towards (anterior, posterior, right, left, head, foot), most first.
_BIPED_DIRECTION = re.compile(r"^[APRLHF]{1,3}$")


def _say_orientation(seg, ds) -> None:
    """Give ``seg`` the Patient Orientation (0020,0020) of the General Image module when it
    has no plane orientation, as its image ``ds`` says it, else empty.

    The attribute is type 2C, required (present, may be empty) of an image that needs no
    Image Orientation (Patient): a SEG of an ultrasound frame without a frame of reference
    or a slice thickness (see :func:`dicom_seg`), which highdicom writes without it, so
    that a validator (dciodvfy) refused every such SEG. The SEG is on its image's pixel
    grid, so its rows and columns run as the image's do: its two values are copied when
    they are a biped's directions (a breast is a biped's), else left empty (unknown).
    """
    shared = seg.SharedFunctionalGroupsSequence[0]
    frames = seg.get("PerFrameFunctionalGroupsSequence") or []
    if "PlaneOrientationSequence" in shared or any(
            "PlaneOrientationSequence" in frame for frame in frames):
        return
    try:
        values = list(ds.get("PatientOrientation") or [])
        biped = str(ds.get("AnatomicalOrientationType") or "BIPED").strip() == "BIPED"
    except Exception:  # pydicom raises many types for a value it cannot read
        values, biped = [], False
    values = [str(value).strip() for value in values]
    fits = biped and len(values) == 2 and all(_BIPED_DIRECTION.match(v) for v in values)
    seg.PatientOrientation = values if fits else ""


def _pad_with_null(seg) -> None:
    """Make the pixel data's padding byte a null one (PS3.5 8.1.1), in place.

    A BINARY SEG packs its frames' bits one after the other, and an odd number of bytes
    is padded to an even one; highdicom pads with the character "0" (0x30), which sets
    two bits past the mask's last pixel: a reader that counts the set bits of the pixel
    data (a lesion's area) counted two pixels more.
    """
    data = seg.PixelData
    frames = int(seg.get("NumberOfFrames") or 1)
    used = -(-frames * int(seg.Rows) * int(seg.Columns) * int(seg.BitsAllocated) // 8)
    if len(data) > used and any(data[used:]):
        seg.PixelData = data[:used] + bytes(len(data) - used)


def read_source(source: bytes, what: str, notes: list | None = None):
    """The header of the DICOM file ``source`` an outline was drawn on, ready to be the
    source of a derived object (``what``, such as ``"DICOM SEG"``, for the messages):
    its patient and study attributes of type 2 present, empty if the file lacks them,
    and those highdicom checks written as it accepts them (:func:`fit_type2_values`).

    Parameters
    ----------
    source : bytes
        The DICOM file.
    what : str
        What is to be made, for the messages.
    notes : list, optional
        Given one sentence (no final full stop) for each value left empty.

    Raises
    ------
    SegUnavailable
        ``source`` is no readable DICOM, has several frames, or lacks the UIDs a derived
        object must refer to (:func:`check_header`).
    """
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(with_preamble(source)), stop_before_pixels=True,
                             force=True)
    except Exception:  # pydicom raises many types for a file it cannot read
        raise SegUnavailable(UNREADABLE) from None
    check_header(ds, what)
    for keyword in _TYPE2_FROM_SOURCE:
        if keyword not in ds:
            setattr(ds, keyword, "")
    said = fit_type2_values(ds, what)
    if notes is not None:
        notes.extend(said)
    # Its text was decoded (check_header), in the file's own character set: it is now
    # said to be UTF-8, as the derived object is written.
    ds.SpecificCharacterSet = "ISO_IR 192"
    return ds


#: The type 2 values highdicom checks as it copies them into a SEG or SR (it refuses any
#: other), and what they must be, for the notes.
_CHECKED_TYPE2 = {"PatientSex": "M, F or O", "PatientBirthDate": "a date",
                  "StudyDate": "a date", "StudyTime": "a time"}
_ACR_NEMA_DATE = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})$")
_COLON_TIME = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2}(?:\.\d{1,6})?))?$")


def fit_type2_values(ds, what: str) -> list[str]:
    """Write the type 2 patient and study values highdicom checks as it accepts them,
    in place; leave empty those it cannot accept, and say which.

    highdicom refuses a ``PatientSex`` other than M, F or O and a ``PatientBirthDate``,
    ``StudyDate`` or ``StudyTime`` that is no date or time: a file carrying "U" for an
    unknown sex, an anonymiser's "00000000" or an ACR-NEMA "12:00:00" had no SEG and
    no SR, with a message naming no element. These are type 2 (present, may be empty),
    so the derived object carries such a value empty: a lower-case sex is upper-cased,
    an ACR-NEMA date ("2020.01.02") or time ("12:00:00") written as DICOM writes it,
    and any other value highdicom refuses left empty, with a note.

    Parameters
    ----------
    ds : pydicom.Dataset
        The source's header, its text decoded (:func:`check_header`).
    what : str
        What is to be made (``"DICOM SEG"``), for the notes.

    Returns
    -------
    list of str
        One sentence (no final full stop) for each value left empty, naming its element
        and quoting the value.
    """
    from pydicom.multival import MultiValue
    from pydicom.valuerep import DA, TM

    notes = []
    for keyword, kind in _CHECKED_TYPE2.items():
        try:
            value = ds.get(keyword)
        except Exception:  # pydicom raises many types for a value it cannot read
            value = object()
        if value is None or value == "":
            continue
        # One value as its text (a DA or TM object's is the original); several, none.
        text = None if isinstance(value, (list, MultiValue)) or type(value) is object \
            else str(value).strip()
        if keyword == "PatientSex":
            fitted = text.upper() if text and text.upper() in ("M", "F", "O") else None
        else:
            fitted = _fitted_date_time(text, DA if kind == "a date" else TM)
        if fitted is None:
            shown = repr(str(value) if text is None else text)
            shown = shown if len(shown) <= 42 else shown[:39] + "...'"
            notes.append(f"{keyword} {shown} is not {kind}: left empty in the {what}")
            fitted = ""
        if fitted != value:
            setattr(ds, keyword, fitted)
    return notes


def _fitted_date_time(text: str | None, kind) -> str | None:
    """``text`` as a DICOM date (``kind`` DA) or time (TM) pydicom accepts, or None."""
    if not text or "\\" in text:  # several values: one is needed
        return None
    if kind.__name__ == "DA" and (found := _ACR_NEMA_DATE.match(text)):
        text = "".join(found.groups())
    elif kind.__name__ == "TM" and (found := _COLON_TIME.match(text)):
        text = "".join(part for part in found.groups() if part)
    try:
        kind(text)
    except (TypeError, ValueError, OverflowError):
        return None
    return text


_MISSING_ATTRIBUTE = re.compile(r"object has no attribute '(\w+)'")


def header_reason(exc: BaseException) -> str:
    """Why highdicom refused a header, for the reader: an element it needs and does not
    find is named as one ("the element NumberOfFrames is missing"), not as Python's
    "'FileDataset' object has no attribute ..."; any other message on one line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    found = _MISSING_ATTRIBUTE.search(text)
    if found:
        return f"the element {found.group(1)} is missing"
    return text if len(text) <= 200 else text[:197] + "..."


#: Why a file is refused when pydicom cannot read its header as an image's.
UNREADABLE = "the image is not a DICOM file that can be read"


def check_header(ds, what: str) -> None:
    """Refuse a DICOM header that cannot be the source of a derived object ``what``.

    The one rule of :func:`read_source` (the SEG and SR routes, the export) and of
    :func:`header_refusal` (the Saved page's *DICOM* links), so that the page links no
    file the routes refuse for its header, and says why in the routes' words.

    Parameters
    ----------
    ds : pydicom.Dataset
        The header, read up to the pixel data. Its text is decoded in place.
    what : str
        What is to be made (``"DICOM SEG"``), for the messages.

    Raises
    ------
    SegUnavailable
        Its image size or number of frames cannot be read, it holds several frames, it
        lacks a UID a derived object refers to, one of those UIDs (or its Frame of
        Reference UID) is not a valid UID (PS3.5 9.1: more than 64 characters, a
        component not a number or with a leading zero), or its text cannot be read in
        its character set.
    """
    try:
        int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames") or 1)
    except Exception:  # pydicom raises many types for a value it cannot read
        raise SegUnavailable(UNREADABLE) from None
    if frames > 1:
        raise SegUnavailable(
            f"the DICOM file holds {frames} frames: a {what} is written for single-frame "
            "images only (the outline is on the first frame)")
    missing = [k for k in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID",
                           "SeriesInstanceUID") if not str(ds.get(k) or "").strip()]
    if missing:
        raise SegUnavailable(
            f"the DICOM file has no {', '.join(missing)}: a {what} could not refer to it")
    for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
                    "FrameOfReferenceUID"):
        flaw = _uid_flaw(str(ds.get(keyword) or "").strip())
        if flaw:
            raise SegUnavailable(
                f"the DICOM file's {keyword} {flaw}: a {what} referring to it would be "
                "refused or misfiled by a PACS")
    # Decoded here, in the file's own character set, for the derived object to be written
    # in UTF-8: highdicom refuses a character set whose first value is empty (ASCII),
    # which ISO 2022 files (Japanese ones, "\ISO 2022 IR 87") declare as the standard
    # allows.
    try:
        ds.decode()
    except Exception:  # pydicom raises many types for text it cannot decode
        raise SegUnavailable(f"the DICOM file's text cannot be read in its character set "
                             f"{ds.get('SpecificCharacterSet')!r}") from None


#: A UID (PS3.5 9.1): components of digits separated by dots, none with a leading zero
#: but "0" itself.
_UID = re.compile(r"^(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*$")


def _uid_flaw(value: str) -> str | None:
    """Why ``value`` is not a valid UID, or None when it is one (or is empty: whether one
    is needed is said apart)."""
    if not value:
        return None
    if len(value) > 64:
        return f"is {len(value)} characters long; a UID has at most 64"
    if not _UID.match(value):
        return (f"{value!r} is not a valid UID (numbers without leading zeros, separated by "
                "dots)")
    return None


#: Values longer than this (bytes) are skipped, not read, when :func:`header_refusal`
#: reads a header: a vendor's private block or an embedded icon can be megabytes.
HEADER_DEFER_BYTES = 16 << 10
#: The value representations whose values :meth:`pydicom.Dataset.decode` decodes (and
#: the sequences, whose items it decodes): a deferred value of another is left unread.
_TEXT_VRS = frozenset("AE AS CS DA DS DT IS LO LT PN SH SQ ST TM UC UI UR UT".split())


def header_refusal(path, what: str) -> str | None:
    """Why :func:`read_source` would refuse the DICOM file at ``path``, from its header
    alone; None when its header makes a ``what`` possible.

    The header is read as :func:`read_source` reads it, up to the pixel data, the
    values longer than :data:`HEADER_DEFER_BYTES` that hold no text skipped: a cine
    loop is told however long its header is before ``NumberOfFrames``, at the cost of
    its elements, not of its bytes. Then :func:`check_header` says why not.

    Raises
    ------
    OSError
        The file cannot be opened (a file whose reading fails later is unreadable).
    """
    import pydicom

    with open(path, "rb") as handle:
        head = handle.read(132)
        handle.seek(0)
        # A file whose writer left the preamble out is read as with_preamble reads it,
        # without being read whole.
        stream = (_Preceded(bytes(128), handle) if with_preamble(head) != head
                  else handle)
        try:
            ds = pydicom.dcmread(stream, stop_before_pixels=True, force=True,
                                 defer_size=HEADER_DEFER_BYTES)
            _forget_deferred_binary(ds)
            check_header(ds, what)  # reads what it decodes of the deferred text
        except SegUnavailable as exc:
            return str(exc)
        except Exception:  # pydicom raises many types for a file it cannot read
            return UNREADABLE
    return None


def _forget_deferred_binary(ds) -> None:
    """Drop from ``ds`` the top-level values its reading deferred that hold no text: the
    check decodes every element, and would read them whole for nothing."""
    from pydicom.datadict import dictionary_VR

    for tag in list(ds.keys()):
        element = ds.get_item(tag, keep_deferred=True)
        if getattr(element, "value", True) is not None:
            continue  # read (a deferred value is None until it is)
        vr = element.VR
        if vr in (None, "UN"):  # implicit VR, or unknown: the dictionary's, if any
            try:
                vr = dictionary_VR(tag)
            except KeyError:
                vr = "UN"
        if str(vr) not in _TEXT_VRS:
            del ds[tag]


class _Preceded(io.RawIOBase):
    """A file read as if ``prefix`` preceded it: seekable, nothing copied."""

    def __init__(self, prefix: bytes, handle) -> None:
        super().__init__()
        self._prefix, self._handle, self._position = prefix, handle, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._position
        elif whence == io.SEEK_END:
            offset += len(self._prefix) + self._handle.seek(0, io.SEEK_END)
        self._position = max(offset, 0)
        return self._position

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        if self._position < len(self._prefix):
            chunk = self._prefix[self._position:self._position + len(view)]
            view[:len(chunk)] = chunk
            done = len(chunk)
        if done < len(view):
            self._handle.seek(self._position + done - len(self._prefix))
            done += self._handle.readinto(view[done:]) or 0
        self._position += done
        return done


#: The components of a DICOM person name's component group (family, given, middle,
#: prefix, suffix: PS3.5 6.2), separated by carets.
PN_COMPONENTS = 5


def _person_name(name: str | None) -> str | None:
    """A typed reader's name as a DICOM person name (PN), or None.

    The name is kept whole as the family-name component: a trailing caret says so
    (PS3.5 6.2.1.2; "Dr A" alone reads as a name in an unknown order). The characters
    that separate values and component groups in PN (backslash, equals) become spaces.
    A name typed as PN already ("Smith^Ann", at most 5 components: 4 carets) is kept as
    it is; one of more components is none, so its carets become spaces too, and it is
    kept whole as the family name, each word in the order typed.
    """
    if not name or not name.strip():
        return None
    name = name.replace("\\", " ").replace("=", " ")
    if name.count("^") > PN_COMPONENTS - 1:
        name = name.replace("^", " ")
    name = " ".join(name.split())
    if not name.replace("^", "").strip():
        return None  # carets alone ("^^"): no name in any component
    return (name if "^" in name else name + "^")[:64]



#: The namespace of the name-based UUIDs the SEGs' UIDs are made from.
_UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:sonotrace:dicom-seg")


def _uid(*parts: str):
    """A UID derived from ``parts``: ``2.25.`` and a name-based (version 5) UUID as an
    integer (PS3.5 B.2), so the same for the same content."""
    import highdicom as hd

    return hd.UID(f"2.25.{uuid.uuid5(_UID_NAMESPACE, chr(31).join(parts)).int}")
