"""The outline's measurements as a DICOM Structured Report, for an image opened from a DICOM.

The SEG (:mod:`._dicom_seg`) gives a PACS the lesion's pixels; a report needs its size.
:func:`dicom_sr` writes, with highdicom, a Comprehensive 3D SR holding an *Imaging
Measurement Report* (TID 1500, the form radiology reporting and DICOM viewers read
measurements in): one *planar ROI measurement group* (TID 1410) a region of the outline,
each with

- the region's outline as a closed polyline on the image (``SCOORD`` ``POLYLINE``, in
  the image's pixel coordinates: PS3.3 C.18.6.1.1, the top-left corner of the top-left
  pixel at (0, 0), as the vectorizer's);
- its long axis, the perpendicular axis and its area in millimetres (SNOMED CT *Long
  axis*, *Perpendicular axis*, *Area*), as the measurements panel gives them (TID 1410
  allows no coordinates on a group's measurements: the SVG and the page draw the
  chords);
- the finding (SNOMED CT *Lesion*, site *Breast*), a tracking identifier ("Lesion 1" ...,
  largest first, as the measurements panel lists them), and the reader's final label as
  a qualitative evaluation (*Impression*: *Normal*, *Benign* or *Malignant*);
- who made the region: the model's name and version as the group's algorithm (TID 4019)
  when the region is the model's outline as the reader was offered it, untouched; else
  the reader (named) as the group's observer (TID 1002's *Person Observer Name*, a HAS
  OBS CONTEXT of the group), and no algorithm: a region drawn or edited by hand is the
  reader's measurement, never the AI's (see :meth:`_Offered.made`). The report's
  observer is the annotator (the SonoTrace device when none is named).

A lesion whose outlines enclose apart areas (a self-crossing ring's loops, which the
saved mask fills both) is one group per area ("Lesion 1, region 1 of 2", ...), each with
its own loop and the measurements of its own pixels (see :func:`_lesions`).

The reader's BI-RADS descriptors (shape, orientation, margin, echo pattern, posterior
features) and BI-RADS assessment category are qualitative evaluations of one image-level
group (TID 1501, tracking identifier "Image", referring to the image), beside the lesions'
groups: the record holds one set of them per image, not per lesion (see
:func:`_birads_evaluations`). They are the reader's reading, so that group names no
algorithm, whatever drew the outline (and names the reader as its observer). Their codes
are DICOM's (PS3.16 CID 6005, 6007, 6152, 6154, 6155 and their concept names), as
pydicom's code dictionaries hold them; the lexicon's terms DICOM has no code for (the
*heterogeneous* echo pattern, the assessment categories) are of a private coding scheme,
:data:`PRIVATE_SCHEME`, which the SR declares in its Coding Scheme Identification
Sequence.

An empty outline with a label (a normal reading) is reported too: one image-level group
(TID 1501) holding the impression alone (and the BI-RADS evaluations, if any). A
measurement needs a unit, so an outlined image whose pixel size is unknown (neither its
file nor the reader gave one) has no SR: :class:`SrUnavailable` says so, as it does for
an empty outline with neither a label nor a BI-RADS descriptor (nothing to report) and
for what the SEG refuses (a multi-frame file, one without the UIDs a report must refer
to). UIDs are derived from the content, as the SEG's are: the same report sent twice is
one instance.
"""

from __future__ import annotations

import hashlib
import io
import json
import math

import numpy as np

import vectorizer

from . import _shapes
from ._dicom_seg import (
    MANUFACTURER,
    SegUnavailable,
    _person_name,
    _uid,
    header_reason,
    read_source,
)
from ._lesions import find_lesions
from ._record import ASSESSMENT_MEANINGS, clean_descriptors, margin_conflict

#: The series the SR starts (PS3.3 C.7.3.1), after the SEG's 9901.
SERIES_NUMBER = 9902
#: Vertices per ring of the outline written as a polyline: a viewer draws it over the
#: image at the scanner's resolution, where the editor's 32 leave visible corners; the
#: SEG holds the exact pixels.
OUTLINE_VERTICES = 96
#: The most lesions a report lists: an outline in more pieces is noise, and each costs a
#: measurement group (1,200 pieces took 24 s).
MAX_LESIONS = 100
#: The reader's labels as SNOMED CT qualifier values.
_LABEL_CODES = {"normal": "Normal", "benign": "Benign", "malignant": "Malignant"}
#: The coding scheme of the BI-RADS terms no DICOM or SNOMED CT code in pydicom's
#: dictionaries stands for: a private one (DICOM's convention: a designator that starts
#: with "99" is local), declared in the SR's Coding Scheme Identification Sequence. Never
#: claimed as SCT or DCM.
PRIVATE_SCHEME = "99SONOTRACE"
#: Its name and who answers for it, as that declaration gives them.
PRIVATE_SCHEME_NAME = "SonoTrace BI-RADS ultrasound terms"
PRIVATE_SCHEME_OWNER = "SonoTrace"
#: Each BI-RADS descriptor of a record (:data:`._record.DESCRIPTOR_OPTIONS` but the
#: assessment) as ``(concept name, {value: code})``: ``(scheme, keyword)`` of a code in
#: pydicom's dictionaries (``codes.<scheme>.<keyword>``), or ``(PRIVATE_SCHEME, value,
#: meaning)``. Values from PS3.16's context groups as pydicom lists them: shape CID 6005,
#: margin CID 6007, orientation CID 6152, echo pattern CID 6154 (its *Complex* is the
#: BI-RADS 4th edition's name of the 5th's *complex cystic and solid*), posterior acoustic
#: features CID 6155; names the concepts of those dictionaries that head them (*Shape*,
#: *Margins*, *Orientation*, *Echo pattern*, *Posterior acoustic features*).
DESCRIPTOR_CODES = {
    "shape": (("SCT", "Shape"), {
        "oval": ("SCT", "OvoidShapeOval"),
        "round": ("SCT", "RoundShape"),
        "irregular": ("SCT", "Irregular"),
    }),
    "orientation": (("DCM", "Orientation"), {
        "parallel": ("DCM", "Parallel"),
        "not parallel": ("DCM", "NotParallel"),
    }),
    "margin": (("DCM", "Margins"), {
        "circumscribed": ("SCT", "CircumscribedLesion"),
        "indistinct": ("SCT", "IndistinctLesion"),
        "angular": ("DCM", "AngularMargins"),
        "microlobulated": ("SCT", "MicrolobulatedLesion"),
        "spiculated": ("SCT", "SpiculatedLesion"),
    }),
    "echo_pattern": (("DCM", "EchoPattern"), {
        "anechoic": ("DCM", "Anechoic"),
        "hyperechoic": ("DCM", "Hyperechoic"),
        "complex cystic and solid": ("DCM", "Complex"),
        "hypoechoic": ("DCM", "Hypoechoic"),
        "isoechoic": ("DCM", "Isoechoic"),
        # CID 6154 has no heterogeneous echo pattern (CID 6151's *Heterogeneous
        # echotexture* is the breast's background tissue, not a mass).
        "heterogeneous": (PRIVATE_SCHEME, "ECHO-HETEROGEN", "Heterogeneous echo pattern"),
    }),
    "posterior_features": (("DCM", "PosteriorAcousticFeatures"), {
        "none": ("DCM", "NoPosteriorAcousticFeatures"),
        "enhancement": ("DCM", "PosteriorEnhancement"),
        "shadowing": ("DCM", "PosteriorShadowing"),
        "combined": ("DCM", "CombinedPosteriorEnhancementAndShadowing"),
    }),
}
#: The BI-RADS assessment's concept name (DCM *Assessment Category*). Its values are
#: private: CID 6027 (Assessment from BI-RADS) is empty in pydicom's dictionaries, and
#: the SNOMED CT *Mammography assessment (Category 0..5)* codes it holds are of
#: mammography, without 4A, 4B, 4C or 6.
ASSESSMENT_NAME = ("DCM", "AssessmentCategory")
ASSESSMENT_CODES = {
    category: (PRIVATE_SCHEME, f"BIRADS-{category}", f"BI-RADS {category}: {meaning}")
    for category, meaning in ASSESSMENT_MEANINGS.items()
}


class SrUnavailable(ValueError):
    """The outline cannot be given a Structured Report: the message says why, for the
    reader."""


class NoPixelSpacing(SrUnavailable):
    """The image's pixel size is not known: the one refusal a reader can lift (by setting
    the spacing), which a saved version's SR answers apart (``no_pixel_spacing``)."""


def dicom_sr(
    source: bytes,
    mask: np.ndarray,
    pixel_spacing,
    *,
    label: str | None = None,
    annotator: str | None = None,
    model: tuple[str, str] | None = None,
    outlines=None,
    descriptors=None,
    notes: list | None = None,
    model_outline: np.ndarray | None = None,
) -> bytes:
    """A DICOM Comprehensive 3D SR of the measurements of ``mask`` over the DICOM ``source``.

    Parameters
    ----------
    source : bytes
        The DICOM file the outline was drawn on, as opened (Part 10, with or without the
        preamble).
    mask : numpy.ndarray
        ``(rows, cols)`` bool, the outline's pixels on the file's own pixel grid (row 0
        at the top, column 0 at the left).
    pixel_spacing : (row_mm, col_mm) or None
        The pixel size the measurements are in: the file's, or the one the reader set.
        None: no SR (:class:`NoPixelSpacing`, an :class:`SrUnavailable`).
    label : str or None
        The reader's final label (``normal``, ``benign``, ``malignant``): each region's
        qualitative evaluation.
    annotator : str or None
        Who outlined it: the observer (the SonoTrace device when None).
    model : (str, str) or None
        ``(name, version)`` of the model whose outline the reader started from: the
        algorithm of the lesions that are its outline (``model_outline``).
    outlines : sequence of str, optional
        The drawn outlines ``mask`` was rasterised from (region paths, ``'M x,y L ...
        Z'``, in the image's pixel coordinates): the pieces one outline covers, or
        outlines that overlap, are one lesion, as the measurements panel counts them,
        and a lesion's polyline is its drawn outline. Without them each 8-connected
        region of ``mask`` is a lesion.
    descriptors : mapping, optional
        The reader's BI-RADS descriptors and assessment (a record's
        ``final.descriptors``, read by :func:`._record.clean_descriptors`): qualitative
        evaluations of the image-level group (see :func:`_birads_evaluations`).
    notes : list, optional
        Given one sentence (no final full stop) for each patient or study value of
        ``source`` the SR leaves empty, as highdicom refuses it
        (:func:`._dicom_seg.fit_type2_values`).
    model_outline : numpy.ndarray, optional
        ``(rows, cols)`` bool, the model's outline as it was offered to the reader (its
        paths rasterised as ``mask`` was): a lesion whose pixels are exactly those of the
        model outline's regions it meets is the model's, and names ``model`` as its
        algorithm; every other lesion (drawn, or edited, by hand) is the reader's. None:
        no lesion is said to be the model's.

    Returns
    -------
    bytes
        The SR as a DICOM Part 10 file (explicit VR little endian).

    Raises
    ------
    SrUnavailable
        No pixel spacing for an outline, an empty outline with neither a label nor a
        BI-RADS descriptor, an outline that is not the file's size, descriptors outside
        the BI-RADS lexicon, or a file the SEG refuses (see :func:`._dicom_seg.dicom_seg`),
        with the reason.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from ._app import package_version

    try:
        ds = read_source(source, "DICOM SR", notes)
    except SegUnavailable as exc:
        raise SrUnavailable(str(exc)) from None
    rows, cols = int(ds.Rows), int(ds.Columns)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (rows, cols):
        raise SrUnavailable(
            f"the outline is {mask.shape[1]}x{mask.shape[0]} pixels but the DICOM image "
            f"is {cols}x{rows}")
    outlined = bool(mask.any())
    birads = check_reportable(outlined, label, pixel_spacing, descriptors)
    try:
        lesions = (_lesions(mask, outlines, tuple(pixel_spacing),
                            model_outline if model is not None else None)
                   if outlined else [])
    except SrUnavailable:
        raise
    except (TypeError, ValueError) as exc:
        raise SrUnavailable(f"the outline cannot be measured: {exc}") from None
    image = hd.sr.SourceImageForRegion(
        referenced_sop_class_uid=str(ds.SOPClassUID),
        referenced_sop_instance_uid=str(ds.SOPInstanceUID))
    algorithm = (hd.sr.AlgorithmIdentification(name=str(model[0])[:64],
                                               version=str(model[1])[:64])
                 if model is not None else None)
    evaluation = []
    if label in _LABEL_CODES:
        evaluation = [hd.sr.QualitativeEvaluation(
            name=codes.DCM.Impression, value=getattr(codes.SCT, _LABEL_CODES[label]))]
    image_uid = str(ds.SOPInstanceUID)
    creator = _person_name(annotator)
    groups = []
    number = 0
    for ring, region, (part, parts), from_model in lesions:
        number += part == 1

        def mm(name, key, unit=codes.UCUM.Millimeter, region=region):
            return hd.sr.Measurement(name=name, value=reported(region[key]), unit=unit)

        # A lesion of one region keeps the identifier (and UID) it always had; the
        # regions of one that encloses several are told apart (see _lesions).
        apart = () if parts == 1 else (str(part),)
        groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(
                uid=_uid(image_uid, "SonoTrace SR lesion", str(number), *apart),
                identifier=f"Lesion {number}"
                + (f", region {part} of {parts}" if apart else "")),
            referenced_region=hd.sr.ImageRegion(
                graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
                graphic_data=ring, source_image=image),
            finding_type=codes.SCT.Lesion,
            finding_sites=[hd.sr.FindingSite(anatomic_location=codes.SCT.Breast)],
            algorithm_id=algorithm if from_model else None,
            measurements=[
                mm(codes.SCT.LongAxis, "max_diameter_mm"),
                mm(codes.SCT.PerpendicularAxis, "perpendicular_diameter_mm"),
                mm(codes.SCT.Area, "area_mm2", codes.UCUM.SquareMillimeter),
            ],
            qualitative_evaluations=evaluation or None,
        ))
        if not from_model:
            _said_by_reader(groups[-1], creator)
    # The image-level group (TID 1501): the impression when no lesion is outlined (a
    # normal reading, reported all the same), and the BI-RADS descriptors and
    # assessment. A record holds one set of those per image, not per lesion, so they
    # are said of the image they were given on, never put in a lesion's group: with two
    # lesions nothing says which one they describe.
    image_level = (evaluation if not groups else []) + [
        hd.sr.QualitativeEvaluation(name=name, value=value) for name, value in birads]
    if image_level:
        groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(
                uid=_uid(image_uid, "SonoTrace SR image"), identifier="Image"),
            qualitative_evaluations=image_level,
            source_images=[hd.sr.SourceImageForMeasurementGroup(
                referenced_sop_class_uid=str(ds.SOPClassUID),
                referenced_sop_instance_uid=image_uid)],
        ))
        _said_by_reader(groups[-1], creator)
    if creator:
        observer = hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                name=creator))
        context = hd.sr.ObservationContext(observer_person_context=observer)
    else:
        observer = hd.sr.ObserverContext(
            observer_type=codes.DCM.Device,
            observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
                uid=_uid("SonoTrace device"), name=MANUFACTURER))
        context = hd.sr.ObservationContext(observer_device_context=observer)
    report = hd.sr.MeasurementReport(
        observation_context=context,
        procedure_reported=hd.sr.CodedConcept(
            value="47079000", scheme_designator="SCT", meaning="Ultrasonography of breast"),
        imaging_measurements=groups,
    )
    content = [image_uid, hashlib.sha256(np.packbits(mask).tobytes()).hexdigest(),
               str(mask.shape), json.dumps([float(v) for v in pixel_spacing or ()]),
               hashlib.sha256(json.dumps([r.tolist() for r, *_ in lesions]).encode()).hexdigest(),
               label or "",
               creator or "", repr(model)]
    if creator or model is not None:
        # Each group says who made it (the algorithm, or the reader as its observer): a
        # report that said the model's of every group is another instance than before.
        content.append("each group names who made it")
        content.append(json.dumps([from_model for *_, from_model in lesions]))
    if birads:
        # Only when there are some: a report without them keeps the UID it always had.
        content.append(json.dumps([(n.value, v.scheme_designator, v.value)
                                   for n, v in birads]))
    if image_level:
        # The image-level group refers to its image since it holds the BI-RADS reading: a
        # normal reading's report, which it changed, is another instance than before.
        content.append("image group refers to its image")
    try:
        sr = hd.sr.Comprehensive3DSR(
            evidence=[ds],
            content=report,
            series_instance_uid=_uid(image_uid, "SonoTrace SR series"),
            series_number=SERIES_NUMBER,
            sop_instance_uid=_uid("SonoTrace SR", *content),
            instance_number=1,
            manufacturer=MANUFACTURER,
            is_complete=True,
            series_description="SonoTrace measurements",
            software_versions=package_version(),
        )
    except Exception as exc:  # highdicom's checks of the header raise many types
        raise SrUnavailable(
            f"a DICOM SR cannot be made for this file, whose header it must copy: "
            f"{header_reason(exc)}") from None
    sr.SpecificCharacterSet = "ISO_IR 192"
    if any(value.scheme_designator == PRIVATE_SCHEME for _, value in birads):
        sr.CodingSchemeIdentificationSequence = [_private_scheme()]
    out = io.BytesIO()
    sr.save_as(out, enforce_file_format=True)
    return out.getvalue()


#: The fewest significant digits a measurement is reported with (see :func:`reported`).
SIGNIFICANT_DIGITS = 4


def reported(value: float) -> float:
    """A measurement in mm or mm² as the report gives it: to the thousandth, or to
    :data:`SIGNIFICANT_DIGITS` significant digits when that is finer.

    Thousandths alone wrote a small region at a fine spacing as nothing: 2 x 2 pixels
    of 0.01 mm, 0.0004 mm², were an area of 0.0, and at 0.03 mm, 0.0036 mm², one of
    0.004. A lesion's usual sizes (1 mm and more) are reported as ever.

    >>> reported(4.22354), reported(0.0004), reported(0.0036)
    (4.224, 0.0004, 0.0036)
    """
    value = float(value)
    if not math.isfinite(value) or value == 0:
        return value
    magnitude = math.floor(math.log10(abs(value)))
    return round(value, max(3, SIGNIFICANT_DIGITS - 1 - magnitude))


def _code(spec):
    """The coded concept of a :data:`DESCRIPTOR_CODES` entry: a code of pydicom's
    dictionaries (``(scheme, keyword)``), or a private one (``(scheme, value, meaning)``)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    if len(spec) == 3:
        return hd.sr.CodedConcept(value=spec[1], scheme_designator=spec[0], meaning=spec[2])
    code = getattr(getattr(codes, spec[0]), spec[1])
    return hd.sr.CodedConcept(value=code.value, scheme_designator=code.scheme_designator,
                              meaning=code.meaning)


def _birads_evaluations(descriptors) -> list[tuple]:
    """``(name, value)`` coded concepts of the BI-RADS descriptors and assessment given,
    in the lexicon's order (the assessment last): none for none, one per margin value.

    A margin both circumscribed and not (possible in a version saved before Save refused
    it, see :func:`._record.margin_conflict`) is left out, the rest reported: a report
    must not send a PACS two opposite findings, and nothing says which one was meant.

    Raises
    ------
    ValueError
        A name or value outside the lexicon (:func:`._record.clean_descriptors`).
    """
    cleaned = clean_descriptors(descriptors)
    evaluations = []
    for name, (concept, values) in DESCRIPTOR_CODES.items():
        given = cleaned[name]
        if name == "margin" and margin_conflict(given):
            continue
        for value in given if isinstance(given, list) else [given] if given else []:
            evaluations.append((_code(concept), _code(values[value])))
    if cleaned["assessment"]:
        evaluations.append((_code(ASSESSMENT_NAME),
                            _code(ASSESSMENT_CODES[cleaned["assessment"]])))
    return evaluations


def _private_scheme():
    """The Coding Scheme Identification Sequence item (SOP Common module) declaring
    :data:`PRIVATE_SCHEME`."""
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodingSchemeDesignator = PRIVATE_SCHEME
    item.CodingSchemeName = PRIVATE_SCHEME_NAME
    item.CodingSchemeResponsibleOrganization = PRIVATE_SCHEME_OWNER
    return item


def check_reportable(outlined: bool, label: str | None, pixel_spacing,
                     descriptors=None) -> list[tuple]:
    """Refuse a report of nothing, of measurements without a unit, or of BI-RADS
    descriptors outside the lexicon; give the BI-RADS evaluations to report.

    The rule :func:`dicom_sr` applies to its outline, and the Saved page to what a
    version's record states (:func:`annotation_client._export.sr_refusal`), so that it
    links no SR the route refuses for it.

    Parameters
    ----------
    outlined : bool
        Whether the outline covers any pixel.
    label : str or None
        The reader's final label.
    pixel_spacing : (row_mm, col_mm) or None
        The pixel size, checked already; None when unknown.
    descriptors : dict, optional
        The reader's BI-RADS descriptors and assessment, as the record keeps them.

    Returns
    -------
    list of tuple
        :func:`_birads_evaluations` of ``descriptors``.

    Raises
    ------
    NoPixelSpacing
        An outline to measure, and no pixel spacing.
    SrUnavailable
        No outline, and no label or BI-RADS descriptor to report; or a descriptor
        outside the lexicon.
    """
    try:
        birads = _birads_evaluations(descriptors)
    except (TypeError, ValueError) as exc:
        raise SrUnavailable(f"its BI-RADS descriptors cannot be reported: {exc}") from None
    if not outlined and label not in _LABEL_CODES and not birads:
        raise SrUnavailable(
            "there is no outline to measure, nor a label or BI-RADS descriptor to report")
    if outlined and pixel_spacing is None:
        raise NoPixelSpacing(
            "the image's pixel size is not known, so its measurements would have no unit: "
            "set the pixel spacing first")
    return birads


def _lesions(mask: np.ndarray, outlines, spacing,
             model_outline: np.ndarray | None = None) -> list[tuple]:
    """The lesions of an outline, largest first, each in the regions it encloses:
    ``(closed polyline (n + 1, 2) float32 (x, y), vectorizer.measure_lesion of its
    pixels, (region, regions), from_model)`` each, a lesion's regions one after the
    other, largest first (``(1, 1)`` for a lesion of one region); ``from_model`` is
    whether the lesion is ``model_outline``'s, untouched (:meth:`_Offered.made`; False
    without one), the same for each of its regions.

    A lesion is an 8-connected region of ``mask``, or several joined by a drawn outline
    (``outlines``: the page's region paths) that covers them all: an outline with a
    neck narrower than a pixel rasterises in pieces, and one drawn over another to widen
    it is the same lesion (:func:`._lesions.find_lesions`, the rule the measurements
    panel and the record follow too). The polyline is the drawn outline's outer ring (the
    outer ring of the union of a lesion's outlines), or without one the region's,
    vectorized.

    A lesion whose outlines enclose apart areas (a self-crossing ring, a bow-tie, fills
    both of its loops; outlines that only touch) is written as those areas: TID 1410
    gives a group one region, so each is a group, its polyline its own loop, measured
    over the pixels of the mask inside it (see :meth:`._lesions.Lesions.regions`), as the
    measurements panel and the record list them.
    """
    found = find_lesions(mask, outlines)
    count = len(found.boxes)
    if count > MAX_LESIONS:
        raise SrUnavailable(
            f"the outline is {count} separate regions: a report lists at most {MAX_LESIONS} "
            "lesions")
    offered = _Offered(model_outline, mask.shape)
    lesions = []
    for head in range(len(found.groups)):
        pixels, box = found.pixels(head)
        parts = found.regions(head, pixels, box)
        if not parts:
            (path, *_) = vectorizer.mask_to_paths(pixels, OUTLINE_VERTICES, turdsize=0)
            parts = [(np.asarray(_shapes.parse_path(path)[0], dtype=np.float32), pixels[box],
                      (box[0].start, box[1].start))]
        from_model = offered.made(pixels, box)
        lesions.append([(np.vstack([ring, ring[:1]]),
                         vectorizer.measure_lesion(inside, pixel_spacing=spacing, origin=origin),
                         from_model)
                        for ring, inside, origin in parts])
    lesions.sort(key=lambda parts: sum(m["area_px"] for _, m, _ in parts), reverse=True)
    return [(ring, measured, (number, len(parts)), from_model)
            for parts in lesions
            for number, (ring, measured, from_model) in enumerate(parts, start=1)]


class _Offered:
    """The model's outline as the reader was offered it, in 8-connected regions, to tell
    the lesions that are it, untouched, from those drawn or edited by hand."""

    def __init__(self, model_outline: np.ndarray | None, shape: tuple[int, int]) -> None:
        from scipy import ndimage

        self.labels = None
        if model_outline is None:
            return
        outline = np.asarray(model_outline, dtype=bool)
        if outline.shape != shape:
            raise ValueError(f"model_outline has shape {outline.shape}, expected {shape}")
        self.labels, _ = ndimage.label(outline, structure=np.ones((3, 3), dtype=bool))
        self.boxes = ndimage.find_objects(self.labels)

    def made(self, pixels: np.ndarray, box: tuple[slice, slice]) -> bool:
        """Whether a lesion's ``pixels`` ((H, W) bool, all inside ``box``) are exactly
        those of the model outline's regions they meet: the model's, untouched. A lesion
        drawn apart meets none; one edited (a vertex moved, a region drawn over it or
        cut from it, two joined) differs from them; one the model outlined in two pieces
        the reader joined is the reader's lesion too."""
        if self.labels is None:
            return False
        met = np.unique(self.labels[box][pixels[box]])
        met = met[met > 0]
        if not met.size:
            return False
        # A region of the model's reaching out of the lesion's box is not all in it.
        if any(self.boxes[k - 1][axis].start < box[axis].start
               or self.boxes[k - 1][axis].stop > box[axis].stop
               for k in met for axis in (0, 1)):
            return False
        return bool(np.array_equal(np.isin(self.labels[box], met), pixels[box]))


def _said_by_reader(group, name: str | None) -> None:
    """Name the reader as the observer of a measurement group, for the group's
    measurements and evaluations are the reader's (a region drawn or edited by hand, or
    the BI-RADS reading): a TID 1002 *Observer Context* of the group's own (a HAS OBS
    CONTEXT of its container: PS3.3 C.17.5 lets any content item restate its context),
    the *Person Observer Name* of TID 1003 alone, as TID 1002 lets it be when the
    observer is a person. Without its *Observer Type* code, which readers of TID 1500
    (highdicom's ``get_qualitative_evaluations``) would take for an evaluation of the
    region. Nothing when no reader is named (a person observer needs a name): the group
    names no algorithm either then."""
    import highdicom as hd

    if not name:
        return
    items = group[0].ContentSequence
    # After the tracking identifiers, the group's other observation context.
    at = next((i for i, item in enumerate(items)
               if item.RelationshipType != "HAS OBS CONTEXT"), len(items))
    for offset, item in enumerate(hd.sr.PersonObserverIdentifyingAttributes(name=name)):
        items.insert(at + offset, item)
