"""A JPEG of far more scans than any encoder writes is refused before it is decoded.

libjpeg decodes each scan over the whole image: a 2 MB file of 20,000 empty refinement
scans held a worker 48 s, and one at the body limit would hold it for about 20 minutes.
"""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest
from image_samples import progressive_jpeg
from PIL import Image
from test_errors import IMAGE, assert_json_error

from vectorizer._jpegscans import MAX_JPEG_MARKERS, MAX_JPEG_SCANS, jpeg_scan_problem


def test_a_progressive_jpeg_of_an_encoders_scans_is_read(client):
    data = progressive_jpeg(IMAGE)
    assert jpeg_scan_problem(data) is None
    response = client.post("/predict", data=data, content_type="image/jpeg")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]


def test_a_jpeg_at_the_scan_limit_is_read_and_one_over_it_is_not():
    # The encoder's 6 scans of a grey image, and repeats of the last up to the limit.
    assert progressive_jpeg(IMAGE).count(b"\xff\xda") == 6
    assert jpeg_scan_problem(progressive_jpeg(IMAGE, MAX_JPEG_SCANS - 6)) is None
    assert jpeg_scan_problem(progressive_jpeg(IMAGE, MAX_JPEG_SCANS - 5)) is not None


@pytest.mark.parametrize("endpoint", ["/predict", "/classify"])
def test_a_jpeg_of_thousands_of_scans_is_400_before_it_is_decoded(client, endpoint):
    # 2048x2048: each scan is decoded over 4.2 million pixels, about 0.5 ms.
    pixels = np.full((2048, 2048), 100, np.uint8)
    pixels[:64, :64] = 200
    data = progressive_jpeg(pixels, 20_000)
    start = time.perf_counter()
    response = client.post(endpoint, data=data, content_type="image/jpeg")
    elapsed = time.perf_counter() - start
    message = assert_json_error(response, 400, "could not decode the jpeg image")
    assert f"more than {MAX_JPEG_SCANS} scans" in message
    assert elapsed < 5.0  # about 12 s when decoded
    assert client.post(endpoint, data=progressive_jpeg(IMAGE),
                       content_type="image/jpeg").status_code == 200


def test_a_jpeg_of_more_markers_than_any_encoder_writes_is_400(client):
    data = progressive_jpeg(IMAGE)
    data = data[:2] + b"\xff\xfe\x00\x02" * (MAX_JPEG_MARKERS + 1) + data[2:]
    start = time.perf_counter()
    response = client.post("/predict", data=data, content_type="image/jpeg")
    assert time.perf_counter() - start < 5.0
    message = assert_json_error(response, 400, "could not decode the jpeg image")
    assert f"more than {MAX_JPEG_MARKERS} markers" in message


def test_scans_after_the_end_of_image_are_not_counted():
    # libjpeg stops at the first EOI: what follows (a camera's second picture) is not read.
    data = progressive_jpeg(IMAGE)
    assert jpeg_scan_problem(data + progressive_jpeg(IMAGE, MAX_JPEG_SCANS)) is None


def test_restart_markers_inside_scans_are_not_counted_as_markers():
    # A restart marker after every block: 65,536 of them in one scan of 2048x2048 pixels.
    pixels = (np.random.default_rng(0).random((2048, 2048)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", restart_marker_blocks=1)
    assert len(re.findall(rb"\xff[\xd0-\xd7]", buffer.getvalue())) > MAX_JPEG_MARKERS / 2
    assert jpeg_scan_problem(buffer.getvalue()) is None


def test_a_dicom_whose_jpeg_frame_has_thousands_of_scans_is_400_before_it_is_decoded(client):
    pixels = np.full((2048, 2048), 100, np.uint8)
    pixels[:64, :64] = 200
    data = jpeg_dicom(progressive_jpeg(pixels, 20_000), 2048, 2048)
    start = time.perf_counter()
    response = client.post("/predict", data=data, content_type="application/dicom")
    assert time.perf_counter() - start < 5.0  # about 12 s when decoded
    message = assert_json_error(response, 400)
    assert message.startswith(f"could not decode the DICOM image: its first frame (a JPEG) "
                              f"has more than {MAX_JPEG_SCANS} scans")
    ok = jpeg_dicom(progressive_jpeg(IMAGE), IMAGE.shape[1], IMAGE.shape[0])
    assert client.post("/predict", data=ok, content_type="application/dicom").status_code == 200


def jpeg_dicom(frame: bytes, width: int, height: int) -> bytes:
    """A grey DICOM of one frame, the JPEG ``frame``, under JPEG Baseline's syntax."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit, SecondaryCaptureImageStorage, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.Rows, ds.Columns, ds.SamplesPerPixel = height, width, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
