"""models.evaluate reads each image as the model server reads an upload (audit 603, F3, F4).

A held-out image gets the answer the product gives it: refused where the server answers
400, read where the server reads it.
"""

from __future__ import annotations

import io
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from test_evaluate import DarkIsLesion, _paint_truth

from models.data import load_samples, read_image_as_served
from models.evaluate import evaluate


@pytest.fixture
def busi_copy(synthetic_busi, tmp_path):
    root, _ = synthetic_busi
    return Path(shutil.copytree(root, tmp_path / "busi"))


def _with_broken_crc(png: bytes, chunk_type: bytes) -> bytes:
    """``png`` with the CRC of its first ``chunk_type`` chunk wrong (the data intact)."""
    pos = 8
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == chunk_type:
            crc_at = pos + 8 + length
            crc = struct.unpack(">I", png[crc_at:crc_at + 4])[0]
            return png[:crc_at] + struct.pack(">I", crc ^ 0xFFFF) + png[crc_at + 4:]
        pos += 12 + length
    raise AssertionError(f"no {chunk_type!r} chunk")


def _png(pixels, text=None) -> bytes:
    info = None
    if text:
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", text)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def test_a_nearly_blank_frame_the_server_refuses_is_skipped_with_its_reason(busi_copy):
    # A black frame with a small label: the networks outlined one and called it malignant.
    frame = np.zeros((120, 160), np.uint8)
    frame[5:12, 5:30] = 220
    (busi_copy / "normal" / "normal (1).png").write_bytes(_png(frame))
    result = evaluate(DarkIsLesion(), load_samples(busi_copy), transform=_paint_truth)
    skipped = {item["image"]: item["reason"] for item in result["skipped"]}
    assert set(skipped) == {"normal/normal (1)"}
    assert "nearly blank" in skipped["normal/normal (1)"]


def test_damaged_image_data_is_skipped_and_a_damaged_text_chunk_is_read(busi_copy):
    folder = busi_copy / "benign"
    idat = folder / "benign (1).png"
    idat.write_bytes(_with_broken_crc(idat.read_bytes(), b"IDAT"))
    text = folder / "benign (5).png"
    original = np.asarray(Image.open(text))
    text.write_bytes(_with_broken_crc(_png(original, text="scanner notes"), b"tEXt"))
    result = evaluate(DarkIsLesion(), load_samples(busi_copy), transform=_paint_truth)
    skipped = {item["image"]: item["reason"] for item in result["skipped"]}
    assert set(skipped) == {"benign/benign (1)"}
    assert "IDAT" in skipped["benign/benign (1)"]
    # The picture of the damaged-comment file is read whole, as a browser shows it.
    np.testing.assert_array_equal(read_image_as_served(text), original)
    assert "benign/benign (5)" in {r["image"] for r in result["per_image"]}


def test_formats_the_server_does_not_take_are_still_read_under_the_same_rules(tmp_path):
    rng = np.random.default_rng(1)
    scan = rng.integers(0, 255, (40, 50), dtype=np.uint8)
    Image.fromarray(scan).save(tmp_path / "scan.tif")
    np.testing.assert_array_equal(read_image_as_served(tmp_path / "scan.tif"), scan)
    Image.fromarray(np.full((40, 50), 7, np.uint8)).save(tmp_path / "blank.bmp")
    with pytest.raises(ValueError, match="blank"):
        read_image_as_served(tmp_path / "blank.bmp")


def test_a_colour_and_a_grey_file_read_as_the_server_reads_them(busi_copy):
    from vectorizer import read_image_file

    for name in ("benign (3).png", "benign (4).png", "benign (2).png"):  # RGB, RGBA, grey
        path = busi_copy / "benign" / name
        served = read_image_file(path.read_bytes(), max_pixels=None).pixels
        np.testing.assert_array_equal(read_image_as_served(path), served)


def _rewrite_index(root, change):
    index = root / "index.csv"
    index.write_text(change(index.read_text()))


def test_an_index_name_in_another_case_names_the_image_and_is_not_reported_missing(busi_copy):
    # A copy through a tool that changed the case of the index's names, not the files'.
    _rewrite_index(busi_copy, lambda text: text.replace("benign,benign (3)", "benign,Benign (3)"))
    problems: list[str] = []
    samples = {s.name: s for s in load_samples(busi_copy, problems=problems)}
    assert problems == []
    # Its row applies: the group it shares with benign (4), and its mask count.
    assert samples["benign (3)"].group == samples["benign (4)"].group
    assert samples["benign (3)"].listed_masks == 1


def test_an_index_name_in_another_unicode_form_is_not_reported_missing(busi_copy):
    import unicodedata

    nfd = unicodedata.normalize("NFD", "bénin (1)")
    for suffix in ("", "_mask"):
        (busi_copy / "benign" / f"benign (1){suffix}.png").rename(
            busi_copy / "benign" / f"{nfd}{suffix}.png")
    _rewrite_index(busi_copy, lambda text: text.replace("benign,benign (1),",
                                                        "benign,bénin (1),"))
    problems: list[str] = []
    samples = load_samples(busi_copy, problems=problems)
    assert problems == []
    assert nfd in {s.name for s in samples}


def test_an_index_name_two_files_match_in_case_names_neither(busi_copy):
    _rewrite_index(busi_copy, lambda text: text.replace("benign,benign (3)", "benign,BENIGN (3)")
                   + "benign,Benign (3),99,1\n")
    problems: list[str] = []
    load_samples(busi_copy, problems=problems)
    assert len(problems) == 1 and "BENIGN (3)" in problems[0] and "Benign (3)" in problems[0]




@pytest.mark.parametrize("content, said", [
    ('["benign/benign (1)"]', "holds a JSON list"),
    ('{"train": [], "val": "benign/benign (1)"}', "'val' is not a list of names"),
    ('{"train": [1, 2], "val": []}', "'train' is not a list of names"),
    ('{"train": []}', "no 'val' list"),
    ('{"train": [', "not JSON"),
])
def test_a_split_file_of_another_shape_is_one_error_line(synthetic_busi, tmp_path, content,
                                                         said, capsys):
    # Audit 803 F5: a JSON list ended in a TypeError traceback; a string "val" had each
    # character taken for a name, then "no images to evaluate".
    from models.evaluate import main

    root, _ = synthetic_busi
    split = tmp_path / "split.json"
    split.write_text(content)
    assert main(["--data", str(root), "--split", str(split)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --split {split}: {said}"), err
    assert '{"train": ["class/name", ...], "val": [...]}' in err[0]
