"""Refuse a JPEG of far more scans than any encoder writes, before Pillow decodes it.

libjpeg decodes every scan of a progressive JPEG over the whole image, however few
bytes the scan holds: a scan that refines nothing is under 100 bytes, and each one
cost about 2 ms on a 4096x4096 image, so a 2 MB file of 20,000 scans held a worker
48 s and a 64 MB one (the body limit) would hold it for about 20 minutes, past the
worker timeout. An encoder writes 6 (grey) to 10 (colour) scans for a progressive
JPEG, a hand-made scan script a few dozen, a sequential JPEG 1 to 4.

A DICOM's first frame coded by one of the JPEG (ISO 10918) transfer syntaxes is
decoded by the same libjpeg, and is walked the same way (:func:`dicom_jpeg_scan_problem`).

The walk follows the file's markers to its end-of-image (EOI), where libjpeg stops,
and skips each scan's entropy-coded data by a regular expression; it gives up at
:data:`MAX_JPEG_MARKERS` markers, so it costs at most about 0.1 s of Python.
"""

from __future__ import annotations

import io
import re

#: Most scans read; 500 of them cost about 1.5 s on the largest image accepted.
MAX_JPEG_SCANS = 500
#: Most markers walked (the PNG reader's limit on chunks): an encoder writes a few dozen.
MAX_JPEG_MARKERS = 100_000

# The next marker as libjpeg finds it: stray bytes and 0xFF fill bytes before it skipped,
# and 0xFF 0x00 outside a scan skipped as stray bytes.
_NEXT_MARKER = re.compile(rb"\xff+([^\x00\xff])")
# A marker inside entropy-coded data: 0xFF followed by neither a stuffed 0x00 nor a
# restart marker (RST0-RST7), which a scan may hold one of every few blocks.
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_SOS, _EOI = 0xDA, 0xD9
# TEM, RST0-RST7, SOI: markers without a length.
_STANDALONE = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})
#: The transfer syntaxes of JPEG (ISO 10918) codestreams: baseline, extended, lossless
#: and lossless SV1. Not JPEG-LS, whose scan data holds 0xFF bytes followed by 0x00-0x7F.
_JPEG_SYNTAXES = frozenset({
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
})


def dicom_jpeg_scan_problem(data: bytes) -> str | None:
    """:func:`jpeg_scan_problem` of the first frame of a DICOM coded as JPEG, or None.

    Parameters
    ----------
    data : bytes
        The whole DICOM file. Any other transfer syntax, and a file or an encapsulation
        that pydicom cannot read, give None: the reader judges them.
    """
    import pydicom
    from pydicom.encaps import generate_frames
    from pydicom.filereader import _read_file_meta_info, read_preamble

    try:
        # The file meta first: it is never deflated, and a deflated data set is inflated
        # by the reader alone, within its limit (dcmread would inflate it whole).
        fp = io.BytesIO(data)
        read_preamble(fp, True)
        if str(_read_file_meta_info(fp).get("TransferSyntaxUID", "")) not in _JPEG_SYNTAXES:
            return None
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        first = next(generate_frames(ds.PixelData, number_of_frames=max(frames, 1)))
    except Exception:  # the reader says what is wrong with the file
        return None
    problem = jpeg_scan_problem(first)
    return None if problem is None else f"its first frame (a JPEG) {problem.removeprefix('it ')}"


def jpeg_scan_problem(data: bytes) -> str | None:
    """Why the JPEG ``data`` is refused before decoding (too many scans or markers), or None.

    Parameters
    ----------
    data : bytes
        The whole file, starting with the SOI marker.

    Returns
    -------
    str or None
        Words that follow "could not decode the JPEG image: "; None for any other file,
        including a malformed one, which Pillow judges.
    """
    position, scans = 2, 0
    for _ in range(MAX_JPEG_MARKERS):
        found = _NEXT_MARKER.search(data, position)
        if found is None:
            return None
        marker, position = found[1][0], found.end()
        if marker == _EOI:
            return None
        if marker in _STANDALONE:
            continue
        length = int.from_bytes(data[position : position + 2], "big")
        if length < 2:
            return None
        position += length
        if marker != _SOS:
            continue
        scans += 1
        if scans > MAX_JPEG_SCANS:
            return (f"it has more than {MAX_JPEG_SCANS} scans, far more than any "
                    "encoder writes (a progressive JPEG has about 10), and each is "
                    "decoded over the whole image")
        end = _SCAN_END.search(data, position)
        if end is None:
            return None
        position = end.start()
    return (f"it has more than {MAX_JPEG_MARKERS} markers, far more than any encoder "
            "writes (a few dozen)")
